"""The signing function as it is too often first written: the partner's key in the code.

Everyone who can read the repository, the deployment package or the function's code in the
console can read the key; it is in git history for good; rotating it means a new deployment.
Lesson 12 runs a secret scanner over this folder, then moves the key to Secrets Manager.
"""

import hashlib
import hmac
import json

PARTNER_ENDPOINT = "https://partner.example/orders"
PARTNER_API_KEY = "7f3a9c41e2b84d6f0a15c8e9b3d27f64a8c1e05b"


def lambda_handler(event, context):
    body = json.dumps(event.get("order", {}), sort_keys=True)
    signature = hmac.new(PARTNER_API_KEY.encode(), body.encode(), hashlib.sha256).hexdigest()
    return {"url": PARTNER_ENDPOINT, "signature": signature}
