"""Lab `leastpriv`: the thumbnail function's execution role, with nothing but what it needs.

`policy(...)` returns the role's permissions policy: an IAM policy document as a dict (what
`json.loads` gives for the JSON you would paste into the IAM console). The thumbnail function of
lesson 04 makes exactly these AWS calls:

- `GetObject` on each upload in the source bucket;
- `PutObject` of each thumbnail into the thumbnail bucket;
- and Lambda writes its logs into its log group, `/aws/lambda/<function name>`: it creates a
  log stream per execution environment and puts log events into it. The deployment creates the
  log group itself (with a retention period), so the role does not need to create log groups.

So the policy allows these four actions, each on named resources, and nothing else. (A versioned
source bucket would also need s3:GetObjectVersion: events then name a version, and the handler
reads exactly that one. These buckets are not versioned.) ARNs:

- the objects of a bucket: `arn:aws:s3:::<bucket>/*` (the bucket itself, `arn:aws:s3:::<bucket>`,
  is what bucket-level actions such as ListBucket take);
- everything in a log group: `arn:aws:logs:<region>:<account>:log-group:<log group name>:*`.

`lambdalab check leastpriv` runs the thumbnail function under your policy with IAM enforcement
on: it must work; without any one of your grants it must fail with AccessDenied; the function
must not be able to do what it does not need; and the policy linter must find nothing.
"""


def policy(source_bucket: str, thumbnail_bucket: str, function_name: str, region: str, account: str) -> dict:
    # BEGIN SOLUTION policy
    # Return {"Version": "2012-10-17", "Statement": [...]} allowing s3:GetObject on the source
    # bucket's objects, s3:PutObject on the thumbnail bucket's objects, and logs:CreateLogStream
    # and logs:PutLogEvents on the function's own log group; no "*" anywhere.
    log_group = f"arn:aws:logs:{region}:{account}:log-group:/aws/lambda/{function_name}:*"
    return {
        "Version": "2012-10-17",
        "Statement": [
            {"Sid": "ReadUploads", "Effect": "Allow", "Action": "s3:GetObject",
             "Resource": f"arn:aws:s3:::{source_bucket}/*"},
            {"Sid": "WriteThumbnails", "Effect": "Allow", "Action": "s3:PutObject",
             "Resource": f"arn:aws:s3:::{thumbnail_bucket}/*"},
            {"Sid": "WriteOwnLogs", "Effect": "Allow", "Action": ["logs:CreateLogStream", "logs:PutLogEvents"],
             "Resource": log_group},
        ],
    }
    # END SOLUTION
