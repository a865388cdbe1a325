"""Lesson 03 demo, the broken visit counter: the count lives in the environment's memory.

Each environment counts only the visits it served, and the count is lost with the environment.
"""

import time

visits = {}  # page -> visits served by THIS environment


def lambda_handler(event, context):
    page = event.get("page", "/")
    visits[page] = visits.get(page, 0) + 1
    time.sleep(event.get("hold_ms", 0) / 1000)
    return {"page": page, "visits": visits[page]}
