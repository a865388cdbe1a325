"""A function's configuration: what Lambda lets you set, validated against Lambda's limits."""

from __future__ import annotations

import re
import sys
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from lambdalab.runtime.errors import InvalidParameterValueException

ACCOUNT_ID = "123456789012"
REGION = "us-east-1"
ARCHITECTURES = ("x86_64", "arm64")
MAX_LAYERS = 5  # https://docs.aws.amazon.com/lambda/latest/dg/gettingstarted-limits.html
_RUNTIME = re.compile(r"^python3\.\d{1,2}$")
_NAME = re.compile(r"^[A-Za-z0-9_-]{1,64}$")
_HANDLER = re.compile(r"^[^\s]+\.[A-Za-z_][A-Za-z0-9_]*$")
# Variables Lambda reserves for itself; a function may not set them.
RESERVED_ENV = frozenset({
    "_HANDLER", "_X_AMZN_TRACE_ID", "AWS_DEFAULT_REGION", "AWS_REGION", "AWS_EXECUTION_ENV",
    "AWS_LAMBDA_FUNCTION_NAME", "AWS_LAMBDA_FUNCTION_MEMORY_SIZE", "AWS_LAMBDA_FUNCTION_VERSION",
    "AWS_LAMBDA_INITIALIZATION_TYPE", "AWS_LAMBDA_LOG_GROUP_NAME", "AWS_LAMBDA_LOG_STREAM_NAME",
    "AWS_ACCESS_KEY", "AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN",
    "AWS_LAMBDA_RUNTIME_API", "LAMBDA_TASK_ROOT", "LAMBDA_RUNTIME_DIR",
})


@dataclass(frozen=True)
class FunctionConfig:
    """Everything the runtime needs to run one function; validated on creation."""

    name: str
    code_dir: Path
    handler: str
    memory_mb: int = 128
    timeout_s: float = 3.0
    environment: Mapping[str, str] = field(default_factory=dict)
    ephemeral_storage_mb: int = 512
    reserved_concurrency: int | None = None
    provisioned_concurrency: int = 0
    architecture: str = "x86_64"
    region: str = REGION
    account_id: str = ACCOUNT_ID
    role_arn: str | None = None
    snap_start: bool = False  # new environments are forked from an initialised template
    # Directories of extracted layer content, in order (Lambda extracts each into /opt).
    layers: Sequence[Path] = ()
    runtime: str | None = None  # the declared runtime ("python3.12"); None: the local interpreter's

    def __post_init__(self) -> None:
        object.__setattr__(self, "code_dir", Path(self.code_dir).resolve())
        object.__setattr__(self, "environment", dict(self.environment))
        object.__setattr__(self, "layers", tuple(Path(p).resolve() for p in self.layers))
        problems = list(self._problems())
        if problems:
            raise InvalidParameterValueException(f"function {self.name!r}: " + "; ".join(problems))

    def _problems(self):
        if not _NAME.match(self.name):
            yield "name must be 1-64 letters, digits, '-' or '_'"
        if not self.code_dir.is_dir():
            yield f"code directory {str(self.code_dir)!r} does not exist"
        if not _HANDLER.match(self.handler):
            yield f"handler {self.handler!r} must look like 'module.function'"
        if not isinstance(self.memory_mb, int) or not 128 <= self.memory_mb <= 10240:
            yield f"memory {self.memory_mb!r} MB is outside 128-10240 MB"
        if not 1 <= self.timeout_s <= 900:
            yield f"timeout {self.timeout_s!r} s is outside 1-900 s"
        if not 512 <= self.ephemeral_storage_mb <= 10240:
            yield f"ephemeral storage {self.ephemeral_storage_mb!r} MB is outside 512-10240 MB"
        if self.reserved_concurrency is not None and self.reserved_concurrency < 0:
            yield "reserved concurrency must be >= 0"
        if self.provisioned_concurrency < 0:
            yield "provisioned concurrency must be >= 0"
        if self.reserved_concurrency is not None and self.provisioned_concurrency > self.reserved_concurrency:
            yield "provisioned concurrency cannot exceed reserved concurrency"
        if len(self.layers) > MAX_LAYERS:
            yield f"{len(self.layers)} layers: a function can use at most {MAX_LAYERS}"
        for layer in self.layers:
            if not layer.is_dir():
                yield f"layer directory {str(layer)!r} does not exist"
        if self.runtime is not None and not _RUNTIME.match(self.runtime):
            yield (f"runtime {self.runtime!r} is not supported here: the local runtime runs Python "
                   "functions only (python3.N)")
        if self.architecture not in ARCHITECTURES:
            yield f"architecture {self.architecture!r} is not one of {', '.join(ARCHITECTURES)}"
        for key in self.environment:
            if key in RESERVED_ENV:
                yield f"environment variable {key} is reserved by Lambda"
            elif not re.match(r"^[a-zA-Z][a-zA-Z0-9_]*$", key):
                yield f"environment variable name {key!r} is not valid"

    @property
    def arn(self) -> str:
        return f"arn:aws:lambda:{self.region}:{self.account_id}:function:{self.name}"

    @property
    def declared_python(self) -> str:
        """The runtime the function asked for (`python3.N`); the local interpreter's when unset."""
        return self.runtime or f"python{sys.version_info.major}.{sys.version_info.minor}"

    @property
    def log_group(self) -> str:
        return f"/aws/lambda/{self.name}"
