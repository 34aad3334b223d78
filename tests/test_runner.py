"""The one place where exceptions become exit codes (sparkface.spark.runner)."""

from __future__ import annotations

import pytest

from sparkface.core.config import ConfigError
from sparkface.core.errors import InputError, OutputError
from sparkface.score.campaigns import CampaignError
from sparkface.score.lock import CampaignLocked
from sparkface.spark.runner import run_main


def fail_with(error: Exception):
    def body() -> None:
        raise error

    return body


@pytest.mark.parametrize(
    ("error", "code"),
    [
        (ConfigError("training.epochs: must be a positive integer"), 2),
        (InputError("input folder does not exist: /nowhere"), 2),
        (OutputError("cannot write the output to /read-only"), 3),
        (CampaignError("campaign lobby: input folder(s) missing"), 2),
        (CampaignLocked("another run of this campaign is in progress"), 75),
    ],
)
def test_a_users_error_gives_its_exit_code_and_one_line(error, code, capsys):
    assert run_main("job", fail_with(error)) == code
    logged = capsys.readouterr().err
    assert str(error) in logged
    assert "Traceback" not in logged


def test_a_bug_is_logged_with_its_traceback_and_exits_1(capsys):
    def body() -> None:
        {}["missing"]

    assert run_main("score", body) == 1
    logged = capsys.readouterr().err
    assert "score failed with an unexpected error" in logged
    assert "Traceback" in logged and "KeyError: 'missing'" in logged


def test_a_body_that_returns_exits_0(capsys):
    assert run_main("job", lambda: None) == 0


JAVA_TRACE = """py4j.protocol.Py4JJavaError: An error occurred while calling o123.json.
: org.apache.spark.SparkException: [TASK_WRITE_FAILED] Task failed while writing rows to \
file:/data/out/json/_temporary/0/_temporary/attempt_1/part-00000.json. SQLSTATE: 58030
Caused by: org.apache.hadoop.fs.FSError: java.io.IOException: No space left on device
"""


@pytest.mark.parametrize(
    ("error", "said"),
    [
        (OSError(28, "No space left on device"), "full (No space left on device);"),
        (OSError(122, "Disk quota exceeded"), "full (Disk quota exceeded);"),
        (
            RuntimeError(JAVA_TRACE),
            "full (No space left on device while writing file:/data/out/json);",
        ),
    ],
)
def test_a_full_disk_is_the_output_s_fault_exit_3(error, said, capsys):
    assert run_main("score", fail_with(error)) == 3
    logged = capsys.readouterr().err
    assert f"the output's storage is {said} free space there" in logged
    assert "Traceback" not in logged
