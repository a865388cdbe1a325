"""Lesson 10: the analytics consumer. It is slow (it stands in for a warehouse load) and it reads
from an SQS queue that the bus fills, so a burst of orders waits in the queue instead of piling
up invocations. Powertools' BatchProcessor reports the records it could not process
(`batchItemFailures`): only those come back to the queue, the rest are deleted.

An order whose total is negative is malformed: that record fails, the others in its batch do not.
"""

import json
import os
import time

from aws_lambda_powertools.utilities.batch import BatchProcessor, EventType, process_partial_response

WORK_S = float(os.environ.get("WORK_S", "0.2"))
processor = BatchProcessor(event_type=EventType.SQS)


def record_handler(record):
    order = json.loads(record.body)["detail"]
    if order["total"] < 0:
        raise ValueError(f"order {order['order_id']}: negative total {order['total']}")
    time.sleep(WORK_S)  # the slow part: loading the order into the warehouse
    print(f"ANALYTICS {order['order_id']} {order['total']}")


def lambda_handler(event, context):
    return process_partial_response(event=event, record_handler=record_handler, processor=processor, context=context)
