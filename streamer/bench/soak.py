"""`streamer bench soak` (`make soak`): a daemon under steady real-time load for minutes, watched for leaks.

The load generator of `streamer bench daemon` runs back to back windows of N streams (each window's streams end
when it does, so the daemon sees streams come and go as in production). After every window the daemon's resident
memory is read from /proc. The report: RSS slope over the run (MB per minute, least squares over the windows after
the first, which include warm-up allocations), messages not answered (drops), and p99 latency of the first and last
windows. Targets (issue 7): flat RSS (< 1 MB/min), 0 drops.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np

from streamer.bench.daemon import DaemonProcess, LoadSpec, ours, run_load


@dataclass
class SoakWindow:
    index: int
    end_min: float
    rss_mb: float
    sent: int
    answered: int
    overload: int
    p99_ms: float


@dataclass
class SoakReport:
    streams: int
    minutes: float
    windows: list[SoakWindow] = field(default_factory=list)

    @property
    def rss_slope_mb_per_min(self) -> float:
        points = self.windows[1:]
        if len(points) < 2:
            return math.nan
        minutes = np.array([w.end_min for w in points])
        rss = np.array([w.rss_mb for w in points])
        return float(np.polyfit(minutes, rss, 1)[0])

    @property
    def drops(self) -> int:
        return sum(w.sent - w.answered for w in self.windows)

    @property
    def ok(self) -> bool:
        return self.drops == 0 and self.rss_slope_mb_per_min < 1.0

    def to_json(self) -> dict[str, object]:
        return {
            "ok": self.ok,
            "streams": self.streams,
            "minutes": self.minutes,
            "rss_slope_mb_per_min": round(self.rss_slope_mb_per_min, 3),
            "rss_first_mb": self.windows[0].rss_mb if self.windows else None,
            "rss_last_mb": self.windows[-1].rss_mb if self.windows else None,
            "drops": self.drops,
            "overload_reports": sum(w.overload for w in self.windows),
            "p99_first_ms": self.windows[0].p99_ms if self.windows else None,
            "p99_last_ms": self.windows[-1].p99_ms if self.windows else None,
            "windows": [asdict(w) for w in self.windows],
        }


def rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return math.nan


def run_soak(model: Path, streams: int, minutes: float, window_s: float = 30.0) -> SoakReport:
    report = SoakReport(streams, minutes)
    windows = max(3, math.ceil(minutes * 60 / window_s))
    elapsed_s = 0.0
    with DaemonProcess(ours(model)) as daemon:
        for index in range(windows):
            result = run_load(
                LoadSpec(streams, window_s, prefix=f"soak{index}x"), daemon.ingest, daemon.publish, daemon.process.pid
            )
            elapsed_s += result.wall_s
            window = SoakWindow(
                index,
                round(elapsed_s / 60, 3),
                round(rss_mb(daemon.process.pid), 1),
                result.sent,
                result.answered,
                result.overload,
                round(result.percentile(99), 1),
            )
            report.windows.append(window)
            print(
                f"  window {index}: {window.end_min:5.1f} min, RSS {window.rss_mb:7.1f} MB, "
                f"answered {window.answered}/{window.sent}, overload {window.overload}, p99 {window.p99_ms} ms",
                flush=True,
            )
    return report
