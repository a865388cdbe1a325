"""Lesson 03 demo: a background thread runs only while its environment is not frozen.

The first invocation starts a thread that adds 1 to `ticks` every 10 ms. Between
invocations Lambda freezes the environment, so the thread stops too, however long the pause.
"""

import threading
import time

TICK_S = 0.01
ticks = 0


def _tick():
    global ticks
    while True:
        ticks += 1
        time.sleep(TICK_S)


def lambda_handler(event, context):
    if not any(t.name == "ticker" for t in threading.enumerate()):
        threading.Thread(target=_tick, name="ticker", daemon=True).start()
    time.sleep(event.get("busy_ms", 0) / 1000)  # the invocation's own work; the thread ticks meanwhile
    return {"ticks": ticks, "at": time.time()}
