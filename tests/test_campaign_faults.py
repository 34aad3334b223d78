"""Nightly runs under faults, with real spark-submit runs: killed at random moments, and started
five at once."""

from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import time
from pathlib import Path

import pandas as pd
import pyarrow.parquet as pq
import pytest

from tests.conftest import (
    ROOT,
    job_environment,
    spark_submit,
    tiny_model_package,
    utk_names,
    write_faces,
)

pytestmark = pytest.mark.slow

NIGHT = "2026-11-28"
FACES = 40


def start(campaigns: Path, *extra: str, pause: float = 0.0) -> subprocess.Popen:
    """`spark-submit jobs/score.py --campaign lobby` in a process group of its own; `pause`
    seconds after each publishing step."""
    command = spark_submit(
        "score.py",
        "--campaign",
        "lobby",
        "--campaigns-dir",
        str(campaigns),
        "--run-date",
        NIGHT,
        *extra,
    )
    return subprocess.Popen(
        command,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        env=job_environment(SPARKFACE_PUBLISH_STEP_SECONDS=str(pause)),
        cwd=ROOT,
        start_new_session=True,
    )


@pytest.fixture(scope="module")
def campaign(tmp_path_factory):
    root = tmp_path_factory.mktemp("campaign")
    write_faces(root / "inbox", utk_names(FACES, seed=4))
    model = tiny_model_package(root / "model")
    (root / "campaigns").mkdir()
    (root / "campaigns" / "lobby.yaml").write_text(
        json.dumps(
            {
                "inputs": [str(root / "inbox")],
                "output": str(root / "out"),
                "model": str(model),
                "faces": "aligned",
            }
        )
    )
    return root


def night_rows(out: Path) -> dict[str, pd.DataFrame]:
    """The published night's rows, Parquet and JSON, read as an analyst would."""
    rows = {}
    parquet = out / "predictions" / "campaign=lobby" / f"run_date={NIGHT}"
    rows["parquet"] = pq.read_table(parquet).to_pandas() if parquet.exists() else None
    folder = out / "predictions_json" / "campaign=lobby" / f"run_date={NIGHT}"
    parts = sorted(folder.glob("part-*.json")) if folder.exists() else []
    rows["json"] = pd.concat(pd.read_json(p, lines=True) for p in parts) if parts else None
    return rows


def whole_run(rows: pd.DataFrame | None) -> str:
    """The one run whose complete rows a tree holds; fails on a missing or mixed tree."""
    assert rows is not None, "the night is not published"
    assert len(rows) == FACES and rows["path"].is_unique, f"{len(rows)} rows"
    assert rows["run_id"].nunique() == 1, "rows of several runs"
    return rows["run_id"].iloc[0]


def test_runs_killed_at_random_moments_never_lose_or_mix_the_night(campaign):
    out = campaign / "out"
    # Each publishing step pauses 2 s: the publish is a window of some 8 s in a run, not a few
    # milliseconds, so that random kills land inside it too.
    started = time.perf_counter()
    first = start(campaign / "campaigns", pause=2.0)
    log, _ = first.communicate(timeout=600)
    assert first.returncode == 0, log[-3000:]
    seconds = time.perf_counter() - started
    published = {whole_run(r) for r in night_rows(out).values()}
    rng = random.Random(20261129)
    moments = []
    # Runs until ten have been killed: a run that finishes before its moment is not a kill, so the
    # count of runs depends on the load. A run that finishes sets the length that later moments
    # are drawn over, so that they stay spread over a run when the machine is less loaded than
    # during the first one.
    while sum(code == -signal.SIGKILL for _, code in moments) < 10 and len(moments) < 24:
        begun = time.perf_counter()
        run = start(campaign / "campaigns", "--full", pause=2.0)
        moment = rng.uniform(0.3, 1.1) * seconds
        try:
            run.wait(timeout=moment)
            seconds = min(seconds, time.perf_counter() - begun)
        except subprocess.TimeoutExpired:
            os.killpg(run.pid, signal.SIGKILL)
            run.wait()
        moments.append((round(moment, 1), run.returncode))
        rows = night_rows(out)
        # Each tree whole, of a run that published; they may differ until the next run recovers.
        for tree in ("parquet", "json"):
            run_id = whole_run(rows[tree])
            published.add(run_id)
    # One more run killed a second after its publish journal appears, so that at least one kill
    # lands inside a publish whatever the machine's load does to the random moments.
    run = start(campaign / "campaigns", "--full", pause=2.0)
    deadline, recovered = time.time() + 600, False
    while run.poll() is None and time.time() < deadline:
        journal = any((out / "_publish").rglob("*.json"))
        recovered = recovered or not journal  # a journal left by a killed run goes first
        if recovered and journal:
            time.sleep(1.0)
            os.killpg(run.pid, signal.SIGKILL)
            break
        time.sleep(0.05)
    run.wait()
    moments.append(("in publish", run.returncode))
    last = start(campaign / "campaigns", "--full")
    log, _ = last.communicate(timeout=600)
    assert last.returncode == 0, log[-3000:]
    rows = night_rows(out)
    assert whole_run(rows["parquet"]) == whole_run(rows["json"])
    runs = pq.read_table(out / "runs").to_pandas()
    assert (runs["status"] == "succeeded").sum() >= 2
    killed = sum(code == -signal.SIGKILL for _, code in moments)
    assert killed >= 10, moments  # at least ten runs were killed, at moments spread over a run
    # Some of them inside a publish, which a later run completed.
    assert (runs["status"] == "recovered").sum() >= 1, moments
    print(f"kills at (seconds, exit): {moments}; runs: {runs['status'].value_counts().to_dict()}")


def test_five_runs_started_at_once_score_the_night_once(campaign, tmp_path):
    out = tmp_path / "out"
    config = json.loads((campaign / "campaigns" / "lobby.yaml").read_text())
    (tmp_path / "campaigns").mkdir()
    (tmp_path / "campaigns" / "lobby.yaml").write_text(json.dumps({**config, "output": str(out)}))
    runs = [start(tmp_path / "campaigns") for _ in range(5)]
    logs = [run.communicate(timeout=600)[0] for run in runs]
    codes = sorted(run.returncode for run in runs)
    assert codes == [0, 75, 75, 75, 75], [log[-2000:] for log in logs]
    rows = night_rows(out)
    assert whole_run(rows["parquet"]) == whole_run(rows["json"])
    assert len(pq.read_table(out / "runs").to_pandas()) == 1
