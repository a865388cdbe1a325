"""A log entry's `\r`-separated lines come out as lines (lambdalab/_util/logtext.py)."""

from lambdalab._util.logtext import entry_lines, log_text

# What awslambdaric writes for an unhandled exception: one entry, its lines separated by \r.
ERROR_ENTRY = ("[ERROR] ValueError: bad input\rTraceback (most recent call last):\r"
               '\u00a0\u00a0File "/var/task/handler.py", line 3, in handler\r'
               '\u00a0\u00a0\u00a0\u00a0raise ValueError("bad input")\r')


def test_an_error_entry_is_its_lines():
    """CloudWatch shows an [ERROR] record as the error line and then the traceback, one line each
    (https://docs.aws.amazon.com/lambda/latest/dg/python-logging.html)."""
    assert entry_lines(ERROR_ENTRY) == [
        "[ERROR] ValueError: bad input", "Traceback (most recent call last):",
        '\u00a0\u00a0File "/var/task/handler.py", line 3, in handler',
        '\u00a0\u00a0\u00a0\u00a0raise ValueError("bad input")']


def test_log_text_keeps_single_line_entries_and_contains_no_carriage_return():
    text = log_text(["START RequestId: r1 Version: $LATEST", ERROR_ENTRY, "END RequestId: r1", ""])
    assert "\r" not in text
    lines = text.split("\n")
    assert lines[0] == "START RequestId: r1 Version: $LATEST" and lines[1] == "[ERROR] ValueError: bad input"
    assert lines[-2:] == ["END RequestId: r1", ""]  # an empty entry stays an (empty) line
    assert entry_lines("a\r\nb") == ["a", "b"]
