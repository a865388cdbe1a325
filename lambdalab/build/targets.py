"""Which interpreter and platform a build is for: the local workers, or Lambda's (the upload)."""

from __future__ import annotations

import platform
import re
import sys
from dataclasses import dataclass

from lambdalab.runtime.config import ARCHITECTURES

# The platform tags AWS documents for packaging native wheels for Lambda (manylinux2014 is glibc 2.17,
# older than any Lambda base image): https://docs.aws.amazon.com/lambda/latest/dg/python-package.html
LAMBDA_PLATFORMS = {"x86_64": "manylinux2014_x86_64", "arm64": "manylinux2014_aarch64"}
_RUNTIME = re.compile(r"^python(3)\.(\d{1,2})$")


@dataclass(frozen=True)
class Target:
    """A build's interpreter (`3.12`) and wheel platform (None: the local interpreter's own)."""

    python: str
    platform: str | None = None

    @property
    def local(self) -> bool:
        return self.platform is None

    def pip_options(self) -> list[str]:
        """What pip needs to install for this target rather than for itself."""
        if self.local:
            return []
        return ["--platform", self.platform, "--implementation", "cp", "--python-version", self.python,
                "--only-binary=:all:"]

    def describe(self) -> str:
        where = self.platform or f"{sys.platform} {platform.machine()}"
        return f"python{self.python} on {where}"


def local_target() -> Target:
    """The interpreter and platform that run the workers here."""
    return Target(f"{sys.version_info.major}.{sys.version_info.minor}")


def upload_target(runtime: str, architecture: str = "x86_64", platform_tag: str | None = None) -> Target:
    """Lambda's platform for `runtime` (`python3.12`) and `architecture`, or an explicit wheel platform."""
    match = _RUNTIME.match(runtime)
    if not match:
        raise ValueError(f"runtime {runtime!r} is not a Python runtime (python3.N)")
    if architecture not in ARCHITECTURES:
        raise ValueError(f"architecture {architecture!r} is not one of {', '.join(ARCHITECTURES)}")
    return Target(f"{match[1]}.{match[2]}", platform_tag or LAMBDA_PLATFORMS[architecture])
