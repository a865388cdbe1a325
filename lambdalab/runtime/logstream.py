"""A worker's log pipe: the text its handler prints, interleaved with the runtime client's log frames.

On Lambda the runtime client writes its own records (the handler's `logging` calls, the error
report of a failed invocation) as frames on the descriptor `_LAMBDA_TELEMETRY_LOG_FD`, not on
stdout, so a handler that closes its stdout neither silences nor crashes the runtime. Here that
descriptor is a second handle on the worker's stdout pipe, so prints and records keep their
order. A frame is a 4-byte type (0xA55A00xx), a 4-byte length, an 8-byte timestamp in
microseconds and the message, all big-endian. `LogSplitter` turns the mixed bytes into log
events: each line of text, and each frame as one event (its lines joined by \\r, as this package
shows every multi-line event, like CloudWatch).
"""

from __future__ import annotations

TELEMETRY_FD_ENV = "_LAMBDA_TELEMETRY_LOG_FD"
FRAME_MAGIC = b"\xa5\x5a\x00"
_HEADER = 16


def _held_back(data: bytes) -> int:
    """How many bytes at the end of `data` may be the start of a frame still on its way."""
    for k in (2, 1):
        if data.endswith(FRAME_MAGIC[:k]):
            return k
    return 0


class LogSplitter:
    """Splits a worker's log bytes into (epoch ms, text) events; see the module docstring."""

    def __init__(self) -> None:
        self._pending = b""  # bytes not yet split
        self._text = b""  # a printed line not yet ended

    def feed(self, data: bytes, now_ms: int) -> list[tuple[int, str]]:
        """Add bytes read from the pipe; returns the events they complete."""
        buf = self._pending + data
        events: list[tuple[int, str]] = []
        while buf:
            if buf.startswith(FRAME_MAGIC):
                if len(buf) < _HEADER:
                    break
                length = int.from_bytes(buf[4:8], "big")
                if len(buf) < _HEADER + length:
                    break
                stamp_ms = int.from_bytes(buf[8:16], "big") // 1000
                message = buf[_HEADER:_HEADER + length].decode("utf-8", "replace")
                events.append((stamp_ms, message.rstrip("\n").replace("\n", "\r")))
                buf = buf[_HEADER + length:]
                continue
            at = buf.find(FRAME_MAGIC)
            end = at if at >= 0 else len(buf) - _held_back(buf)
            if end == 0:
                break  # one or two bytes that may begin a frame
            self._text += buf[:end]
            buf = buf[end:]
            *lines, self._text = self._text.split(b"\n")
            events.extend((now_ms, line.decode("utf-8", "replace")) for line in lines)
        self._pending = buf
        return events

    def flush(self, now_ms: int) -> list[tuple[int, str]]:
        """The printed line not yet ended, as an event of its own (at the end of an invocation or the pipe)."""
        text, self._text = self._text, b""
        return [(now_ms, text.decode("utf-8", "replace"))] if text else []
