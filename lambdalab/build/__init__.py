"""Deployment packages as `sam build` makes them: the handler's code plus its `requirements.txt`.

`lambdalab.build.package` installs the dependencies into a package directory (cached by the hash of
the requirements and the target) and zips it for `create_function`; `lambdalab.build.targets` says
for which interpreter and platform (the local workers, or Lambda's upload).
"""

from lambdalab.build.package import BuildError, build

__all__ = ["BuildError", "build"]
