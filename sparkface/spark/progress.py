"""Progress of long Spark jobs in the jobs' log: stage by stage, tasks done of total."""

from __future__ import annotations

import contextlib
import logging
import threading
from collections.abc import Iterator

from pyspark import SparkContext

log = logging.getLogger("sparkface")


@contextlib.contextmanager
def log_progress(context: SparkContext, every_seconds: float = 10.0) -> Iterator[None]:
    """Log each active stage's finished/total tasks every `every_seconds` while the block runs."""
    stop = threading.Event()
    tracker = context.statusTracker()

    def watch() -> None:
        last: dict[int, tuple[int, int]] = {}
        while not stop.wait(every_seconds):
            for stage_id in tracker.getActiveStageIds():
                info = tracker.getStageInfo(stage_id)
                if info is None:
                    continue
                state = (info.numCompletedTasks, info.numTasks)
                if last.get(stage_id) != state:
                    log.info(
                        "stage %d (%s): %d/%d tasks done, %d running",
                        stage_id,
                        info.name.split(" at ")[0],
                        info.numCompletedTasks,
                        info.numTasks,
                        info.numActiveTasks,
                    )
                    last[stage_id] = state

    thread = threading.Thread(target=watch, name="sparkface-progress", daemon=True)
    thread.start()
    try:
        yield
    finally:
        stop.set()
        thread.join(timeout=every_seconds)
