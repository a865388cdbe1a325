"""Lesson 10: the email consumer, broken on purpose: its mail provider is "down", so every
invocation raises. EventBridge delivered the event (Lambda accepted it); Lambda retries it twice,
then sends it to the function's on-failure destination or dead-letter queue. Checkout never sees it.
(Not `email.py`: that name would shadow the standard library's email package.)
"""


def lambda_handler(event, context):
    order = event["detail"]
    print(f"sending a confirmation for order {order['order_id']} to {order['customer']}")
    raise ConnectionError("SMTP provider unreachable (smtp.example.com:587 timed out)")
