"""Logging inside the worker: the log sinks, the handler on the root logger, and the ``[ERROR]`` line.

awslambdaric's lambda_runtime_log_utils.py plus the logging parts of its bootstrap.py: text or JSON
records (AWS_LAMBDA_LOG_FORMAT, AWS_LAMBDA_LOG_LEVEL), on stdout or as telemetry frames on
``_LAMBDA_TELEMETRY_LOG_FD``, each stamped with the current request id. (Not named logging.py:
inside this package that name would shadow the standard library's module.)
"""

from __future__ import annotations

import logging
import os
import sys
import time
import traceback

from .marshalling import to_json

ERROR_LOG_LINE_TERMINATE = "\r"
ERROR_LOG_IDENT = "\u00a0"  # NO-BREAK SPACE, as awslambdaric indents traceback lines

_DATETIME_FORMAT = "%Y-%m-%dT%H:%M:%SZ"
# Frame types of the telemetry log protocol, by log level (NOTSET, DEBUG, INFO, WARNING, ERROR, CRITICAL).
_JSON_FRAME_TYPES = {
    level: code.to_bytes(4, "big")
    for level, code in zip((0, 10, 20, 30, 40, 50),
                           (0xA55A0002, 0xA55A000A, 0xA55A000E, 0xA55A0012, 0xA55A0016, 0xA55A001A))
}
_TEXT_FRAME_TYPES = {
    level: code.to_bytes(4, "big")
    for level, code in zip((0, 10, 20, 30, 40, 50),
                           (0xA55A0003, 0xA55A000B, 0xA55A000F, 0xA55A0013, 0xA55A0017, 0xA55A001B))
}
_DEFAULT_FRAME_TYPE = _TEXT_FRAME_TYPES[logging.NOTSET]
_RESERVED_FIELDS = frozenset({
    "name", "msg", "args", "levelname", "levelno", "pathname", "filename", "module", "exc_info", "exc_text",
    "stack_info", "lineno", "funcName", "created", "msecs", "relativeCreated", "thread", "threadName",
    "processName", "process", "aws_request_id", "tenant_id", "_frame_type",
})
_LOG_FORMAT_JSON = 0
_LOG_FORMAT_TEXT = 1


def _log_format_from_env(value: str | None) -> int:
    return _LOG_FORMAT_JSON if value and value.upper() == "JSON" else _LOG_FORMAT_TEXT


def _get_log_level_from_env_var(log_level: str | None) -> str:
    return {None: "", "TRACE": "DEBUG"}.get(log_level, log_level).upper()


def _format_log_level(record: logging.LogRecord) -> int:
    return min(50, max(0, record.levelno)) // 10 * 10


_AWS_LAMBDA_LOG_FORMAT = _log_format_from_env(os.environ.get("AWS_LAMBDA_LOG_FORMAT"))
_AWS_LAMBDA_LOG_LEVEL = _get_log_level_from_env_var(os.environ.get("AWS_LAMBDA_LOG_LEVEL"))
_ERROR_FRAME_TYPE = (_JSON_FRAME_TYPES if _AWS_LAMBDA_LOG_FORMAT == _LOG_FORMAT_JSON else _TEXT_FRAME_TYPES)[40]


class JsonFormatter(logging.Formatter):
    """Lambda's JSON log format (AWS_LAMBDA_LOG_FORMAT=JSON)."""

    def __init__(self) -> None:
        super().__init__(datefmt=_DATETIME_FORMAT)
        import json as stdlib_json

        # default=str: a value json cannot encode is stringified instead of losing the record.
        self._encode = stdlib_json.JSONEncoder(ensure_ascii=False, default=str).encode

    def format(self, record: logging.LogRecord) -> str:
        record.levelno = _format_log_level(record)
        record.levelname = logging.getLevelName(record.levelno)
        record._frame_type = _JSON_FRAME_TYPES.get(record.levelno, _JSON_FRAME_TYPES[logging.NOTSET])
        exc_info = record.exc_info
        result = {
            "timestamp": self.formatTime(record, self.datefmt),
            "level": record.levelname,
            "message": record.msg if isinstance(record.msg, dict) and not record.args else record.getMessage(),
            "logger": record.name,
            "stackTrace": traceback.format_tb(exc_info[2]) if exc_info else None,
            "errorType": exc_info[0].__name__ if exc_info else None,
            "errorMessage": str(exc_info[1]) if exc_info else None,
            "requestId": getattr(record, "aws_request_id", None),
            "location": f"{record.pathname}:{record.funcName}:{record.lineno}" if exc_info else None,
        }
        if getattr(record, "tenant_id", None) is not None:
            result["tenantId"] = record.tenant_id
        result.update(
            (key, value) for key, value in record.__dict__.items() if key not in _RESERVED_FIELDS and key not in result
        )
        return self._encode({k: v for k, v in result.items() if v is not None}) + "\n"


class StandardLogSink:
    """Writes log text to stdout (the function's log stream)."""

    def __enter__(self) -> StandardLogSink:
        return self

    def __exit__(self, exc_type, exc_value, exc_tb) -> None:
        pass

    def log(self, msg: str, frame_type: bytes | None = None) -> None:
        sys.stdout.write(msg)

    def log_error(self, message_lines: list[str]) -> None:
        sys.stdout.write(ERROR_LOG_LINE_TERMINATE.join(message_lines) + "\n")


