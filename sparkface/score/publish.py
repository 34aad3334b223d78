"""Publishing a campaign night crash-safely: the staged trees replace the published ones so that,
at every instant, each published tree holds the complete old rows or the complete new rows.

Each tree (Parquet, and JSON when asked for) is swapped with one atomic `renameat2` call
(RENAME_EXCHANGE: the staged folder and the published one trade places). Several trees cannot
be swapped in one call, so a journal, OUT/_publish/campaign=NAME/run_date=DATE.json, is written
before the first swap and removed after the last: a run that finds a journal (its writer was
killed mid-publish) completes that publish before anything else, and says so in the run log. A
publish that fails with an exception rolls its swaps back before it re-raises: a failed run
leaves the published night as it was.

On a file system without RENAME_EXCHANGE the swap falls back to two renames (the old tree aside,
the new one in), between which the night is briefly absent; the journal still lets the next run
finish the job.
"""

from __future__ import annotations

import ctypes
import dataclasses
import errno
import json
import logging
import os
import shutil
import time
from collections.abc import Callable
from pathlib import Path

log = logging.getLogger("sparkface")

RUN_MARKER = "_run_id"  # in each staged tree: which run's rows it holds (readers skip "_" files)
TREES = (("parquet", "predictions"), ("json", "predictions_json"))
# The night's audience (sparkface.audience), published with its predictions when staged.
AUDIENCE_TREES = (
    ("audience", "audience"),
    ("audience_shares", "audience_shares"),
    ("report", "reports"),
)

# Fault injection for tests: called with the name of each step once it is done.
Fault = Callable[[str], None]


def partition_dir(root: Path, tree: str, campaign: str, run_date: str) -> Path:
    return root / tree / f"campaign={campaign}" / f"run_date={run_date}"


def journal_path(root: Path, campaign: str, run_date: str) -> Path:
    return root / "_publish" / f"campaign={campaign}" / f"run_date={run_date}.json"


@dataclasses.dataclass(frozen=True)
class Swap:
    """One tree's move: the staged `source` takes the published `target`'s place; the old tree,
    if any, ends where `source` was."""

    tree: str
    source: Path
    target: Path

    @property
    def aside(self) -> Path:
        """Where the fallback puts the old tree between its two renames."""
        return self.source.with_name(self.source.name + ".replaced")


def _holds(folder: Path, run_id: str) -> bool:
    try:
        return (folder / RUN_MARKER).read_text() == run_id
    except OSError:
        return False


_libc = ctypes.CDLL(None, use_errno=True)
_AT_FDCWD = -100
_RENAME_EXCHANGE = 2


def exchange(first: Path, second: Path) -> None:
    """Atomically trade the places of two existing paths (Linux renameat2 RENAME_EXCHANGE)."""
    renameat2 = getattr(_libc, "renameat2", None)
    if renameat2 is None:
        raise OSError(errno.ENOSYS, "renameat2 is not available")
    if renameat2(_AT_FDCWD, os.fsencode(first), _AT_FDCWD, os.fsencode(second), _RENAME_EXCHANGE):
        code = ctypes.get_errno()
        raise OSError(code, f"{os.strerror(code)}: exchanging {first} and {second}")


def _trade(swap: Swap, fault: Fault = lambda step: None) -> None:
    """Trade the places of `swap.source` and `swap.target`: one atomic exchange, or, where the
    file system has none, three renames through `swap.aside`."""
    try:
        exchange(swap.source, swap.target)
    except OSError as error:
        if error.errno not in (errno.EINVAL, errno.ENOSYS, errno.ENOTSUP, errno.EXDEV):
            raise
        log.warning("no atomic exchange here (%s): the night is absent between two renames", error)
        os.rename(swap.target, swap.aside)
        fault(f"{swap.tree} set aside")
        os.rename(swap.source, swap.target)
        fault(f"{swap.tree} renamed in")
        os.rename(swap.aside, swap.source)


def _swap_in(swap: Swap, fault: Fault = lambda step: None) -> None:
    """Put the staged tree in the target's place; the old one (if any) ends at `source`."""
    swap.target.parent.mkdir(parents=True, exist_ok=True)
    if swap.target.exists():
        _trade(swap, fault)
    else:
        os.rename(swap.source, swap.target)


