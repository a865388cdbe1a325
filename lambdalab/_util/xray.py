"""X-Ray trace ids and the `X-Amzn-Trace-Id` header, in the format X-Ray documents.

A trace id is `1-<8 hex digits of the epoch second>-<24 random hex digits>`; a segment id
(`Parent`) is 16 random hex digits. See
https://docs.aws.amazon.com/xray/latest/devguide/xray-api-sendingdata.html#xray-api-traceids
"""

from __future__ import annotations

import secrets
import time


def new_trace_id(epoch_s: float | None = None) -> str:
    return f"1-{int(time.time() if epoch_s is None else epoch_s):08x}-{secrets.token_hex(12)}"


def new_segment_id() -> str:
    return secrets.token_hex(8)


def new_trace_header(epoch_s: float | None = None, *, parent: bool = True, sampled: bool | None = False) -> str:
    """`Root=1-...;Parent=...;Sampled=0`: what Lambda hands a function it starts a trace for."""
    header = f"Root={new_trace_id(epoch_s)}"
    if parent:
        header += f";Parent={new_segment_id()}"
    if sampled is not None:
        header += f";Sampled={int(sampled)}"
    return header
