"""Layers through the Lambda API, and a function's declared runtime, with plain boto3 against the local cloud.

https://docs.aws.amazon.com/lambda/latest/api/API_PublishLayerVersion.html (a layer is a zip);
https://docs.aws.amazon.com/lambda/latest/dg/packaging-layers.html (Lambda extracts a layer into
/opt; Python finds `python` and `python/lib/python3.x/site-packages` there);
https://docs.aws.amazon.com/lambda/latest/dg/adding-layers.html (up to five layers, merged in the
order given; code and layers together within the unzipped quota; a function keeps a layer version
deleted later); https://docs.aws.amazon.com/lambda/latest/dg/gettingstarted-limits.html (five
layers; 250 MB, 262,144,000 bytes, unzipped including layers);
https://docs.aws.amazon.com/lambda/latest/dg/configuration-envvars.html (`AWS_EXECUTION_ENV`).
"""

from __future__ import annotations

import base64
import io
import json
import zipfile

import botocore.exceptions
import pytest

from lambdalab.cloud.packages import UNZIPPED_LIMIT_BYTES
from lambdalab.runtime.imports import python_tag

PROBE = '''
import importlib, os

def handler(event, context):
    found = {}
    for name in event.get("modules", []):
        try:
            module = importlib.import_module(name)
            found[name] = getattr(module, "VALUE", True)
        except ImportError:
            found[name] = False
    return {"found": found, "env": os.environ["AWS_EXECUTION_ENV"]}
'''


def zipped(files: dict[str, str | bytes]) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as zf:
        for name, content in files.items():
            zf.writestr(name, content)
    return buffer.getvalue()


def publish(lam, name: str, files: dict[str, str | bytes]) -> str:
    return lam.publish_layer_version(LayerName=name, Content={"ZipFile": zipped(files)},
                                     CompatibleRuntimes=[python_tag()])["LayerVersionArn"]


def create(cloud, name: str, **options) -> dict:
    options.setdefault("Runtime", python_tag())
    return cloud.client("lambda").create_function(
        FunctionName=name, Role=cloud.default_role(), Handler="probe.handler", Timeout=10,
        Code={"ZipFile": zipped({"probe.py": PROBE})}, **options)


def call(cloud, name: str, modules: list[str], **options) -> dict:
    response = cloud.client("lambda").invoke(FunctionName=name, Payload=json.dumps({"modules": modules}), **options)
    body = json.loads(response["Payload"].read())
    assert "FunctionError" not in response, body
    return body if not options else {**body, "log": base64.b64decode(response["LogResult"]).decode()}


def error_of(raised: pytest.ExceptionInfo) -> tuple[str, str]:
    error = raised.value.response["Error"]
    return error["Code"], error["Message"]


def test_a_published_layer_is_importable_only_from_a_function_that_lists_it(fresh):
    lam = fresh.client("lambda")
    arn = publish(lam, "helpers", {"python/plain_mod.py": "VALUE = 'plain'\n",
                                   f"python/lib/{python_tag()}/site-packages/sited_mod.py": "VALUE = 'sited'\n"})
    create(fresh, "with-layer", Layers=[arn])
    create(fresh, "without-layer")
    modules = ["plain_mod", "sited_mod"]
    assert call(fresh, "with-layer", modules)["found"] == {"plain_mod": "plain", "sited_mod": "sited"}
    assert call(fresh, "without-layer", modules)["found"] == {"plain_mod": False, "sited_mod": False}


def test_layers_are_merged_in_the_order_listed(fresh):
    lam = fresh.client("lambda")
    first = publish(lam, "first", {"python/shared.py": "VALUE = 'first'\n", "python/only_first.py": "VALUE = 1\n"})
    second = publish(lam, "second", {"python/shared.py": "VALUE = 'second'\n"})
    create(fresh, "ordered", Layers=[first, second])
    assert call(fresh, "ordered", ["shared", "only_first"])["found"] == {"shared": "second", "only_first": 1}
    lam.update_function_configuration(FunctionName="ordered", Layers=[second, first])
    assert call(fresh, "ordered", ["shared"])["found"] == {"shared": "first"}


def test_layers_added_by_update_function_configuration_reach_the_function(fresh):
    lam = fresh.client("lambda")
    create(fresh, "later")
    assert call(fresh, "later", ["late_mod"])["found"] == {"late_mod": False}
    arn = publish(lam, "late", {"python/late_mod.py": "VALUE = 'late'\n"})
    lam.update_function_configuration(FunctionName="later", Layers=[arn])
    assert call(fresh, "later", ["late_mod"])["found"] == {"late_mod": "late"}
    lam.update_function_configuration(FunctionName="later", Layers=[])
    assert call(fresh, "later", ["late_mod"])["found"] == {"late_mod": False}


def test_a_function_keeps_a_layer_version_deleted_later(fresh):
    lam = fresh.client("lambda")
    arn = publish(lam, "doomed", {"python/doomed_mod.py": "VALUE = 'kept'\n"})
    create(fresh, "keeper", Layers=[arn])
    lam.delete_layer_version(LayerName="doomed", VersionNumber=1)
    lam.update_function_configuration(FunctionName="keeper", MemorySize=256)  # a new environment
    assert call(fresh, "keeper", ["doomed_mod"])["found"] == {"doomed_mod": "kept"}