def _swap_back(swap: Swap, run_id: str) -> None:
    """Undo `_swap_in`, from any point of it: the old tree back in place (or none, as before)."""
    if swap.aside.exists():  # the fallback stopped between its renames
        if _holds(swap.target, run_id):
            os.rename(swap.target, swap.source)
        os.rename(swap.aside, swap.target)
        return
    if not _holds(swap.target, run_id):
        return  # never swapped
    if swap.source.exists():
        _trade(swap)
    else:
        os.rename(swap.target, swap.source)  # there was no old tree: unpublish


def _finish_swap(swap: Swap, run_id: str) -> None:
    """Complete `_swap_in` from any point of it."""
    if swap.aside.exists():  # the fallback stopped between its renames
        if not _holds(swap.target, run_id):
            os.rename(swap.source, swap.target)
        os.rename(swap.aside, swap.source)
        return
    if not _holds(swap.target, run_id):
        _swap_in(swap)


def _pause_from_environment() -> Fault:
    """For tests of whole runs: SPARKFACE_PUBLISH_STEP_SECONDS=S pauses S seconds after each
    publishing step, so that a kill at a random moment can land inside a publish."""
    seconds = float(os.environ.get("SPARKFACE_PUBLISH_STEP_SECONDS", "0") or 0)
    return (lambda step: time.sleep(seconds)) if seconds > 0 else (lambda step: None)


def plan(
    staging: Path, root: Path, campaign: str, run_date: str, formats: tuple[str, ...]
) -> list[Swap]:
    """The swaps that publish a run's staged trees (Parquet always, JSON when asked for, the
    audience's when staged)."""
    return [
        Swap(fmt, staging / fmt, partition_dir(root, tree, campaign, run_date))
        for fmt, tree in TREES
        if fmt == "parquet" or fmt in formats
    ] + [
        Swap(name, staging / name, partition_dir(root, tree, campaign, run_date))
        for name, tree in AUDIENCE_TREES
        if (staging / name).is_dir()
    ]


def _write_journal(path: Path, run_id: str, staging: Path, swaps: list[Swap]) -> None:
    record = {
        "run_id": run_id,
        "staging": str(staging),
        "swaps": [
            {"tree": s.tree, "source": str(s.source), "target": str(s.target)} for s in swaps
        ],
    }
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_name(f".{path.name}.tmp")
    temporary.write_text(json.dumps(record, indent=2))
    os.fsync(os.open(temporary, os.O_RDONLY))
    os.rename(temporary, path)


def publish(
    staging: Path,
    root: Path,
    campaign: str,
    run_date: str,
    formats: tuple[str, ...],
    run_id: str,
    fault: Fault | None = None,
) -> None:
    """Swap the run's staged trees into place (see the module's docstring). On an exception the
    swaps done so far are undone before it is re-raised."""
    fault = fault or _pause_from_environment()
    swaps = plan(staging, root, campaign, run_date, formats)
    for swap in swaps:
        (swap.source / RUN_MARKER).write_text(run_id)
    fault("marked")
    journal = journal_path(root, campaign, run_date)
    _write_journal(journal, run_id, staging, swaps)
    try:
        fault("journal written")
        for swap in swaps:
            _swap_in(swap, fault)
            fault(f"{swap.tree} swapped")
    except BaseException:
        for swap in reversed(swaps):
            _swap_back(swap, run_id)
        journal.unlink()
        raise
    journal.unlink()


def recover(root: Path, campaign: str) -> list[dict[str, str]]:
    """Complete every publish of `campaign` that a killed run left half done (its journal is
    still there), then remove what crashed runs left in staging. Returns the run id and night of
    each publish completed."""
    completed = []
    folder = root / "_publish" / f"campaign={campaign}"
    for journal in sorted(folder.glob("run_date=*.json")) if folder.is_dir() else []:
        record = json.loads(journal.read_text())
        for entry in record["swaps"]:
            _finish_swap(
                Swap(entry["tree"], Path(entry["source"]), Path(entry["target"])), record["run_id"]
            )
        journal.unlink()
        run_date = journal.name.removeprefix("run_date=").removesuffix(".json")
        completed.append({"run_id": record["run_id"], "run_date": run_date})
        log.warning(
            "campaign %s: completed the publish of %s by run %s, which was interrupted",
            campaign,
            run_date,
            record["run_id"],
        )
    shutil.rmtree(root / "_staging" / f"campaign={campaign}", ignore_errors=True)
    return completed
