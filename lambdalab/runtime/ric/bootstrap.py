"""The runtime loop of one worker: load the handler, then fetch, run and answer events forever.

awslambdaric's bootstrap.py: handler loading and its init error types (``Runtime.ImportModuleError``,
``Runtime.HandlerNotFound``...), the error payloads and their X-Ray cause, the context built
from each event's headers, and the loop over the Runtime API. Frames of this file are stripped
from the tracebacks users see, so the handler is called from here.
"""

from __future__ import annotations

import importlib
import logging
import os
import sys
import traceback

from .client import InvocationRequest, LambdaRuntimeClient
from .context import LambdaContext
from .exceptions import FaultException
from .logs import Unbuffered, create_log_sink, log_error, set_request, setup_logging
from .marshalling import marshal_response, to_json, unmarshal_request

PREVIEW_RUNTIME_ENVS = frozenset({"AWS_Lambda_python3.15"})

_LAMBDA_WARNING = "LAMBDA_WARNING"
_PREVIEW_DOC_LINK = "https://docs.aws.amazon.com/lambda/latest/dg/lambda-runtimes.html"
_PREVIEW_DOC_LINK_CN = "https://docs.amazonaws.cn/lambda/latest/dg/lambda-runtimes.html"
UNHANDLED_EXCEPTION_WARNING = (
    f"{_LAMBDA_WARNING}: "
    "Unhandled exception. "
    "The most likely cause is an issue in the function code. "
    "However, in rare cases, a Lambda runtime update can cause unexpected function behavior. "
    "For functions using managed runtimes, runtime updates can be triggered by a function change, "
    "or can be applied automatically. "
    "To determine if the runtime has been updated, check the runtime version in the INIT_START log entry. "
    "If this error correlates with a change in the runtime version, you may be able to mitigate this "
    "error by temporarily rolling back to the previous runtime version. "
    "For more information, see https://docs.aws.amazon.com/lambda/latest/dg/runtimes-update.html\r"
)


# --------------------------------------------------------------------------- handler loading

def _get_handler(handler: str):
    try:
        modname, fname = handler.rsplit(".", 1)
    except ValueError as e:
        raise FaultException(FaultException.MALFORMED_HANDLER_NAME, f"Bad handler '{handler}': {str(e)}")

    try:
        if modname.split(".")[0] in sys.builtin_module_names:
            raise FaultException(
                FaultException.BUILT_IN_MODULE_CONFLICT,
                f"Cannot use built-in module {modname} as a handler module",
            )
        m = importlib.import_module(modname.replace("/", "."))
    except ImportError as e:
        raise FaultException(
            FaultException.IMPORT_MODULE_ERROR, f"Unable to import module '{modname}': {str(e)}"
        )
    except SyntaxError as e:
        trace = ['  File "%s" Line %s\n    %s' % (e.filename, e.lineno, e.text)]  # noqa: UP031 - as awslambdaric writes it
        raise FaultException(
            FaultException.USER_CODE_SYNTAX_ERROR, f"Syntax error in module '{modname}': {str(e)}", trace
        )

    try:
        return getattr(m, fname)
    except AttributeError:
        raise FaultException(
            FaultException.HANDLER_NOT_FOUND, f"Handler '{fname}' missing on module '{modname}'", None
        )


# --------------------------------------------------------------------------- errors

def make_error(error_message: str | None, error_type: str | None, stack_trace: list[str] | None,
               invoke_id: str | None = None) -> dict:
    return {
        "errorMessage": error_message if error_message else "",
        "errorType": error_type if error_type else "",
        "requestId": invoke_id if invoke_id is not None else "",
        "stackTrace": stack_trace if stack_trace else [],
    }


def extract_traceback(tb) -> list[tuple]:
    return [(frame.filename, frame.lineno, frame.name, frame.line) for frame in traceback.extract_tb(tb)]


def _user_frames(tb) -> list[tuple]:
    """The traceback from the first frame outside a ``bootstrap.py`` (the runtime's own frames)."""
    tb_tuples = extract_traceback(tb)
    for i in range(len(tb_tuples)):
        if "/bootstrap.py" not in tb_tuples[i][0]:
            return tb_tuples[i:]
    return tb_tuples


def build_fault_result(exc_info: tuple, msg: str | None) -> dict:
    etype, value, tb = exc_info
    return make_error(msg if msg else str(value), etype.__name__, traceback.format_list(_user_frames(tb)))


