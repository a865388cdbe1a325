# Generated from solutions/chunks/chunks.py by `lambdalab labs build`. This copy is yours: edit it.
# Replace each `raise NotImplementedError` with your code, then run `lambdalab check chunks`.
# `lambdalab labs build` never overwrites your edits (unless you pass --force).
"""Splitting a job into chunks that each finish well inside a function's timeout.

A chunk's estimated time is the sum of its items' `ms`. Each chunk must stay within `share` of
the timeout (half by default): estimates are wrong sometimes, a cold start adds its init time,
and a chunk that times out is lost work that must be done again.
"""

# The part of the timeout a chunk may plan to use; the rest is headroom.
SHARE = 0.5


def split(items, timeout_ms, share=SHARE):
    """The items in order, cut into chunks whose estimated time fits `share * timeout_ms`.

    Raises ValueError for an item that alone does not fit: no split can help it (it needs a
    longer timeout, or a service without Lambda's 15 minutes, such as Fargate)."""
    budget_ms = share * timeout_ms
    chunks = []
    # TODO(chunks): Walk the items in order and fill each chunk until the next item would push its estimated
    # time (the sum of its items' "ms") past budget_ms; then start a new chunk. Keep every item
    # exactly once and in order, make no empty chunks, and raise ValueError (naming the item's id)
    # for an item whose own "ms" is more than budget_ms.
    raise NotImplementedError("Exercise 'chunks' in labs/chunks/chunks.py: Walk the items in order and fill each chunk until the next item would push its estimated time (the sum of its items' \"ms\") past budget_ms; then start a new chunk. Keep every item exactly once and in order, make no empty chunks, and raise ValueError (naming the item's id) for an item whose own \"ms\" is more than budget_ms.")
    return chunks
