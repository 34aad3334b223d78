"""Crash-safe publishing of a campaign night (sparkface.score.publish): a fault raised or a
SIGKILL after every step leaves each published tree whole, old or new, and the next run's
recovery brings both trees to the new rows."""

from __future__ import annotations

import errno
import multiprocessing
import os
import signal
from pathlib import Path

import pytest

import sparkface.score.publish as publishing
from sparkface.score.publish import journal_path, partition_dir, publish, recover

CAMPAIGN, NIGHT = "lobby", "2026-11-28"
STEPS = ["marked", "journal written", "parquet swapped", "json swapped"]
FALLBACK_STEPS = [
    "parquet set aside",
    "parquet renamed in",
    "json set aside",
    "json renamed in",
    *STEPS,
]

# Over a published night and for a first one; with RENAME_EXCHANGE and with the fallback, whose
# set-aside steps exist only over a published night.
CASES = [
    (published, step, fallback)
    for published in (True, False)
    for fallback in (False, True)
    for step in (FALLBACK_STEPS if fallback else STEPS)
    if published or "set aside" not in step and "renamed in" not in step
]
CASE_NAMES = [
    f"{'over a night' if p else 'first night'}, {'renames' if f else 'exchange'}, {s}"
    for p, s, f in CASES
]


def write_tree(folder: Path, tag: str, parts: int) -> None:
    folder.mkdir(parents=True)
    for index in range(parts):
        (folder / f"part-{index}-{tag}").write_text(f"{tag} rows {index}")
    (folder / "_SUCCESS").write_text("")


def setup(root: Path, published: bool) -> Path:
    if published:
        for tree in ("predictions", "predictions_json"):
            write_tree(partition_dir(root, tree, CAMPAIGN, NIGHT), "old", 3)
    staging = root / "_staging" / f"campaign={CAMPAIGN}" / f"run_date={NIGHT}" / "new-run"
    write_tree(staging / "parquet", "new", 2)
    write_tree(staging / "json", "new", 2)
    return staging


def state(folder: Path) -> str:
    """'old', 'new' or 'absent': anything else (a mix, a part missing) fails the test."""
    if not folder.exists():
        return "absent"
    names = {p.name for p in folder.iterdir()} - {"_SUCCESS", publishing.RUN_MARKER}
    for tag, parts in (("old", 3), ("new", 2)):
        if names == {f"part-{index}-{tag}" for index in range(parts)}:
            return tag
    raise AssertionError(f"{folder} holds a mix: {sorted(names)}")


def states(root: Path) -> tuple[str, str]:
    return tuple(
        state(partition_dir(root, tree, CAMPAIGN, NIGHT))
        for tree in ("predictions", "predictions_json")
    )


def no_exchange(first, second) -> None:
    raise OSError(errno.ENOSYS, "no renameat2 on this file system")


def publish_then_die(root: Path, staging: Path, step: str, fallback: bool) -> None:
    if fallback:
        publishing.exchange = no_exchange

    def kill(done: str) -> None:
        if done == step:
            os.kill(os.getpid(), signal.SIGKILL)

    publish(staging, root, CAMPAIGN, NIGHT, ("parquet", "json"), "new-run", kill)
    os._exit(0)


def killed_at(root: Path, staging: Path, step: str, fallback: bool = False) -> None:
    # Forked from a fresh, single-threaded server process, not from the test process, which has
    # loaded TensorFlow and LiteRT by now (their threads' locks would be held in a forked child).
    child = multiprocessing.get_context("forkserver").Process(
        target=publish_then_die, args=(root, staging, step, fallback)
    )
    child.start()
    child.join(30)
    assert child.exitcode == -signal.SIGKILL


@pytest.mark.parametrize(("published", "step", "fallback"), CASES, ids=CASE_NAMES)
def test_a_kill_after_any_step_leaves_whole_trees_and_recovery_completes(
    tmp_path, step, fallback, published
):
    staging = setup(tmp_path, published)
    before = "old" if published else "absent"
    killed_at(tmp_path, staging, step, fallback)
    for tree_state in states(tmp_path):
        # Each tree whole; "absent" over a night only between the fallback's two renames.
        allowed = {before, "new"} | ({"absent"} if fallback and "set aside" in step else set())
        assert tree_state in allowed, (step, states(tmp_path))
    completed = recover(tmp_path, CAMPAIGN)
    journaled = step != "marked"
    assert states(tmp_path) == (("new", "new") if journaled else (before, before))
    assert completed == ([{"run_id": "new-run", "run_date": NIGHT}] if journaled else [])
    assert not journal_path(tmp_path, CAMPAIGN, NIGHT).exists()
    assert not (tmp_path / "_staging" / f"campaign={CAMPAIGN}").exists()


@pytest.mark.parametrize(("published", "step", "fallback"), CASES, ids=CASE_NAMES)
def test_a_fault_raised_after_any_step_leaves_the_night_as_it_was(
    tmp_path, monkeypatch, step, fallback, published
):
    staging = setup(tmp_path, published)
    before = "old" if published else "absent"
    if fallback:
        monkeypatch.setattr(publishing, "exchange", no_exchange)

    def fail(done: str) -> None:
        if done == step:
            raise OSError(f"disk full (injected after: {done})")

    with pytest.raises(OSError, match="injected"):
        publish(staging, tmp_path, CAMPAIGN, NIGHT, ("parquet", "json"), "new-run", fail)
    assert states(tmp_path) == (before, before)
    assert not journal_path(tmp_path, CAMPAIGN, NIGHT).exists()
    assert state(staging / "parquet") == "new" and state(staging / "json") == "new"


def test_a_publish_without_faults_swaps_both_trees_in(tmp_path):
    staging = setup(tmp_path, published=True)
    publish(staging, tmp_path, CAMPAIGN, NIGHT, ("parquet", "json"), "new-run")
    assert states(tmp_path) == ("new", "new")
    assert state(staging / "parquet") == "old"  # the old rows wait in staging to be deleted
