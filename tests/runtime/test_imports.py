"""A worker imports only its code package, its layers and what Lambda's Python runtime provides.

https://docs.aws.amazon.com/lambda/latest/dg/python-package.html ("Dependency search path and
runtime-included libraries": the package, then layers, then the runtime's own libraries, the SDK);
https://docs.aws.amazon.com/lambda/latest/dg/packaging-layers.html (a layer's `python` and
`python/lib/python3.x/site-packages` directories are on the path).
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

from lambdalab.runtime.config import FunctionConfig
from lambdalab.runtime.environment import runtime_mismatch_line
from lambdalab.runtime.errors import InvalidParameterValueException
from lambdalab.runtime.imports import python_tag
from lambdalab.runtime.sandbox import LAYERS_ROOT
from lambdalab.runtime.sandbox import probe as probe_sandbox
from lambdalab.runtime.service import LocalRuntime

PROBE = '''
import importlib, json, os, sys

def lambda_handler(event, context):
    found = {}
    for name in event["modules"]:
        try:
            importlib.import_module(name)
            found[name] = True
        except ImportError:
            found[name] = False
    return {"found": found, "path": sys.path, "env": os.environ.get("AWS_EXECUTION_ENV"),
            "task_root": os.environ["LAMBDA_TASK_ROOT"]}
'''


@pytest.fixture
def rt():
    with LocalRuntime(cpu_limit=False) as runtime:
        yield runtime


def probe(rt: LocalRuntime, tmp_path: Path, modules: list[str], **config) -> dict:
    code = tmp_path / "code"
    code.mkdir(exist_ok=True)
    (code / "probe.py").write_text(PROBE)
    rt.deploy(FunctionConfig(name="probe", code_dir=code, handler="probe.lambda_handler", **config))
    inv = rt.invoke("probe", {"modules": modules})
    assert inv.ok, inv.error
    return json.loads(inv.payload)


def test_the_handler_sees_the_runtime_libraries_and_nothing_else(rt, tmp_path):
    result = probe(rt, tmp_path, ["boto3", "botocore", "s3transfer", "jmespath", "dateutil", "urllib3", "json",
                                  "lambdalab", "PIL", "numpy", "psycopg", "pytest", "moto"])
    assert result["found"] == {"boto3": True, "botocore": True, "s3transfer": True, "jmespath": True,
                               "dateutil": True, "urllib3": True, "json": True,
                               "lambdalab": False, "PIL": False, "numpy": False, "psycopg": False,
                               "pytest": False, "moto": False}
    project_root = str(Path(__file__).resolve().parents[2])
    assert project_root not in result["path"]
    assert not [p for p in result["path"] if p.endswith("site-packages") and "lib/python3" in p
                and p.startswith(sys.prefix)]
    assert result["path"][0] == result["task_root"]  # the package comes first (as the worker sees it), once
    assert result["path"].count(result["path"][0]) == 1


def test_an_unpackaged_dependency_fails_with_lambdas_import_module_error(rt, tmp_path):
    """The AWS thumbnail tutorial's handler, deployed without Pillow in its package."""
    code = tmp_path / "tutorial"
    code.mkdir()
    (code / "lambda_function.py").write_text("from PIL import Image\n\ndef lambda_handler(event, context):\n"
                                             "    return Image.__name__\n")
    rt.deploy(FunctionConfig(name="tutorial", code_dir=code, handler="lambda_function.lambda_handler"))
    inv = rt.invoke("tutorial", {})
    assert inv.error_type == "Runtime.ImportModuleError"
    assert inv.error["errorMessage"] == "Unable to import module 'lambda_function': No module named 'PIL'"


def test_layers_are_on_the_path_where_lambda_puts_them(rt, tmp_path):
    layer = tmp_path / "layer"
    (layer / "python").mkdir(parents=True)
    (layer / "python" / "plain_mod.py").write_text("X = 1\n")
    site = layer / "python" / "lib" / python_tag() / "site-packages"
    site.mkdir(parents=True)
    (site / "sited_mod.py").write_text("X = 2\n")
    with_layer = probe(rt, tmp_path, ["plain_mod", "sited_mod"], layers=[layer])
    assert with_layer["found"] == {"plain_mod": True, "sited_mod": True}
    # Inside the sandbox the layers are extracted into /opt, as on Lambda; without it they stay where they are.
    opt = Path(LAYERS_ROOT) if probe_sandbox().ok else layer.resolve()
    assert with_layer["path"][1:3] == [str(opt / "python" / "lib" / python_tag() / "site-packages"),
                                       str(opt / "python")]


def test_without_the_layer_its_modules_are_not_importable(rt, tmp_path):
    (tmp_path / "layer" / "python").mkdir(parents=True)
    (tmp_path / "layer" / "python" / "plain_mod.py").write_text("X = 1\n")
    assert probe(rt, tmp_path, ["plain_mod"])["found"] == {"plain_mod": False}


def test_at_most_five_layers(tmp_path):
    """https://docs.aws.amazon.com/lambda/latest/dg/gettingstarted-limits.html: five layers per function."""
    layers = []
    for i in range(6):
        (tmp_path / f"l{i}").mkdir()
        layers.append(tmp_path / f"l{i}")
    with pytest.raises(InvalidParameterValueException, match="6 layers: a function can use at most 5"):
        FunctionConfig(name="f", code_dir=tmp_path, handler="m.h", layers=layers)


def test_a_declared_runtime_other_than_the_local_python_is_said_at_init(rt, tmp_path):
    other = "python3.9" if python_tag() != "python3.9" else "python3.13"
    code = tmp_path / "code"
    code.mkdir()
    (code / "probe.py").write_text(PROBE)
    rt.deploy(FunctionConfig(name="declared", code_dir=code, handler="probe.lambda_handler", runtime=other))
    cold = rt.invoke("declared", {"modules": []})
    assert json.loads(cold.payload)["env"] == f"AWS_Lambda_{python_tag()}"  # the Python that really runs
    assert [line for line in cold.log_lines if "declares runtime" in line] == [runtime_mismatch_line(other)]
    assert f"declares runtime {other}, but runs on the local Python {sys.version_info.major}." in cold.log_lines[0]
    warm = rt.invoke("declared", {"modules": []})
    assert not [line for line in warm.log_lines if "declares runtime" in line]


def test_the_same_runtime_logs_nothing_extra(rt, tmp_path):
    probe(rt, tmp_path, [], runtime=python_tag())
    lines = rt.invoke("probe", {"modules": []}).log_lines
    assert not [line for line in lines if "declares runtime" in line]


@pytest.mark.parametrize("runtime", ["nodejs20.x", "python2.7", "java21"])
def test_other_runtimes_are_refused(tmp_path, runtime):
    with pytest.raises(InvalidParameterValueException, match=f"runtime '{runtime}' is not supported here"):
        FunctionConfig(name="f", code_dir=tmp_path, handler="m.h", runtime=runtime)
