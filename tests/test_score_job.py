"""The score job's command line: options that do not apply to the chosen mode stop it (exit 2)."""

from __future__ import annotations

import pytest

from tests.conftest import load_job

score_job = load_job("score")

CAMPAIGN = ["--campaign", "lobby", "--run-date", "2026-11-28"]
FOLDER = ["--input", "in", "--output", "out"]


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        ([*CAMPAIGN, "--input", "in"], "--input: not with --campaign"),
        ([*CAMPAIGN, "--output", "o", "--format", "json"], "--output, --format: not with"),
        ([*CAMPAIGN, "--batch-size", "64"], "--batch-size: not with --campaign"),
        ([*FOLDER, "--run-date", "2026-11-28"], "--run-date: only with --campaign"),
        ([*FOLDER, "--full"], "--full: only with --campaign"),
        ([*FOLDER, "--campaigns-dir", "c"], "--campaigns-dir: only with --campaign"),
        ([*FOLDER, "--batch-size", "0"], "--batch-size: must be a positive number"),
        (["--campaign", "lobby"], "--campaign needs --run-date"),
        (["--campaign", "lobby", "--run-date", "2026-13-01"], "is not a date YYYY-MM-DD"),
        (["--input", "in"], "give --input and --output"),
    ],
)
def test_options_of_the_other_mode_stop_the_job(argv, message, capsys):
    with pytest.raises(SystemExit) as stopped:
        score_job.parse_args(argv)
    assert stopped.value.code == 2
    assert message in capsys.readouterr().err


def test_each_mode_takes_its_own_options_and_defaults():
    folder = score_job.parse_args([*FOLDER, "--batch-size", "32"])
    assert (folder.format, folder.batch_size) == ("parquet,json", 32)
    campaign = score_job.parse_args([*CAMPAIGN, "--full", "--model", "m"])
    assert (campaign.full, campaign.model, campaign.batch_size) == (True, "m", 128)
