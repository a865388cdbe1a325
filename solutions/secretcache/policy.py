"""Lab `secretcache`: the execution role of the signing function, with nothing but what it needs.

`policy(...)` returns the role's permissions policy as a dict. The function (handler.py) makes
exactly these calls:

- `secretsmanager:GetSecretValue` on its one secret (`secret_arn` is the secret's full ARN,
  with the six random characters Secrets Manager adds to the name);
- `ssm:GetParameter` on its one parameter; a parameter's ARN is
  `arn:aws:ssm:<region>:<account>:parameter/<name without its leading slash>`;
- and Lambda writes its logs into its log group, `/aws/lambda/<function name>`
  (`logs:CreateLogStream` and `logs:PutLogEvents` on
  `arn:aws:logs:<region>:<account>:log-group:/aws/lambda/<function name>:*`).

The secret uses Secrets Manager's own AWS managed key, so no `kms:Decrypt` is needed (a secret
encrypted with a customer managed key would need it on that key).
"""


def policy(secret_arn: str, parameter_name: str, function_name: str, region: str, account: str) -> dict:
    # BEGIN SOLUTION policy
    # Return {"Version": "2012-10-17", "Statement": [...]} allowing GetSecretValue on the secret's
    # ARN, GetParameter on the parameter's ARN and the two log actions on the function's own log
    # group; no "*" in any action or resource.
    return {
        "Version": "2012-10-17",
        "Statement": [
            {"Sid": "ReadTheKey", "Effect": "Allow", "Action": "secretsmanager:GetSecretValue",
             "Resource": secret_arn},
            {"Sid": "ReadTheEndpoint", "Effect": "Allow", "Action": "ssm:GetParameter",
             "Resource": f"arn:aws:ssm:{region}:{account}:parameter/{parameter_name.lstrip('/')}"},
            {"Sid": "WriteOwnLogs", "Effect": "Allow", "Action": ["logs:CreateLogStream", "logs:PutLogEvents"],
             "Resource": f"arn:aws:logs:{region}:{account}:log-group:/aws/lambda/{function_name}:*"},
        ],
    }
    # END SOLUTION
