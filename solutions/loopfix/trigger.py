"""Lab `loopfix` (notebook 06): the bucket's trigger for the thumbnail function, without the loop.

People upload pictures to `uploads/` in a bucket; the function (`handler.py`) writes each
thumbnail into the same bucket under `thumbnails/`. The trigger as first written fires for
every new object (`every_object` below), so each thumbnail triggers the function again: a
recursive loop. Your job: `notification_config`, the same trigger restricted to pictures
under `uploads/`.

S3's rules for a notification configuration (`put_bucket_notification_configuration`):
each entry of `LambdaFunctionConfigurations` has `LambdaFunctionArn`, `Events` and an
optional `Filter` of the form {"Key": {"FilterRules": [{"Name": "prefix", "Value": ...},
{"Name": "suffix", "Value": ...}]}}, with at most ONE prefix rule and ONE suffix rule. To
match several suffixes, write one configuration per suffix. Rule values are compared with the
key as it appears in the event (case-sensitive).
"""

UPLOAD_PREFIX = "uploads/"
THUMBNAIL_PREFIX = "thumbnails/"  # where handler.py writes: must never trigger the function
IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png")


def every_object(bucket: str, function_arn: str) -> dict:
    """The trigger as first written: every new object in the bucket, the thumbnails too. It loops."""
    return {"LambdaFunctionConfigurations": [
        {"Id": "thumbnails", "LambdaFunctionArn": function_arn, "Events": ["s3:ObjectCreated:*"]},
    ]}


def notification_config(bucket: str, function_arn: str) -> dict:
    """The NotificationConfiguration for `bucket`: invoke `function_arn` for new objects under
    UPLOAD_PREFIX whose key ends with one of IMAGE_SUFFIXES, and for nothing else."""
    # BEGIN SOLUTION trigger
    # Start from every_object(bucket, function_arn) and restrict it: return one configuration
    # per suffix in IMAGE_SUFFIXES (each with a distinct "Id", the same LambdaFunctionArn and
    # Events ["s3:ObjectCreated:*"]), each with "Filter": {"Key": {"FilterRules": [
    # {"Name": "prefix", "Value": UPLOAD_PREFIX}, {"Name": "suffix", "Value": suffix}]}}.
    return {"LambdaFunctionConfigurations": [
        {
            "Id": f"thumbnails-{suffix.lstrip('.')}",
            "LambdaFunctionArn": function_arn,
            "Events": ["s3:ObjectCreated:*"],
            "Filter": {"Key": {"FilterRules": [
                {"Name": "prefix", "Value": UPLOAD_PREFIX},
                {"Name": "suffix", "Value": suffix},
            ]}},
        }
        for suffix in IMAGE_SUFFIXES
    ]}
    # END SOLUTION
