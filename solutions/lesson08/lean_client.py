"""Lesson 08 demo: a leaner S3 client, made with botocore alone.

boto3 is a convenience layer over botocore; `boto3.client("s3")` also imports boto3's resource
machinery and its S3 transfer manager. A function that only calls S3's API can build the same
low-level client from a botocore session and skip them. (The client is the same object type:
`s3.put_object(...)`, `s3.get_object(...)` work unchanged.)
"""

import botocore.session

s3 = botocore.session.get_session().create_client("s3")


def handler(event, context):
    return {"handler": "lean_client", "service": s3.meta.service_model.service_name}
