"""A pure-Python Lambda runtime interface client that behaves like awslambdaric 4.2.2.

Run as ``python -m lambdalab.runtime.ric module.function`` where AWS's ``awslambdaric`` cannot be
installed (it ships Linux wheels only). Its modules follow awslambdaric's own files:

* ``client``: the Runtime API client (``/invocation/next``, ``/response``, ``/error``,
  ``/init/error``) over one keep-alive connection;
* ``context``: the handler's context object;
* ``marshalling``: JSON in and out (simplejson, as awslambdaric);
* ``logs``: the logging set-up, the log sinks and the ``[ERROR]`` line;
* ``exceptions``: the runtime's own ``Runtime.*`` failures;
* ``bootstrap``: handler loading, error payloads and the loop;
* ``__main__``: the entry point, which also exits when the parent (the local runtime) dies;
* ``snapshot``: the template process of snapshot-restore starts (``lambdalab.runtime.snapstart``
  drives it).

Its observable behaviour (payloads, headers, log text, context attributes, exit codes) is
re-implemented from awslambdaric 4.2.2 (Apache-2.0) and checked against it by
``tests/runtime/test_ric.py``. Known, deliberate differences:

* ``/invocation/{id}/error`` also carries ``Lambda-Runtime-Function-Error-Type`` (the errorType);
  awslambdaric 4.2.2 sends only the X-Ray cause header there.
* When ``/next`` fails (non-200, no request id, connection lost) awslambdaric 4.2.2 crashes with
  SIGSEGV; this client logs the same ``LAMBDA_RUNTIME`` line, raises
  ``RuntimeError("Failed to get next")`` and exits with status 1.
* SnapStart hooks and multi-concurrency (``AWS_LAMBDA_MAX_CONCURRENCY``) are not implemented.

Everything here runs inside a worker process, so it imports only the standard library,
simplejson and its own modules (relatively), never the rest of ``lambdalab``: a cold start pays
for as little as possible, and the package also works copied out as a top-level package
(``tests/runtime/test_ric.py`` checks both). This file imports nothing.
"""
