"""Lesson 12 on the `aws` target: the notebook runs to the end against the `lambdalab cloud --iam`
stand-in (IAM enforced, as AWS always does), and afterwards the stand-in holds nothing of the run:
no secret, no parameter, no function, role or log group (`target.close()` deleted them). The
local target runs the same notebook under `make test` (nbval over notebooks/).

AWS behaviour followed: a secret deleted with `ForceDeleteWithoutRecovery` is gone at once, one
deleted without it stays for a 7 to 30 day recovery window
(https://docs.aws.amazon.com/secretsmanager/latest/apireference/API_DeleteSecret.html).
"""

from __future__ import annotations

from pathlib import Path

import nbformat
from nbclient import NotebookClient

from lambdalab.course.target import teardown
from lambdalab.course.target.aws import aws_session, clients_of

NOTEBOOK = Path(__file__).resolve().parents[3] / "notebooks" / "12_secrets.ipynb"


def test_lesson_12_runs_on_aws_and_leaves_nothing(sandbox) -> None:
    book = nbformat.read(NOTEBOOK, as_version=4)
    NotebookClient(book, timeout=300, kernel_name="python3",
                   resources={"metadata": {"path": str(NOTEBOOK.parent)}}).execute()
    shown = "\n".join("".join(o.get("text", "")) for cell in book.cells if cell.cell_type == "code"
                      for o in cell.outputs)
    assert f"AWS account {sandbox['LAMBDALAB_AWS_ACCOUNT']}" in shown  # the plan, before anything was created
    assert "expected cost of a full run on aws" in shown
    assert "AccessDeniedException" in str([o for c in book.cells for o in c.get("outputs", [])])
    clients = clients_of(aws_session(sandbox))
    assert teardown.inventory(clients) == []
    assert clients("secretsmanager").list_secrets(IncludePlannedDeletion=True)["SecretList"] == []
