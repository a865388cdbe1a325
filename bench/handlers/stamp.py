import time


def handler(event, context):
    return time.time()  # the handler's first line: when it started
