"""Small counters for the daemon's logs and STATUS line: a rate-limited warning log, messages/steps per second, and
how busy the loop and the model call were."""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field

log = logging.getLogger("streamer.daemon.server")


@dataclass
class RateLimitedLog:
    """Logs at most one line per code per `interval_s`, with a count of the lines it held back."""

    interval_s: float = 1.0
    last_s: dict[str, float] = field(default_factory=dict)
    held: dict[str, int] = field(default_factory=dict)

    def warning(self, code: str, text: str, now_s: float) -> None:
        if now_s - self.last_s.get(code, float("-inf")) < self.interval_s:
            self.held[code] = self.held.get(code, 0) + 1
            return
        held = self.held.pop(code, 0)
        self.last_s[code] = now_s
        log.warning("%s%s", text, f" (+{held} similar since last report)" if held else "")


@dataclass
class Rates:
    """Messages and steps per second over the last STATUS interval, and the share of it that the loop thread spent
    on the CPU (`loop_cpu_s`) and the compute thread in model calls (`model_busy_s`): near 1, that side is the
    limit (docs/operations.md, "Sizing")."""

    interval_s: float = 2.0
    messages: int = 0
    steps: int = 0
    loop_cpu_s: float = 0.0
    model_busy_s: float = 0.0
    messages_per_s: float = 0.0
    steps_per_s: float = 0.0
    loop_busy: float = 0.0
    model_busy: float = 0.0
    since_s: float = field(default_factory=time.monotonic)

    def due(self, now_s: float) -> bool:
        elapsed_s = now_s - self.since_s
        if elapsed_s < self.interval_s:
            return False
        self.messages_per_s, self.steps_per_s = self.messages / elapsed_s, self.steps / elapsed_s
        self.loop_busy, self.model_busy = self.loop_cpu_s / elapsed_s, self.model_busy_s / elapsed_s
        self.messages = self.steps = 0
        self.loop_cpu_s = self.model_busy_s = 0.0
        self.since_s = now_s
        return True
