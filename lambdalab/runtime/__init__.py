"""The local Lambda service: functions, execution environments, invocations and their records.

This package never imports moto, the local cloud or the course: it is Lambda alone, usable
by itself (`LocalRuntime`). Its modules are imported lazily by whoever needs them, so a worker
process that runs `lambdalab.runtime.ric` loads nothing else from here.
"""
