"""JSON in and out of the handler, as awslambdaric's lambda_runtime_marshaller.py does it (with simplejson)."""

from __future__ import annotations

import os
import sys

import simplejson

from .exceptions import FaultException

# Runtimes from Python 3.12 on write non-ASCII characters as they are instead of \u escapes.
_UNICODE_JSON_ENVS = frozenset({
    "AWS_Lambda_python3.12", "AWS_Lambda_python3.13", "AWS_Lambda_python3.14", "AWS_Lambda_python3.15",
})


def _is_decimal(obj: object) -> bool:
    # A Decimal can only exist once `decimal` is imported, so there is no need to import it here.
    decimal = sys.modules.get("decimal")
    return decimal is not None and isinstance(obj, decimal.Decimal)


def _json_kwargs() -> dict:
    if os.environ.get("AWS_EXECUTION_ENV") in _UNICODE_JSON_ENVS:
        return {"ensure_ascii": False, "allow_nan": True}
    return {"allow_nan": True}


class Encoder(simplejson.JSONEncoder):
    """awslambdaric's encoder: Decimals as their exact digits, NaN Decimals as NaN."""

    def __init__(self) -> None:
        super().__init__(use_decimal=False, **_json_kwargs())

    def default(self, obj):
        if _is_decimal(obj):
            if obj.is_nan():
                return float("nan")
            return simplejson.RawJSON(str(obj))
        return super().default(obj)


def to_json(obj: object) -> str:
    return Encoder().encode(obj)


# awslambdaric builds the marshaller's encoder once, at import; to_json builds a fresh one per call.
_RESPONSE_ENCODER = Encoder()


def unmarshal_request(body: bytes, content_type: str | None):
    if content_type != "application/json":
        return body
    try:
        return simplejson.loads(body)
    except Exception as e:
        raise FaultException(FaultException.UNMARSHAL_ERROR, f"Unable to unmarshal input: {str(e)}")


def marshal_response(response: object) -> tuple[bytes | str, str]:
    if isinstance(response, bytes):
        return response, "application/unknown"
    try:
        return _RESPONSE_ENCODER.encode(response), "application/json"
    except Exception as e:
        raise FaultException(FaultException.MARSHAL_ERROR, f"Unable to marshal response: {str(e)}")
