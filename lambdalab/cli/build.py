"""`lambdalab build CODE_DIR`: package a handler with its requirements.txt, as `sam build` does."""

from __future__ import annotations

import argparse
import sys
from typing import Any

from lambdalab.runtime.config import ARCHITECTURES


def cmd_build(args: argparse.Namespace) -> int:
    from lambdalab.build.package import BuildError, build
    from lambdalab.build.targets import local_target, upload_target

    try:
        target = (local_target() if args.target == "local"
                  else upload_target(args.runtime, args.architecture, args.platform))
        result = build(args.code_dir, target=target, online=args.online)
    except (BuildError, ValueError) as e:
        print(f"lambdalab build: error: {e}", file=sys.stderr)
        return 1
    for line in result.log:
        print(line, file=sys.stderr)
    if target.local:
        print(f"Run it here: lambdalab invoke {result.package_dir} --handler MODULE.FUNCTION", file=sys.stderr)
    print(result.zip_path)  # for create_function(Code={"ZipFile": open(path, "rb").read()})
    return 0


def register(sub: Any) -> None:
    cmd = sub.add_parser("build", help="package a handler directory with its requirements.txt",
                         description="Install CODE_DIR/requirements.txt beside the code (as `sam build` does) and "
                                     "zip the package; prints the zip's path. Cached: a rebuild is instant. "
                                     "Installs from the course's wheelhouse (make setup) unless --online.")
    cmd.add_argument("code_dir", help="directory holding the handler module (and requirements.txt)")
    cmd.add_argument("--target", choices=("local", "upload"), default="local",
                     help="local: for the workers here (default); upload: for Lambda's platform")
    cmd.add_argument("--runtime", default="python3.12", help="the upload's runtime (python3.N)")
    cmd.add_argument("--architecture", choices=ARCHITECTURES, default="x86_64", help="the upload's architecture")
    cmd.add_argument("--platform", help="the upload's wheel platform tag (default: Lambda's for the architecture)")
    cmd.add_argument("--online", action="store_true", help="install from the package index, not the wheelhouse")
    cmd.set_defaults(func=cmd_build)
