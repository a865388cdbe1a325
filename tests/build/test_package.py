"""`lambdalab build`: a handler's requirements.txt installed beside it, as `sam build` does, cached and offline.

https://docs.aws.amazon.com/lambda/latest/dg/python-package.html (a .zip deployment package with
dependencies: `pip install --target` into the package directory, then zip it; for Lambda's
platform, `--platform manylinux2014_x86_64 --only-binary=:all:`);
https://docs.aws.amazon.com/serverless-application-model/latest/developerguide/sam-cli-command-reference-sam-build.html
"""

from __future__ import annotations

import io
import json
import os
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from lambdalab.build import package as pkg
from lambdalab.build.package import BuildError, build
from lambdalab.build.targets import local_target, upload_target
from lambdalab.cli.main import main as cli
from lambdalab.runtime.config import FunctionConfig
from lambdalab.runtime.service import LocalRuntime

ROOT = Path(__file__).resolve().parents[2]
TUTORIAL = "from PIL import Image\n\ndef lambda_handler(event, context):\n    return Image.new('RGB', (3, 2)).size\n"
# Every index pip could reach is made unreachable: the config files are ignored, the index is a closed port.
OFFLINE = {"PIP_CONFIG_FILE": os.devnull, "PIP_INDEX_URL": "http://127.0.0.1:9/simple", "PIP_FIND_LINKS": "",
           "PIP_EXTRA_INDEX_URL": "", "PIP_RETRIES": "0", "PIP_TIMEOUT": "2"}


@pytest.fixture
def offline(monkeypatch, tmp_path):
    """A fresh cache (so pip really runs) and no package index."""
    monkeypatch.setenv("LAMBDALAB_CACHE", str(tmp_path / "cache"))
    for key, value in OFFLINE.items():
        monkeypatch.setenv(key, value)
    if pkg.default_wheelhouse() is None:
        pytest.fail("no wheelhouse: run `make setup` (it fills build/wheelhouse)", pytrace=False)


@pytest.fixture
def tutorial(tmp_path) -> Path:
    code = tmp_path / "tutorial"
    code.mkdir()
    (code / "lambda_function.py").write_text(TUTORIAL)
    (code / "requirements.txt").write_text("pillow  # the image library\n")
    return code


def run(code_dir: Path) -> object:
    with LocalRuntime(cpu_limit=False) as rt:
        rt.deploy(FunctionConfig(name="tutorial", code_dir=code_dir, handler="lambda_function.lambda_handler",
                                 timeout_s=10))
        inv = rt.invoke("tutorial", {})
    return json.loads(inv.payload) if inv.ok else inv.error


def test_build_makes_the_dependency_importable(offline, tutorial):
    assert run(tutorial)["errorMessage"] == "Unable to import module 'lambda_function': No module named 'PIL'"
    result = build(tutorial)
    assert (result.package_dir / "PIL").is_dir() and (result.package_dir / "lambda_function.py").is_file()
    assert run(result.package_dir) == [3, 2]
    names = zipfile.ZipFile(io.BytesIO(result.zip_bytes())).namelist()
    assert "lambda_function.py" in names and "PIL/Image.py" in names


def test_the_course_builds_make_no_network_request(offline):
    """After `make setup`, every course function with a requirements.txt builds from the wheelhouse alone."""
    for req in sorted(ROOT.glob("solutions/*/requirements.txt")):
        result = build(req.parent)
        assert result.requirements and any("wheelhouse" in line for line in result.log)


def test_the_index_really_is_unreachable_there(offline, tutorial):
    with pytest.raises(BuildError, match="pillow"):
        build(tutorial, online=True)


def test_a_rebuild_is_instant_it_runs_no_pip(offline, tutorial, monkeypatch):
    first = build(tutorial)
    monkeypatch.setattr(pkg.subprocess, "run", lambda *a, **k: pytest.fail("pip ran again"))
    assert build(tutorial).package_dir == first.package_dir
    (tutorial / "lambda_function.py").write_text(TUTORIAL.replace("(3, 2)", "(4, 4)"))
    edited = build(tutorial)  # the code changed, the requirements did not: no pip either
    assert edited.package_dir != first.package_dir
    assert "(4, 4)" in (edited.package_dir / "lambda_function.py").read_text()