def test_six_layers_are_refused_and_nothing_is_created(fresh):
    lam = fresh.client("lambda")
    arns = [publish(lam, f"layer{i}", {f"python/m{i}.py": ""}) for i in range(6)]
    with pytest.raises(botocore.exceptions.ClientError) as raised:
        create(fresh, "six", Layers=arns)
    assert error_of(raised) == ("InvalidParameterValueException", "Cannot reference more than 5 layers.")
    with pytest.raises(lam.exceptions.ResourceNotFoundException):
        lam.get_function(FunctionName="six")
    create(fresh, "five", Layers=arns[:5])
    with pytest.raises(botocore.exceptions.ClientError) as raised:
        lam.update_function_configuration(FunctionName="five", Layers=arns)
    assert error_of(raised)[0] == "InvalidParameterValueException"
    assert len(lam.get_function_configuration(FunctionName="five")["Layers"]) == 5


def _big_zip(size: int) -> bytes:
    """A layer whose one file of zeros expands to `size` bytes (its zip is a few hundred kB)."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as zf, zf.open("python/zeros.bin", "w") as out:
        chunk = bytes(1 << 20)
        for start in range(0, size, len(chunk)):
            out.write(chunk[:min(len(chunk), size - start)])
    return buffer.getvalue()


def test_code_and_layers_past_the_unzipped_quota_are_refused(fresh):
    lam = fresh.client("lambda")
    half = UNZIPPED_LIMIT_BYTES // 2 + 1  # each layer alone is within the quota; the two together are not
    big = _big_zip(half)
    arns = [lam.publish_layer_version(LayerName=name, Content={"ZipFile": big})["LayerVersionArn"]
            for name in ("big-a", "big-b")]
    code_size = len(PROBE.encode())
    message = (f"Function code combined with layers exceeds the maximum allowed size of {UNZIPPED_LIMIT_BYTES} "
               f"bytes. The actual size is {code_size + 2 * half} bytes.")
    with pytest.raises(botocore.exceptions.ClientError) as raised:
        create(fresh, "too-big", Layers=arns)
    assert error_of(raised) == ("InvalidParameterValueException", message)
    with pytest.raises(lam.exceptions.ResourceNotFoundException):
        lam.get_function(FunctionName="too-big")
    create(fresh, "one-big", Layers=arns[:1])
    with pytest.raises(botocore.exceptions.ClientError) as raised:
        lam.update_function_configuration(FunctionName="one-big", Layers=arns)
    assert error_of(raised) == ("InvalidParameterValueException", message)
    assert [layer["Arn"] for layer in lam.get_function_configuration(FunctionName="one-big")["Layers"]] == arns[:1]


def test_a_layer_that_is_not_a_zip_is_refused(fresh):
    lam = fresh.client("lambda")
    with pytest.raises(botocore.exceptions.ClientError) as raised:
        lam.publish_layer_version(LayerName="broken", Content={"ZipFile": b"not a zip"})
    assert error_of(raised)[0] == "InvalidParameterValueException"
    assert lam.list_layers()["Layers"] == []


def test_the_declared_runtime_is_kept_and_init_says_which_python_runs(fresh):
    declared = "python3.9" if python_tag() != "python3.9" else "python3.13"
    create(fresh, "declared", Runtime=declared)
    lam = fresh.client("lambda")
    assert lam.get_function_configuration(FunctionName="declared")["Runtime"] == declared
    cold = call(fresh, "declared", [], LogType="Tail")
    assert cold["env"] == f"AWS_Lambda_{python_tag()}"  # the Python that really runs
    said = [line for line in cold["log"].splitlines() if "declares runtime" in line]
    assert len(said) == 1 and f"declares runtime {declared}, but runs on the local Python" in said[0]
    assert "declares runtime" not in call(fresh, "declared", [], LogType="Tail")["log"]  # INIT only


def test_deploy_declares_the_local_python_by_default(fresh, code):
    directory = code(PROBE.replace("def handler", "def lambda_handler"))
    assert fresh.deploy("by-default", directory, "handler.lambda_handler")["Runtime"] == python_tag()
    response = fresh.client("lambda").invoke(FunctionName="by-default", LogType="Tail")
    assert "declares runtime" not in base64.b64decode(response["LogResult"]).decode()


def test_another_runtime_is_refused_by_update_function_configuration(fresh):
    create(fresh, "stays-python")
    lam = fresh.client("lambda")
    with pytest.raises(botocore.exceptions.ClientError) as raised:
        lam.update_function_configuration(FunctionName="stays-python", Runtime="nodejs20.x")
    code, message = error_of(raised)
    assert code == "InvalidParameterValueException" and "nodejs20.x" in message
    assert lam.get_function_configuration(FunctionName="stays-python")["Runtime"] == python_tag()