def make_xray_fault(ex_type: str, ex_msg: str, working_dir: str, tb_tuples: list[tuple]) -> dict:
    stack = []
    files = set()
    for tb_file, tb_line, tb_method, _code in tb_tuples:
        stack.append({"label": tb_method, "path": tb_file, "line": tb_line})
        files.add(tb_file)
    return {
        "working_directory": working_dir,
        "exceptions": [{"message": ex_msg, "type": ex_type, "stack": stack}],
        "paths": list(files),
    }


# --------------------------------------------------------------------------- the loop

def _log_preview_runtime_warning() -> None:
    if os.environ.get("LAMBDA_DISABLE_PREVIEW_WARN", ""):
        return
    if os.environ.get("AWS_EXECUTION_ENV", "") not in PREVIEW_RUNTIME_ENVS:
        return
    link = _PREVIEW_DOC_LINK_CN if os.environ.get("AWS_REGION", "").startswith("cn-") else _PREVIEW_DOC_LINK
    logging.warning(
        f"{_LAMBDA_WARNING}: This is a preview runtime version and should not be used for production workloads. "
        f"For further information and to provide feedback, see {link}\r"
    )


def update_xray_env_variable(xray_trace_id: str | None) -> None:
    if xray_trace_id is not None:
        os.environ["_X_AMZN_TRACE_ID"] = xray_trace_id
    else:
        os.environ.pop("_X_AMZN_TRACE_ID", None)


def parse_json_header(header: str, name: str):
    import json as stdlib_json  # awslambdaric parses these two headers with stdlib json

    try:
        return stdlib_json.loads(header)
    except Exception as e:
        raise FaultException(
            FaultException.LAMBDA_CONTEXT_UNMARSHAL_ERROR, f"Unable to parse {name} JSON: {str(e)}", None
        )


def create_lambda_context(client_context_json: str | None, cognito_identity_json: str | None,
                          epoch_deadline_time_in_ms: int, invoke_id: str, invoked_function_arn: str,
                          tenant_id: str | None) -> LambdaContext:
    client_context = parse_json_header(client_context_json, "Client Context") if client_context_json else None
    cognito_identity = parse_json_header(cognito_identity_json, "Cognito Identity") if cognito_identity_json else None
    return LambdaContext(invoke_id, client_context, cognito_identity, epoch_deadline_time_in_ms,
                         invoked_function_arn, tenant_id)


def handle_event_request(client: LambdaRuntimeClient, request_handler, request: InvocationRequest, log_sink) -> None:
    error_result = None
    try:
        context = create_lambda_context(
            request.client_context, request.cognito_identity, request.deadline_time_in_ms,
            request.invoke_id, request.invoked_function_arn, request.tenant_id,
        )
        event = unmarshal_request(request.event_body, request.content_type)
        response = request_handler(event, context)
        result, result_content_type = marshal_response(response)
    except FaultException as e:
        xray_fault = make_xray_fault("LambdaValidationError", e.msg, os.getcwd(), [])
        error_result = make_error(e.msg, e.exception_type, e.trace, request.invoke_id)
    except Exception:
        etype, value, tb = sys.exc_info()
        tb_tuples = _user_frames(tb)
        xray_fault = make_xray_fault(etype.__name__, str(value), os.getcwd(), tb_tuples)
        error_result = make_error(str(value), etype.__name__, traceback.format_list(tb_tuples), request.invoke_id)

    if error_result is not None:
        log_error(error_result, log_sink)
        client.post_invocation_error(request.invoke_id, to_json(error_result), to_json(xray_fault),
                                     error_result["errorType"], request.invocation_id)
    else:
        client.post_invocation_result(request.invoke_id, result, result_content_type, request.invocation_id)


def run(handler: str, client: LambdaRuntimeClient) -> None:
    """Load the handler (reporting an init error and exiting 1 on failure), then serve forever."""
    sys.stdout = Unbuffered(sys.stdout)
    sys.stderr = Unbuffered(sys.stderr)

    with create_log_sink() as log_sink:
        error_result = None
        try:
            setup_logging(log_sink)
            _log_preview_runtime_warning()
            request_handler = _get_handler(handler)
        except FaultException as e:
            error_result = make_error(e.msg, e.exception_type, e.trace)
        except Exception:
            error_result = build_fault_result(sys.exc_info(), None)

        if error_result is not None:
            logging.warning(UNHANDLED_EXCEPTION_WARNING)
            log_error(error_result, log_sink)
            client.post_init_error(error_result)
            sys.exit(1)

        while True:
            request = client.wait_next_invocation()
            set_request(request.invoke_id, request.tenant_id)
            update_xray_env_variable(request.x_amzn_trace_id)
            handle_event_request(client, request_handler, request, log_sink)