def test_a_built_package_builds_again_into_the_same_files(offline, tutorial):
    """A package handed to a build again (a lesson passing `package(dir)` to the target, which builds
    for where it runs functions) builds: its files are hard links of the same cached install."""
    first = build(tutorial)
    again = build(first.package_dir)
    names = sorted(zipfile.ZipFile(io.BytesIO(again.zip_bytes())).namelist())
    assert names == sorted(zipfile.ZipFile(io.BytesIO(first.zip_bytes())).namelist())
    assert run(again.package_dir) == [3, 2]


def test_a_missing_package_is_named(offline, tutorial):
    (tutorial / "requirements.txt").write_text("pillow\nno-such-package-lambdalab\n")
    with pytest.raises(BuildError, match="cannot install no-such-package-lambdalab for python3"):
        build(tutorial)


def test_the_upload_target_says_it_differs(offline, tutorial):
    other = "python3.12" if local_target().python != "3.12" else "python3.13"
    target = upload_target(other, "arm64")
    assert target.pip_options()[:2] == ["--platform", "manylinux2014_aarch64"]
    (tutorial / "requirements.txt").write_text("")  # nothing to install: the log is what is tested
    result = build(tutorial, target=target)
    assert any("differs from the local one" in line for line in result.log)


def test_the_command_line(offline, tutorial, capsys):
    assert cli(["build", str(tutorial)]) == 0
    zip_path = Path(capsys.readouterr().out.strip())
    package_dir = zip_path.with_suffix("")
    assert (package_dir / "PIL").is_dir()
    done = subprocess.run([sys.executable, "-m", "lambdalab.cli.main", "invoke", str(package_dir),
                           "--handler", "lambda_function.lambda_handler"], capture_output=True, text=True,
                          timeout=60, env={**os.environ})
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout) == [3, 2]


def test_a_built_zip_runs_through_create_function_from_plain_boto3(offline, tutorial):
    from lambdalab.cloud.local_cloud import LocalCloud

    (tutorial / "lambda_function.py").write_text(TUTORIAL + "\n\ndef probe(event, context):\n"
                                                 "    import importlib.util\n"
                                                 "    return [importlib.util.find_spec(m) is not None\n"
                                                 "            for m in ('PIL', 'boto3', 'lambdalab')]\n")
    zipped = build(tutorial).zip_bytes()
    with LocalCloud(cpu_limit=False) as cloud:
        lam = cloud.client("lambda")
        for name, handler in (("tutorial", "lambda_function.lambda_handler"), ("probe", "lambda_function.probe")):
            lam.create_function(FunctionName=name, Runtime="python3.12", Role=cloud.default_role(),
                                Handler=handler, Code={"ZipFile": zipped}, Timeout=10)
        assert json.loads(lam.invoke(FunctionName="tutorial")["Payload"].read()) == [3, 2]
        assert json.loads(lam.invoke(FunctionName="probe")["Payload"].read()) == [True, True, False]


def test_local_cloud_deploy_runs_the_built_package_and_not_the_bare_code(offline, tutorial):
    from lambdalab.cloud.local_cloud import LocalCloud

    built = build(tutorial).package_dir
    with LocalCloud(cpu_limit=False) as cloud:
        lam = cloud.client("lambda")
        cloud.deploy("bare", tutorial, "lambda_function.lambda_handler", timeout=10)
        bare = lam.invoke(FunctionName="bare")
        assert bare.get("FunctionError") == "Unhandled"
        error = json.loads(bare["Payload"].read())
        assert error["errorType"] == "Runtime.ImportModuleError"
        assert error["errorMessage"] == "Unable to import module 'lambda_function': No module named 'PIL'"
        cloud.deploy("built", built, "lambda_function.lambda_handler", timeout=10)
        assert json.loads(lam.invoke(FunctionName="built")["Payload"].read()) == [3, 2]
