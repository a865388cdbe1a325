"""Patches to moto's Step Functions (`moto.stepfunctions`): executions run, and their tasks call the cloud.

moto only records a StartExecution unless its config says `{"stepfunctions": {"execute_state_machine":
true}}`; then its ASL interpreter (`moto.stepfunctions.parser`) runs the execution in a thread. Here the
cloud always runs them, as Step Functions does. The interpreter's tasks (Lambda, SQS, DynamoDB, the
AWS SDK integrations, a Map's S3 reader) call AWS through `boto_client_for`, which points at
`http://localhost:$MOTO_PORT` with the fixed keys `ak`/`sk`: the wrong address for this cloud, and
keys IAM enforcement refuses. The replacement calls this cloud's endpoint with the credentials of the
role the task runs as (the state machine's execution role, or a task's `Credentials.RoleArn`), as
Step Functions does
(https://docs.aws.amazon.com/step-functions/latest/dg/procedure-create-iam-role.html), so a Lambda
task's Invoke is the Lambda API's, served by the runtime like every other invoke, and is allowed
only if that role may `lambda:InvokeFunction`.
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from lambdalab.cloud.moto import Patches

if TYPE_CHECKING:
    from lambdalab.cloud.lambda_service import LambdaService

_PARSER = "moto.stepfunctions.parser"


def role_credentials(region: str, role_arn: str) -> dict[str, str]:
    """Temporary credentials for `role_arn` from moto's STS (what Step Functions assumes)."""
    from moto.sts.models import sts_backends

    sts = sts_backends[role_arn.split(":")[4]]["global"]
    role = sts.assume_role(region_name=region, role_session_name="lambdalab-states",
                           role_arn=role_arn, policy=None, duration=3600, external_id=None)
    return {"aws_access_key_id": role.access_key_id, "aws_secret_access_key": role.secret_access_key,
            "aws_session_token": role.session_token}


def _client_factory(cloud: "LambdaService") -> Callable[..., Any]:
    def boto_client_for(region: str, service: str, state_credentials: Any = None) -> Any:
        import boto3
        from botocore.config import Config
        from moto.stepfunctions.parser.asl.component.common.timeouts.timeout import TimeoutSeconds

        role_arn = getattr(state_credentials, "role_arn", None)
        if not role_arn:
            raise ValueError("a Step Functions task runs as a role: the state machine has no roleArn")
        return boto3.client(
            service, region_name=region, endpoint_url=cloud.endpoint, **role_credentials(region, role_arn),
            # Step Functions does not retry a task's call; a state's Retry field does.
            config=Config(parameter_validation=False, retries={"max_attempts": 0, "total_max_attempts": 1},
                          connect_timeout=TimeoutSeconds.DEFAULT_TIMEOUT_SECONDS,
                          read_timeout=TimeoutSeconds.DEFAULT_TIMEOUT_SECONDS))
    return boto_client_for


def install(patches: Patches, service: "LambdaService") -> None:
    """Run every execution, its tasks calling the cloud at `service.endpoint` as the task's role."""
    import moto.stepfunctions.responses as responses
    from moto.stepfunctions.parser.asl.utils import boto_client
    from moto.stepfunctions.parser.models import stepfunctions_parser_backends

    def get_backend(original: Callable) -> Callable:
        def backend(account: str, region: str) -> Any:
            return stepfunctions_parser_backends[account][region]
        return backend

    patches.replace(responses, "get_backend", get_backend)
    # The task modules import `boto_client_for` by name, each holding its own reference to replace;
    # importing the parser's backend has imported every one of them.
    moto_client_for, replacement = boto_client.boto_client_for, _client_factory(service)
    for name, module in sorted(sys.modules.items()):
        if name.startswith(_PARSER) and getattr(module, "boto_client_for", None) is moto_client_for:
            patches.replace(module, "boto_client_for", lambda _original: replacement)
