"""`streamer listen`: a live table of streams for people (rich), or one JSON object per line for programs."""

from __future__ import annotations

import json
import sys
import time
from dataclasses import dataclass, field
from typing import Any, TextIO

import numpy as np
from rich import box
from rich.console import Group
from rich.live import Live
from rich.table import Table
from rich.text import Text

from streamer.client import Subscriber
from streamer.daemon.protocol import OutputMessage

RECENT_LINES = 8


def to_json(message: OutputMessage) -> dict[str, Any]:
    """A message as one JSON-able object: the header, plus `kind` and `scores` (rows of floats) for preds."""
    record: dict[str, Any] = {"kind": message.kind, **message.header}
    if message.scores is not None:
        record["scores"] = np.round(message.scores.astype(np.float64), 5).tolist()
    return record


@dataclass
class _StreamRow:
    preds: int = 0
    top_label: str = ""
    top_score: float = 0.0
    latency_ms: float = 0.0
    events: int = 0
    last_status: str = ""


@dataclass
class LiveView:
    """Per-stream rows (answers, latest latency and top class, events) and the latest events and statuses."""

    rows: dict[str, _StreamRow] = field(default_factory=dict)
    recent: list[Text] = field(default_factory=list)
    missed: dict[str, int] = field(default_factory=dict)  # Subscriber.missed: answers this view never got

    def update(self, message: OutputMessage) -> None:
        row = self.rows.setdefault(message.stream_id, _StreamRow())
        header = message.header
        if message.kind == "pred":
            row.preds += 1
            row.latency_ms = float(header["latency_ms"])
            if message.scores is not None and len(message.scores):
                last = message.scores[-1]
                best = int(np.argmax(last))
                row.top_label, row.top_score = header["labels"][best], float(last[best])
        elif message.kind == "event":
            row.events += 1
            self._note(
                Text(
                    f"EVENT  {message.stream_id}: {header['label']} (score {header['score']:.2f}, "
                    f"t={header['t_s']:.2f} s)",
                    style="bold green",
                )
            )
        else:
            row.last_status = header["code"]
            self._note(Text(f"status {message.stream_id}: {header['code']}: {header['message']}", style="yellow"))

    def _note(self, line: Text) -> None:
        self.recent = [*self.recent[-(RECENT_LINES - 1) :], line]

    def render(self) -> Group:
        # One line per stream, even on an 80-column terminal: `ms` is the latest answer's latency.
        table = Table(title="streamer: live streams", expand=False, box=box.SIMPLE_HEAD, show_edge=False)
        numbers = ("preds", "ms", "events", "missed")
        for name in ("stream", *numbers[:2], "top class now", "events", "missed", "status"):
            table.add_column(name, justify="right" if name in numbers else "left", no_wrap=True)
        for stream_id, row in sorted(self.rows.items())[:40]:
            table.add_row(
                stream_id,
                str(row.preds),
                f"{row.latency_ms:.1f}",
                f"{row.top_label} {row.top_score:.2f}",
                str(row.events),
                str(self.missed.get(stream_id, 0)),
                row.last_status,
            )
        if len(self.rows) > 40:
            table.caption = f"... and {len(self.rows) - 40} more streams"
        return Group(table, *self.recent)


def listen(
    endpoint: str, streams: list[str] | None, as_json: bool, out: TextIO = sys.stdout, duration_s: float | None = None
) -> None:
    """Print what the daemon publishes until interrupted (or for `duration_s`)."""
    deadline_s = None if duration_s is None else time.monotonic() + duration_s
    with Subscriber(endpoint, streams) as subscriber:
        if as_json:
            while deadline_s is None or time.monotonic() < deadline_s:
                message = subscriber.recv(timeout_ms=200)
                if message is not None:
                    out.write(json.dumps(to_json(message)) + "\n")
                    out.flush()
            return
        view = LiveView(missed=subscriber.missed)
        next_render_s = 0.0
        with Live(view.render(), auto_refresh=False, transient=False) as live:
            while deadline_s is None or time.monotonic() < deadline_s:
                message = subscriber.recv(timeout_ms=250)
                if message is not None:
                    view.update(message)
                if time.monotonic() >= next_render_s:
                    live.update(view.render(), refresh=True)
                    next_render_s = time.monotonic() + 0.25
