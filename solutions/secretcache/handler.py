"""Lab `secretcache`: sign a partner request with an API key kept in Secrets Manager, not in the code.

The function's environment names where things are, never what they are:

- SECRET_ID: the secret holding the partner's key, a JSON string `{"api_key": "..."}`;
- ENDPOINT_PARAMETER: the Parameter Store parameter holding the partner's endpoint URL;
- CACHE_TTL_S: how long (seconds) a value fetched once may be reused before it is fetched again.

Powertools' Parameters utility (aws-lambda-powertools, packaged from requirements.txt) fetches
and caches both. The providers are made once per execution environment (at init), so the cache
lives as long as the environment; `secret_calls` counts the GetSecretValue requests this
environment has really sent (botocore tells every call it makes), so a caller can see the cache;
`environment` is the environment's log stream (one per environment).
"""

import hashlib
import hmac
import json
import os

import boto3
from aws_lambda_powertools.utilities import parameters

SECRET_ID = os.environ["SECRET_ID"]
ENDPOINT_PARAMETER = os.environ["ENDPOINT_PARAMETER"]
CACHE_TTL_S = int(os.environ.get("CACHE_TTL_S", "300"))

_sent = {"GetSecretValue": 0}


def _count(**kwargs):
    _sent["GetSecretValue"] += 1


_secrets_client = boto3.client("secretsmanager")
_secrets_client.meta.events.register("after-call.secrets-manager.GetSecretValue", _count)
secrets = parameters.SecretsProvider(boto3_client=_secrets_client)
settings = parameters.SSMProvider()


def api_key() -> str:
    """The partner's API key, from the secret SECRET_ID, fetched at most once per CACHE_TTL_S."""
    # BEGIN SOLUTION api_key
    # Fetch the secret through `secrets` (a Powertools SecretsProvider) so that it is cached for
    # CACHE_TTL_S seconds: look up the `max_age` and `transform` arguments of `get` in the
    # Powertools "Parameters" page. The secret is JSON; return its "api_key" field.
    return secrets.get(SECRET_ID, max_age=CACHE_TTL_S, transform="json")["api_key"]
    # END SOLUTION


def endpoint() -> str:
    """The partner's endpoint URL, from the parameter ENDPOINT_PARAMETER, cached like the key."""
    # BEGIN SOLUTION endpoint
    # Fetch the parameter through `settings` (a Powertools SSMProvider), cached for CACHE_TTL_S.
    return settings.get(ENDPOINT_PARAMETER, max_age=CACHE_TTL_S)
    # END SOLUTION


def lambda_handler(event, context):
    body = json.dumps(event.get("order", {}), sort_keys=True)
    # The request the partner would receive: signed with the key, which never leaves the function.
    signature = hmac.new(api_key().encode(), body.encode(), hashlib.sha256).hexdigest()
    return {"url": endpoint(), "signature": signature, "secret_calls": _sent["GetSecretValue"],
            "environment": context.log_stream_name}
