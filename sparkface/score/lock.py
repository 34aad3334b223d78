"""The campaign lock: one run of a campaign at a time."""

from __future__ import annotations

import json
import logging
import os
import socket
import time
from pathlib import Path
from typing import Any

from sparkface.core.errors import EXIT_TRY_LATER, UserError

log = logging.getLogger("sparkface")


class CampaignLocked(UserError):
    """Another run of the same campaign holds the lock: try again later."""

    exit_code = EXIT_TRY_LATER


class CampaignLock:
    """An exclusive lock file per campaign, OUT/_locks/campaign=NAME.lock, holding its run's
    record (run id, pid, host, start time).

    The record is complete the moment the lock exists: it is written to a file of the run's own
    and hard-linked into place, which fails if a lock is there. A lock whose process is gone (same
    host) or that is older than `stale_after_hours` is taken over, so a crashed run never blocks
    for ever; a lock whose record cannot be read is held until it is that old (by its file's
    time). Taking over happens under a second, short-lived lock, so that of several runs that
    find the same stale lock, one removes it and the others find the new one."""

    TAKEOVER_STALE_SECONDS = 60.0

    def __init__(self, root: Path, campaign: str, run_id: str, stale_after_hours: float) -> None:
        self.path = root / "_locks" / f"campaign={campaign}.lock"
        self.takeover = self.path.with_name(self.path.name + ".takeover")
        self.run_id = run_id
        self.stale_after = stale_after_hours * 3600

    def _read(self) -> tuple[dict[str, Any] | None, float]:
        """The holder's record (None when unreadable) and the lock's age in seconds."""
        try:
            text = self.path.read_text()
            age = time.time() - self.path.stat().st_mtime
        except FileNotFoundError:
            return {}, 0.0
        try:
            holder = json.loads(text)
        except json.JSONDecodeError:
            return None, age
        if not isinstance(holder, dict):
            return None, age
        return holder, time.time() - float(holder.get("started", time.time() - age))

    def _stale(self, holder: dict[str, Any] | None, age: float) -> str | None:
        if age > self.stale_after:
            return f"it is {age / 3600:.1f} h old"
        if holder and holder.get("host") == socket.gethostname():
            try:
                os.kill(int(holder.get("pid", -1)), 0)
            except ProcessLookupError:
                return f"its process {holder.get('pid')} is gone"
            except PermissionError:
                return None
        return None

    def _refuse(self, holder: dict[str, Any] | None) -> CampaignLocked:
        if holder is None:
            return CampaignLocked(
                f"another run of this campaign holds the lock (its record cannot be read); "
                f"lock: {self.path}"
            )
        return CampaignLocked(
            f"another run of this campaign is in progress (run {holder.get('run_id')},"
            f" pid {holder.get('pid')} on {holder.get('host')}); lock: {self.path}"
        )

    def acquire(self) -> None:
        """Take the lock, or raise CampaignLocked."""
        self.path.parent.mkdir(parents=True, exist_ok=True)
        record = {
            "run_id": self.run_id,
            "pid": os.getpid(),
            "host": socket.gethostname(),
            "started": time.time(),
        }
        mine = self.path.with_name(f".{self.path.name}.{self.run_id}")
        mine.write_text(json.dumps(record))
        try:
            for _ in range(3):
                try:
                    os.link(mine, self.path)
                    return
                except FileExistsError:
                    pass
                holder, age = self._read()
                if holder == {}:
                    continue  # released between the two calls: try again
                reason = self._stale(holder, age)
                if reason is None:
                    raise self._refuse(holder)
                self._take_over(holder, reason)
            raise CampaignLocked(f"could not take the lock {self.path}")
        finally:
            mine.unlink(missing_ok=True)

    def _take_over(self, holder: dict[str, Any] | None, reason: str) -> None:
        """Remove the stale lock whose record is `holder`, if it is still the one there."""
        try:
            self.takeover.mkdir()
        except FileExistsError:
            age = time.time() - self.takeover.stat().st_mtime
            if age < self.TAKEOVER_STALE_SECONDS:
                raise self._refuse(holder) from None
            # A run died while taking over: the next attempt may.
            self.takeover.rmdir()
            return
        try:
            if self._read()[0] == holder:
                log.warning("taking over a stale lock (%s): %s", reason, self.path)
                self.path.unlink(missing_ok=True)
        finally:
            self.takeover.rmdir()

    def release(self) -> None:
        holder, _ = self._read()
        if holder and holder.get("run_id") == self.run_id:
            self.path.unlink(missing_ok=True)
