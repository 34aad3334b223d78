"""The jobs' own logger: INFO on stderr, while Spark's log stays at WARN."""

from __future__ import annotations

import contextlib
import logging
import time
from collections.abc import Iterator

log = logging.getLogger("sparkface")


def configure_logging(level: str = "INFO") -> None:
    """Send the `sparkface` logger to stderr with timestamps."""
    handler = logging.StreamHandler()
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    log.handlers[:] = [handler]
    log.setLevel(level.upper())
    log.propagate = False


@contextlib.contextmanager
def timed(step: str, timings: dict[str, float]) -> Iterator[None]:
    """Log how long `step` took and record it in `timings` (seconds)."""
    start = time.perf_counter()
    yield
    timings[step] = round(time.perf_counter() - start, 3)
    log.info("%s took %.1f s", step, timings[step])
