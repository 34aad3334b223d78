"""The campaign lock (sparkface.score.lock): one run at a time, whatever the timing."""

from __future__ import annotations

import json
import multiprocessing
import os
import time

import pytest

from sparkface.score.lock import CampaignLock, CampaignLocked

CONTENDERS = 8


def contend(root, barrier, done, results, index) -> None:
    lock = CampaignLock(root, "lobby", f"run-{index}", 12)
    barrier.wait()
    try:
        lock.acquire()
    except CampaignLocked:
        results.put("refused")
        return
    results.put("won")
    done.wait(20)  # hold the lock until every contender has tried
    lock.release()


# Contenders forked from a fresh, single-threaded server process, not from this one: by the time
# these tests run, the test process has loaded TensorFlow and LiteRT, whose threads a forked child
# inherits only as the locks they held, and one child stuck before the barrier holds back every
# other (a clean-clone CI run once timed out so).
CONTEXT = multiprocessing.get_context("forkserver")


def race(root) -> list[str]:
    context = CONTEXT
    barrier, done, results = context.Barrier(CONTENDERS), context.Event(), context.Queue()
    processes = [
        context.Process(target=contend, args=(root, barrier, done, results, index))
        for index in range(CONTENDERS)
    ]
    for process in processes:
        process.start()
    outcomes = [results.get(timeout=30) for _ in processes]
    done.set()
    for process in processes:
        process.join(30)
    return outcomes


@pytest.mark.parametrize("round_", range(5))
def test_of_runs_started_at_once_exactly_one_takes_the_lock(tmp_path, round_):
    outcomes = race(tmp_path)
    assert outcomes.count("won") == 1, outcomes
    assert not (tmp_path / "_locks" / "campaign=lobby.lock").exists()  # released


def dead_pid() -> int:
    process = CONTEXT.Process(target=os._exit, args=(0,))
    process.start()
    process.join()
    return process.pid


@pytest.mark.parametrize("round_", range(3))
def test_of_runs_that_find_a_dead_runs_lock_exactly_one_takes_it_over(tmp_path, round_):
    lock = tmp_path / "_locks" / "campaign=lobby.lock"
    lock.parent.mkdir()
    record = {"run_id": "crashed", "pid": dead_pid(), "host": os.uname().nodename}
    lock.write_text(json.dumps({**record, "started": time.time()}))
    outcomes = race(tmp_path)
    assert outcomes.count("won") == 1, outcomes


def test_a_lock_whose_record_cannot_be_read_is_held_until_it_is_stale(tmp_path):
    lock = tmp_path / "_locks" / "campaign=lobby.lock"
    lock.parent.mkdir()
    for unreadable in ("", '{"run_id": "half'):
        lock.write_text(unreadable)
        with pytest.raises(CampaignLocked, match="cannot be read"):
            CampaignLock(tmp_path, "lobby", "second", 12).acquire()
        assert lock.read_text() == unreadable
    old = time.time() - 13 * 3600
    os.utime(lock, (old, old))
    taker = CampaignLock(tmp_path, "lobby", "second", 12)
    taker.acquire()
    assert json.loads(lock.read_text())["run_id"] == "second"
    taker.release()
    assert not lock.exists()


def test_a_live_lock_is_refused_and_only_its_holder_releases_it(tmp_path):
    holder = CampaignLock(tmp_path, "lobby", "first", 12)
    holder.acquire()
    other = CampaignLock(tmp_path, "lobby", "second", 12)
    with pytest.raises(CampaignLocked, match="run first"):
        other.acquire()
    other.release()
    assert (tmp_path / "_locks" / "campaign=lobby.lock").exists()
    holder.release()
    other.acquire()
    other.release()
    assert not list((tmp_path / "_locks").iterdir())  # no leftover record or takeover folder
