"""State across restarts: periodic and shutdown snapshots of every stream, restored at start with seq resync.

A snapshot is the Pipeline's (engine state and frontend tails, one atomic file) annotated with each stream's last
answered seq. On restore the batcher expects the next seq of each stream; a producer further along is told to
resend from there (status `resend`), so the restored state sees every chunk exactly once (docs/protocol.md).
"""

from __future__ import annotations

import logging
import time

from streamer.daemon.batcher import Batcher
from streamer.daemon.config import PersistenceConfig
from streamer.daemon.metrics import DaemonMetrics
from streamer.daemon.stepper import Stepper
from streamer.errors import SnapshotError
from streamer.pipeline import Pipeline

log = logging.getLogger("streamer.daemon.server")


class StateKeeper:
    """Writes and restores the daemon's snapshots; the serving loop calls `snapshot_if_due` from housekeeping."""

    def __init__(self, pipeline: Pipeline, batcher: Batcher, stepper: Stepper, metrics: DaemonMetrics) -> None:
        self.pipeline = pipeline
        self.batcher = batcher
        self.stepper = stepper
        self.metrics = metrics
        self._next_s = 0.0

    def restore(self, config: PersistenceConfig) -> None:
        """Start from the last snapshot if there is one that fits this model; otherwise start clean (logged)."""
        self._next_s = time.monotonic() + config.snapshot_period_s
        path = config.snapshot_path
        if path is None or not path.exists():
            return
        try:
            annotations = self.pipeline.restore(path)
        except SnapshotError as exc:
            log.error("not restoring state, starting clean: %s", exc)
            return
        answered = annotations.get("answered_seq", {})
        next_seqs = {s: int(q) + 1 for s, q in answered.items() if isinstance(q, int)}
        self.batcher.restore(next_seqs, time.monotonic())
        self.stepper.answered_seq.update({s: q - 1 for s, q in next_seqs.items()})
        log.info(
            "restored %d stream(s) from %s, written %.1f s ago: chunks answered after it are asked for again "
            "(status resend)",
            len(self.pipeline.engine),
            path,
            time.time() - path.stat().st_mtime,
        )

    def snapshot_if_due(self, config: PersistenceConfig, now_s: float) -> None:
        if config.snapshot_path is not None and now_s >= self._next_s:
            self.snapshot(config)
            self._next_s = now_s + config.snapshot_period_s

    def snapshot(self, config: PersistenceConfig) -> None:
        """Write one snapshot now (also at shutdown, after the drain); a failure is logged, never fatal."""
        if config.snapshot_path is None:
            return
        started_s = time.monotonic()
        try:
            self.pipeline.snapshot(config.snapshot_path, annotations={"answered_seq": self.stepper.answered_seq})
        except OSError as exc:
            log.error("snapshot to %s failed, state not saved: %s", config.snapshot_path, exc)
            return
        self.metrics.snapshot_seconds.observe(time.monotonic() - started_s)
