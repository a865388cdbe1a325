"""A `lambdalab cloud --iam` process standing in for AWS, reached as a learner reaches a sandbox
account: a temporary shared-credentials file with a named profile, `AWS_ENDPOINT_URL`, and
`LAMBDALAB_AWS_ACCOUNT` set to the account id STS reports."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import boto3
import nbformat
import pytest
from nbclient import NotebookClient

from lambdalab.course.target.base import QUIET_ENV

PROFILE = "sandbox"
# The stand-in delivers an event within milliseconds; AWS within a second or two (QUIET_S is 6).
STAND_IN_QUIET_S = "1.5"


@pytest.fixture(scope="module")
def stand_in(tmp_path_factory):
    """The stand-in's environment for a learner's process (no keys in it: they are in the file)."""
    folder = tmp_path_factory.mktemp("stand-in")
    env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_") and k != "LAMBDALAB_AWS_ACCOUNT"}
    server = subprocess.Popen([sys.executable, "-m", "lambdalab.cli.main", "cloud", "--iam", "--quiet", "--port", "0"],
                              stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True, env=env)
    try:
        exported = None
        for line in server.stdout:
            if line.startswith("export "):
                exported = dict(pair.split("=", 1) for pair in line[len("export "):].split())
                break
        assert exported is not None, "the stand-in printed no credentials"
        credentials = folder / "credentials"
        credentials.write_text(f"[{PROFILE}]\naws_access_key_id = {exported['AWS_ACCESS_KEY_ID']}\n"
                               f"aws_secret_access_key = {exported['AWS_SECRET_ACCESS_KEY']}\n")
        (folder / "config").write_text(f"[profile {PROFILE}]\nregion = {exported['AWS_DEFAULT_REGION']}\n")
        env.update(AWS_SHARED_CREDENTIALS_FILE=str(credentials), AWS_CONFIG_FILE=str(folder / "config"),
                   AWS_PROFILE=PROFILE, AWS_ENDPOINT_URL=exported["AWS_ENDPOINT_URL"])
        account = boto3.session.Session(
            aws_access_key_id=exported["AWS_ACCESS_KEY_ID"], aws_secret_access_key=exported["AWS_SECRET_ACCESS_KEY"],
            region_name=exported["AWS_DEFAULT_REGION"]).client(
            "sts", endpoint_url=exported["AWS_ENDPOINT_URL"]).get_caller_identity()["Account"]
        yield {"env": env, "account": account}
    finally:
        server.send_signal(signal.SIGTERM)
        try:
            server.wait(timeout=30)
        except subprocess.TimeoutExpired:
            server.kill()
            server.wait()
        server.stdout.close()


@pytest.fixture
def sandbox(stand_in, monkeypatch):
    """This process pointed at the stand-in, the account confirmed; returns the environment."""
    for key in [k for k in os.environ if k.startswith("AWS_")]:
        monkeypatch.delenv(key)
    for key, value in stand_in["env"].items():
        if key.startswith("AWS_"):
            monkeypatch.setenv(key, value)
    monkeypatch.setenv("LAMBDALAB_AWS_ACCOUNT", stand_in["account"])
    monkeypatch.setenv("LAMBDALAB_TARGET", "aws")
    monkeypatch.setenv(QUIET_ENV, STAND_IN_QUIET_S)
    return {**stand_in["env"], "LAMBDALAB_AWS_ACCOUNT": stand_in["account"], "LAMBDALAB_TARGET": "aws",
            QUIET_ENV: STAND_IN_QUIET_S}


@pytest.fixture
def function_code(tmp_path) -> Path:
    code = tmp_path / "fn"
    code.mkdir()
    (code / "handler.py").write_text("def lambda_handler(event, context):\n    print('EVENT', event)\n"
                                     "    return {'ok': True}\n")
    return code


NOTEBOOKS = Path(__file__).resolve().parents[3] / "notebooks"


@pytest.fixture
def run_notebook(sandbox):
    """Execute `notebooks/<name>.ipynb` on the stand-in (the kernel inherits this process's
    environment); returns everything its code cells showed as text, in order."""
    def run(name: str, timeout: int = 400) -> str:
        book = nbformat.read(NOTEBOOKS / f"{name}.ipynb", as_version=4)
        NotebookClient(book, timeout=timeout, kernel_name="python3",
                       resources={"metadata": {"path": str(NOTEBOOKS)}}).execute()
        return "\n".join("".join(o.get("text", "")) + str(o.get("data", {}).get("text/plain", ""))
                         for cell in book.cells if cell.cell_type == "code" for o in cell.outputs)
    return run
