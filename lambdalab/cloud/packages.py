"""Checking a .zip deployment package before any function is created from it.

Lambda refuses, with `InvalidParameterValueException`, a package that is empty, is not a zip
archive, expands past the unzipped quota (250 MB, 262,144,000 bytes: Lambda quotas,
https://docs.aws.amazon.com/lambda/latest/dg/gettingstarted-limits.html), or holds an entry that
would land outside the function's directory. A package uploaded in the request itself (`ZipFile`)
is at most 50 MB zipped (52,428,800 bytes; larger ones go through S3), else the request is
refused with 413 `RequestEntityTooLargeException`. `check_package` raises `LambdaApiError` naming the
problem; it reads only the archive's directory, so a small archive that expands hugely is
refused without being expanded.
"""

from __future__ import annotations

import base64
import binascii
import io
import zipfile
from pathlib import PurePosixPath
from typing import Any

from lambdalab.cloud.lambda_service import LambdaApiError

UNZIPPED_LIMIT_BYTES = 262_144_000
DIRECT_UPLOAD_LIMIT_BYTES = 52_428_800
# Lambda states the direct-upload limit as a request size: the zip's base64 text (4/3 of it).
_REQUEST_LIMIT_BYTES = 69_905_067
_CANNOT_UNZIP = "Could not unzip uploaded file. Please check your file, then try to upload again."


def _invalid(message: str) -> LambdaApiError:
    return LambdaApiError(400, "InvalidParameterValueException", message)


def _unsafe(name: str) -> bool:
    path = PurePosixPath(name.replace("\\", "/"))
    drive = bool(path.parts) and ":" in path.parts[0]  # C:/... from a Windows zip tool
    return path.is_absolute() or ".." in path.parts or drive


def check_package(data: bytes) -> None:
    """Raise `LambdaApiError` unless `data` is a zip Lambda would accept."""
    if not data:
        raise _invalid("Uploaded file must be a non-empty zip")
    try:
        with zipfile.ZipFile(io.BytesIO(data)) as zf:
            entries = zf.infolist()
    except (zipfile.BadZipFile, ValueError, EOFError):
        raise _invalid(_CANNOT_UNZIP) from None
    if not entries:
        raise _invalid("Uploaded file must be a non-empty zip")
    unsafe = next((e.filename for e in entries if _unsafe(e.filename)), None)
    if unsafe is not None:
        raise _invalid(f"{_CANNOT_UNZIP} The entry {unsafe!r} would be extracted outside the function's directory.")
    if sum(e.file_size for e in entries) > UNZIPPED_LIMIT_BYTES:
        raise _invalid(f"Unzipped size must be smaller than {UNZIPPED_LIMIT_BYTES} bytes")


def check_code_spec(code: dict[str, Any], operation: str = "CreateFunction") -> None:
    """Check the `ZipFile` of a CreateFunction `Code` or UpdateFunctionCode body (base64, as moto holds it)."""
    if "ZipFile" not in code:
        return
    value = code["ZipFile"]
    try:
        data = value if isinstance(value, bytes) else base64.b64decode(value or "", validate=True)
    except (binascii.Error, ValueError):
        raise _invalid(_CANNOT_UNZIP) from None
    if len(data) > DIRECT_UPLOAD_LIMIT_BYTES:
        raise LambdaApiError(413, "RequestEntityTooLargeException",
                             f"Request must be smaller than {_REQUEST_LIMIT_BYTES} bytes for the {operation} operation")
    check_package(data)
