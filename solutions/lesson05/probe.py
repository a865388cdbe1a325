"""Lesson 05 demo: what can code running with this function's role do?

The event lists AWS calls: `{"calls": [{"service": "s3", "operation": "get_object",
"parameters": {...}}, ...]}`. The handler makes each call with the function's own credentials
(its execution role's, from STS) and returns one outcome per call, in order: "allowed", or the
error code AWS answered with ("AccessDenied", "AccessDeniedException", or another code such as
"NoSuchKey" when the call was authorized but failed for another reason).

This is what an attacker who got code execution in the function (a vulnerable image library, a
poisoned dependency) could try: the role's permissions are the blast radius.
"""

import boto3
from botocore.exceptions import ClientError

_clients = {}


def lambda_handler(event, context):
    outcomes = []
    for call in event["calls"]:
        service = call["service"]
        if service not in _clients:
            _clients[service] = boto3.client(service)
        try:
            getattr(_clients[service], call["operation"])(**call.get("parameters", {}))
            outcomes.append("allowed")
        except ClientError as error:
            outcomes.append(error.response.get("Error", {}).get("Code", "ClientError"))
    return outcomes
