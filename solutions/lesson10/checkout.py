"""Lesson 10: the checkout function. It records nothing itself: it publishes `OrderPlaced` to the
shop's event bus (name in ORDERS_BUS) with one PutEvents call and returns the order id.

Whoever cares about an order (email, inventory, analytics) subscribes with a rule on the bus;
checkout neither knows them nor waits for them, so a failing consumer cannot fail a checkout.
"""

import json
import os
import time
import uuid

import boto3

BUS = os.environ.get("ORDERS_BUS", "default")
events = boto3.client("events")  # created once per environment, at INIT


def lambda_handler(event, context):
    order = {"order_id": event.get("order_id") or uuid.uuid4().hex[:12],
             "customer": event.get("customer", "ada@example.com"),
             "items": event.get("items", [{"sku": "MUG-1", "qty": 1}]),
             "total": event.get("total", 12.5)}
    started = time.perf_counter()
    response = events.put_events(Entries=[{
        "EventBusName": BUS, "Source": "shop.checkout", "DetailType": "OrderPlaced",
        "Detail": json.dumps(order)}])
    publish_ms = (time.perf_counter() - started) * 1000
    if response["FailedEntryCount"]:
        raise RuntimeError(f"PutEvents refused the order: {response['Entries'][0]}")
    return {"order_id": order["order_id"], "event_id": response["Entries"][0]["EventId"],
            "publish_ms": round(publish_ms, 2)}
