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
    """An exclusive lock file per campaign. A lock whose process is gone (same host) or that is
    older than `stale_after_hours` is taken over, so a crashed run never blocks for ever."""

    def __init__(self, root: Path, campaign: str, run_id: str, stale_after_hours: float) -> None:
        self.path = root / "_locks" / f"campaign={campaign}.lock"
        self.run_id = run_id
        self.stale_after = stale_after_hours * 3600

    def _stale(self, holder: dict[str, Any]) -> str | None:
        age = time.time() - float(holder.get("started", 0))
        if age > self.stale_after:
            return f"it is {age / 3600:.1f} h old"
        if holder.get("host") == socket.gethostname():
            try:
                os.kill(int(holder.get("pid", -1)), 0)
            except ProcessLookupError:
                return f"its process {holder.get('pid')} is gone"
            except PermissionError:
                return None
        return None

    def acquire(self) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        record = json.dumps(
            {
                "run_id": self.run_id,
                "pid": os.getpid(),
                "host": socket.gethostname(),
                "started": time.time(),
            }
        )
        for _ in range(2):
            try:
                descriptor = os.open(self.path, os.O_CREAT | os.O_EXCL | os.O_WRONLY)
            except FileExistsError:
                try:
                    holder = json.loads(self.path.read_text() or "{}")
                except (OSError, json.JSONDecodeError):
                    holder = {}
                reason = self._stale(holder)
                if reason is None:
                    raise CampaignLocked(
                        f"another run of this campaign is in progress (run {holder.get('run_id')},"
                        f" pid {holder.get('pid')} on {holder.get('host')}); lock: {self.path}"
                    ) from None
                log.warning("taking over a stale lock (%s): %s", reason, self.path)
                self.path.unlink(missing_ok=True)
                continue
            with os.fdopen(descriptor, "w") as handle:
                handle.write(record)
            return
        raise CampaignLocked(f"could not take the lock {self.path}")

    def release(self) -> None:
        try:
            holder = json.loads(self.path.read_text())
        except (OSError, json.JSONDecodeError):
            return
        if holder.get("run_id") == self.run_id:
            self.path.unlink(missing_ok=True)
