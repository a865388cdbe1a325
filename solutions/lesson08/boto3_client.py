"""Lesson 08 demo: the usual pattern, `import boto3` and an S3 client built at INIT.

Building the client at module level is right for warm invocations (they reuse it), but every
new environment pays for importing boto3 and loading S3's service model. boto3 also wires its
S3 transfer helpers (`upload_file`, s3transfer) into every S3 client it makes.
"""

import boto3

s3 = boto3.client("s3")


def handler(event, context):
    return {"handler": "boto3_client", "service": s3.meta.service_model.service_name}
