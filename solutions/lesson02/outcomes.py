"""Lesson 02 demo: what a handler can hand back to its caller, and how it can fail."""


class OrderRejected(Exception):
    """A failure of our own: its class name becomes the errorType Lambda reports."""


def accept(event, context):
    """Returns a value: Lambda serialises it to JSON for the caller."""
    return {"order": event.get("order"), "status": "accepted"}


def reject(event, context):
    """Raises: Lambda turns the exception into an error payload (errorMessage, errorType, stackTrace)."""
    raise OrderRejected(f"order {event.get('order')!r} has no items")


def unserialisable(event, context):
    """Returns something JSON cannot express: the runtime fails the invocation after the handler ran."""
    return {"tags": {"red", "green"}}


def one_argument(event):
    """The wrong signature: the runtime always calls handler(event, context)."""
    return event
