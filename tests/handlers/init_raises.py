raise RuntimeError("cannot connect at init")


def handler(event, context):
    return "never"
