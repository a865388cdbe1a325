"""`lambdalab cloud` echoes each function's log entries to the terminal, each line on a line of its own.

Lambda's Python runtime writes an error and its traceback as ONE log event whose lines are
separated by \\r; CloudWatch Logs keeps the event whole and shows its lines as lines:
https://docs.aws.amazon.com/lambda/latest/dg/python-logging.html
"""

from __future__ import annotations

import time

from moto.logs.models import logs_backends

from lambdalab.cloud.lambda_service import LambdaService

ENTRY = ("[ERROR] ZeroDivisionError: division by zero\rTraceback (most recent call last):\r"
         '  File "/var/task/handler.py", line 3, in lambda_handler\r    return 1 / 0\r')


def test_an_error_entry_is_echoed_as_lines_and_kept_whole_in_cloudwatch(capsys):
    service = LambdaService(region="eu-west-1", account_id="123456789012", echo_logs=True)
    service._log_sink("crash", "2026/01/01/[$LATEST]abc", [(int(time.time() * 1000), ENTRY)])
    echoed = capsys.readouterr().err
    assert "\r" not in echoed
    assert echoed.splitlines() == [
        "[crash] [ERROR] ZeroDivisionError: division by zero",
        "[crash] Traceback (most recent call last):",
        '[crash]   File "/var/task/handler.py", line 3, in lambda_handler',
        "[crash]     return 1 / 0",
    ]
    stored = logs_backends["123456789012"]["eu-west-1"].groups["/aws/lambda/crash"].streams["2026/01/01/[$LATEST]abc"]
    assert [e.message for e in stored.events] == [ENTRY]


def test_nothing_is_echoed_when_echo_is_off(capsys):
    service = LambdaService(region="eu-west-1", account_id="123456789012", echo_logs=False)
    service._log_sink("quiet", "stream", [(1_700_000_000_000, "START RequestId: 1")])
    assert capsys.readouterr().err == ""
