"""What the cloud tests share: a module's cloud (`cloud`, emptied for a test by `fresh`), handler
code written to a folder (`code`), and the event contract checker of tests/events/contract.py."""

import sys
import textwrap
from pathlib import Path

import pytest

from lambdalab.cloud.local_cloud import LocalCloud

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "events"))


@pytest.fixture(scope="module")
def cloud():
    with LocalCloud(cpu_limit=False, async_retry_delays=(0.1, 0.1)) as c:
        yield c


@pytest.fixture
def fresh(cloud):
    cloud.reset()
    return cloud


@pytest.fixture
def code(tmp_path):
    def make(source: str, name: str = "fn") -> Path:
        directory = tmp_path / name
        directory.mkdir(exist_ok=True)
        (directory / "handler.py").write_text(textwrap.dedent(source))
        return directory
    return make