class FramedTelemetryLogSink:
    """Lambda's framed log protocol on ``_LAMBDA_TELEMETRY_LOG_FD``: type, length, µs timestamp, message."""

    def __init__(self, fd: str | int) -> None:
        self.fd = int(fd)

    def __enter__(self) -> FramedTelemetryLogSink:
        self.file = os.fdopen(self.fd, "wb", 0)
        return self

    def __exit__(self, exc_type, exc_value, exc_tb) -> None:
        self.file.close()

    def log(self, msg: str, frame_type: bytes | None = None) -> None:
        encoded = msg.encode("utf8")
        timestamp = int(time.time_ns() / 1000)
        self.file.write(
            (frame_type or _DEFAULT_FRAME_TYPE) + len(encoded).to_bytes(4, "big") + timestamp.to_bytes(8, "big")
            + encoded
        )

    def log_error(self, message_lines: list[str]) -> None:
        self.log("\n".join(message_lines), frame_type=_ERROR_FRAME_TYPE)


def create_log_sink() -> StandardLogSink | FramedTelemetryLogSink:
    if "_LAMBDA_TELEMETRY_LOG_FD" in os.environ:
        return FramedTelemetryLogSink(os.environ.pop("_LAMBDA_TELEMETRY_LOG_FD"))
    return StandardLogSink()


def replace_line_indentation(line: str, indent_char: str, new_indent_char: str) -> str:
    count = len(line) - len(line.lstrip(indent_char))
    return new_indent_char * count + line[count:]


def log_error(error_result: dict, log_sink) -> None:
    if _AWS_LAMBDA_LOG_FORMAT == _LOG_FORMAT_JSON:
        timestamp = time.strftime(_DATETIME_FORMAT, logging.Formatter.converter(time.time()))
        log_sink.log_error([to_json({"timestamp": timestamp, "level": "ERROR", **error_result})])
        return

    description = "[ERROR]"
    error_type = error_result.get("errorType")
    if error_type:
        description += " " + error_type
    error_message = error_result.get("errorMessage")
    if error_message:
        if error_type:
            description += ":"
        description += " " + error_message

    lines = [description]
    stack_trace = error_result.get("stackTrace")
    if stack_trace is not None:
        lines.append("Traceback (most recent call last):")
        for element in stack_trace:
            if element == "":
                lines.append("")
            else:
                lines.extend(replace_line_indentation(line, " ", ERROR_LOG_IDENT) for line in element.splitlines())
    log_sink.log_error(lines)


class LambdaLoggerHandler(logging.Handler):
    def __init__(self, log_sink) -> None:
        logging.Handler.__init__(self)
        self.log_sink = log_sink

    def emit(self, record: logging.LogRecord) -> None:
        self.log_sink.log(self.format(record))


class LambdaLoggerHandlerWithFrameType(logging.Handler):
    def __init__(self, log_sink) -> None:
        super().__init__()
        self.log_sink = log_sink

    def emit(self, record: logging.LogRecord) -> None:
        self.log_sink.log(
            self.format(record),
            frame_type=getattr(record, "_frame_type", None) or _TEXT_FRAME_TYPES.get(_format_log_level(record)),
        )


_GLOBAL_AWS_REQUEST_ID: str | None = None
_GLOBAL_TENANT_ID: str | None = None


def set_request(aws_request_id: str, tenant_id: str | None) -> None:
    """Which invocation the records logged from now on belong to."""
    global _GLOBAL_AWS_REQUEST_ID, _GLOBAL_TENANT_ID
    _GLOBAL_AWS_REQUEST_ID = aws_request_id
    _GLOBAL_TENANT_ID = tenant_id


class LambdaLoggerFilter(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        record.aws_request_id = _GLOBAL_AWS_REQUEST_ID or ""
        record.tenant_id = _GLOBAL_TENANT_ID
        return True


class Unbuffered:
    """Flushes after every write, so output reaches the log pipe in order and immediately."""

    def __init__(self, stream) -> None:
        self.stream = stream

    def __enter__(self) -> Unbuffered:
        return self

    def __exit__(self, exc_type, exc_value, exc_tb) -> None:
        pass

    def __getattr__(self, attr: str):
        return getattr(self.stream, attr)

    def write(self, msg: str) -> None:
        self.stream.write(msg)
        self.stream.flush()

    def writelines(self, msgs) -> None:
        self.stream.writelines(msgs)
        self.stream.flush()


def setup_logging(log_sink) -> None:
    """Route the root logger to `log_sink` in the format and at the level the environment asks for."""
    logging.Formatter.converter = time.gmtime
    logger = logging.getLogger()
    if _AWS_LAMBDA_LOG_FORMAT == _LOG_FORMAT_JSON or _AWS_LAMBDA_LOG_LEVEL:
        handler: logging.Handler = LambdaLoggerHandlerWithFrameType(log_sink)
    else:
        handler = LambdaLoggerHandler(log_sink)
    if _AWS_LAMBDA_LOG_FORMAT == _LOG_FORMAT_JSON:
        handler.setFormatter(JsonFormatter())
    else:
        handler.setFormatter(logging.Formatter(
            "[%(levelname)s]\t%(asctime)s.%(msecs)03dZ\t%(aws_request_id)s\t%(message)s\n", "%Y-%m-%dT%H:%M:%S"
        ))
    if _AWS_LAMBDA_LOG_LEVEL in logging._nameToLevel:
        logger.setLevel(_AWS_LAMBDA_LOG_LEVEL)
    handler.addFilter(LambdaLoggerFilter())
    logger.addHandler(handler)
