"""Checking a .zip deployment package (or a layer's) before any function is created from it.

Lambda refuses, with `InvalidParameterValueException`, a package that is empty, is not a zip
archive, expands past the unzipped quota (250 MB, 262,144,000 bytes: Lambda quotas,
https://docs.aws.amazon.com/lambda/latest/dg/gettingstarted-limits.html), or holds an entry that
would land outside the function's directory. A package uploaded in the request itself (`ZipFile`)
is at most 50 MB zipped (52,428,800 bytes; larger ones go through S3), else the request is
refused with 413 `RequestEntityTooLargeException`. `check_package` raises `LambdaApiError` naming the
problem; it reads only the archive's directory, so a small archive that expands hugely is
refused without being expanded. The same quotas page limits a function to five layers, and its
code and layers together to the same unzipped size (`check_layers`).
"""

from __future__ import annotations

import base64
import binascii
import io
import zipfile
from collections.abc import Sequence
from pathlib import PurePosixPath
from typing import Any

from lambdalab.cloud.lambda_service import LambdaApiError
from lambdalab.runtime.config import MAX_LAYERS

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


def zip_of(code: dict[str, Any]) -> bytes | None:
    """The bytes of a `Code`/`Content` spec's `ZipFile` (base64, as moto holds it); None without one."""
    if "ZipFile" not in code:
        return None
    value = code["ZipFile"]
    try:
        return value if isinstance(value, bytes) else base64.b64decode(value or "", validate=True)
    except (binascii.Error, ValueError):
        raise _invalid(_CANNOT_UNZIP) from None



def check_code_spec(code: dict[str, Any], operation: str = "CreateFunction") -> None:
    """Check the `ZipFile` of a CreateFunction `Code`, UpdateFunctionCode body or PublishLayerVersion `Content`."""
    data = zip_of(code)
    if data is None:
        return
    if len(data) > DIRECT_UPLOAD_LIMIT_BYTES:
        raise LambdaApiError(413, "RequestEntityTooLargeException",
                             f"Request must be smaller than {_REQUEST_LIMIT_BYTES} bytes for the {operation} operation")
    check_package(data)


def unzipped_size(data: bytes) -> int:
    """The bytes an archive expands to (from its directory alone); 0 for no code."""
    if not data:
        return 0
    with zipfile.ZipFile(io.BytesIO(data)) as zf:
        return sum(e.file_size for e in zf.infolist())


def check_layer_count(layer_arns: Sequence[str]) -> None:
    """Lambda's refusal of a sixth layer (the message is Lambda's own)."""
    if len(layer_arns) > MAX_LAYERS:
        raise _invalid(f"Cannot reference more than {MAX_LAYERS} layers.")


def check_layers(code: bytes, layers: Sequence[bytes]) -> None:
    """Raise `LambdaApiError` when the function's code and its layers, unzipped, pass Lambda's quota."""
    total = unzipped_size(code) + sum(unzipped_size(layer) for layer in layers)
    if total > UNZIPPED_LIMIT_BYTES:
        raise _invalid(f"Function code combined with layers exceeds the maximum allowed size of "
                       f"{UNZIPPED_LIMIT_BYTES} bytes. The actual size is {total} bytes.")
