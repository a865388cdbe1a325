"""The worker's log pipe carries printed text and the runtime client's telemetry frames, in order."""

from __future__ import annotations

from lambdalab.runtime.logstream import LogSplitter


def frame(message: str, stamp_us: int = 1_700_000_000_123_456, kind: int = 0xA55A0017) -> bytes:
    data = message.encode()
    return kind.to_bytes(4, "big") + len(data).to_bytes(4, "big") + stamp_us.to_bytes(8, "big") + data


def test_lines_and_frames_come_out_in_order_with_the_frames_own_time() -> None:
    splitter = LogSplitter()
    data = b"first\n" + frame("[ERROR] boom\nTraceback\n") + b"last\n"
    assert splitter.feed(data, 5) == [(5, "first"), (1_700_000_000_123, "[ERROR] boom\rTraceback"), (5, "last")]


def test_a_frame_split_across_reads_waits_for_its_end() -> None:
    splitter = LogSplitter()
    data = b"a\n" + frame("record") + b"b\n"
    events = []
    for i in range(len(data)):  # one byte at a time: every split point
        events += splitter.feed(data[i:i + 1], 7)
    assert [text for _, text in events] == ["a", "record", "b"]


def test_a_print_without_newline_ends_with_its_line_or_at_flush() -> None:
    splitter = LogSplitter()
    assert splitter.feed(b"half" + frame("record"), 1) == [(1_700_000_000_123, "record")]
    assert splitter.feed(b" line\nrest", 2) == [(2, "half line")]
    assert splitter.flush(3) == [(3, "rest")]
    assert splitter.flush(4) == []
