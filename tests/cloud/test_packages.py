"""CreateFunction and UpdateFunctionCode check the .zip package before anything is created.

Lambda's quotas: a deployment package is at most 250 MB unzipped (262,144,000 bytes)
(https://docs.aws.amazon.com/lambda/latest/dg/gettingstarted-limits.html); a package Lambda
cannot use is refused with `InvalidParameterValueException` (400)
(https://docs.aws.amazon.com/lambda/latest/api/API_CreateFunction.html, Errors).
"""

from __future__ import annotations

import io
import zipfile

import pytest
from botocore.exceptions import ClientError


def zipped(files: dict[str, bytes]) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as zf:
        for name, data in files.items():
            zf.writestr(name, data)
    return buffer.getvalue()


GOOD_SOURCE = b"def lambda_handler(event, context):\n    return 'ok'\n"
GOOD = zipped({"handler.py": GOOD_SOURCE})
BAD = {
    "empty zip": (zipped({}), "non-empty zip"),
    "no bytes at all": (b"", ""),
    "not a zip": (b"hello, not a zip", "Could not unzip"),
    "300 MB unzipped": (zipped({"big.bin": b"\0" * (300 * 1024 * 1024)}),
                        "Unzipped size must be smaller than 262144000"),
    "path outside": (zipped({"../evil.py": b"x = 1"}), "outside the function's directory"),
    "absolute path": (zipped({"/etc/evil.py": b"x = 1"}), "outside the function's directory"),
}


@pytest.mark.parametrize("case", list(BAD))
def test_a_bad_package_is_refused_and_nothing_is_created(fresh, case: str) -> None:
    data, message = BAD[case]
    lam = fresh.client("lambda")
    with pytest.raises(ClientError) as raised:
        lam.create_function(FunctionName="pkg", Runtime="python3.12", Role=fresh.default_role(),
                            Handler="handler.lambda_handler", Code={"ZipFile": data})
    error = raised.value.response
    assert raised.value.response["ResponseMetadata"]["HTTPStatusCode"] == 400
    assert error["Error"]["Code"] in ("InvalidParameterValueException", "ValidationException")
    assert message in error["Error"]["Message"]
    with pytest.raises(lam.exceptions.ResourceNotFoundException):
        lam.get_function(FunctionName="pkg")
    assert "pkg" not in fresh.runtime.functions()
    # a retry with a good package is a clean create, not a conflict
    lam.create_function(FunctionName="pkg", Runtime="python3.12", Role=fresh.default_role(),
                        Handler="handler.lambda_handler", Code={"ZipFile": GOOD})
    assert lam.invoke(FunctionName="pkg")["Payload"].read() == b'"ok"'


def test_a_bad_code_update_keeps_the_working_code(fresh) -> None:
    lam = fresh.client("lambda")
    lam.create_function(FunctionName="pkg", Runtime="python3.12", Role=fresh.default_role(),
                        Handler="handler.lambda_handler", Code={"ZipFile": GOOD})
    with pytest.raises(lam.exceptions.InvalidParameterValueException, match="non-empty zip"):
        lam.update_function_code(FunctionName="pkg", ZipFile=zipped({}))
    assert lam.invoke(FunctionName="pkg")["Payload"].read() == b'"ok"'


@pytest.mark.parametrize("operation", ["CreateFunction", "UpdateFunctionCode", "PublishLayerVersion"])
def test_a_direct_upload_over_50_mb_is_413_request_entity_too_large(fresh, operation: str) -> None:
    """A .zip uploaded with the request is at most 50 MB ("Deployment package (.zip file archive)
    size: 50 MB (zipped, when uploading through the Lambda API or SDKs)", Lambda quotas,
    https://docs.aws.amazon.com/lambda/latest/dg/gettingstarted-limits.html); Lambda answers 413
    `RequestEntityTooLargeException` (https://docs.aws.amazon.com/lambda/latest/api/API_CreateFunction.html);
    a layer's zip has the same limit (https://docs.aws.amazon.com/lambda/latest/api/API_PublishLayerVersion.html)."""
    import os
    big = zipped({"handler.py": GOOD_SOURCE, "blob.bin": os.urandom(51 * 1024 * 1024)})  # incompressible
    assert len(big) > 50 * 1024 * 1024
    lam = fresh.client("lambda")
    with pytest.raises(ClientError) as raised:
        if operation == "CreateFunction":
            lam.create_function(FunctionName="pkg", Runtime="python3.12", Role=fresh.default_role(),
                                Handler="handler.lambda_handler", Code={"ZipFile": big})
        elif operation == "PublishLayerVersion":
            lam.publish_layer_version(LayerName="big", Content={"ZipFile": big})
        else:
            lam.create_function(FunctionName="pkg", Runtime="python3.12", Role=fresh.default_role(),
                                Handler="handler.lambda_handler", Code={"ZipFile": GOOD})
            lam.update_function_code(FunctionName="pkg", ZipFile=big)
    error = raised.value.response
    assert error["ResponseMetadata"]["HTTPStatusCode"] == 413
    assert error["Error"]["Code"] == "RequestEntityTooLargeException"
    assert f"for the {operation} operation" in error["Error"]["Message"]
    if operation == "CreateFunction":
        assert "pkg" not in fresh.runtime.functions()
    elif operation == "PublishLayerVersion":
        assert lam.list_layers()["Layers"] == []
    else:
        assert lam.invoke(FunctionName="pkg")["Payload"].read() == b'"ok"'
