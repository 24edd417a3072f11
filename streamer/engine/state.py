"""StateStore: every stream's recurrent state in preallocated slabs, one slot (batch row) per stream.

One slab per state tensor, its batch axis sized to the capacity. A step gathers the rows of its streams, runs the
model and scatters the new rows back. Capacity doubles when full, up to `max_streams`; past that a CapacityError
says so. Idle streams are evicted on request and the evicted ids returned, so the caller can tell their producers.
"""

from __future__ import annotations

import json
import operator
import os
import tempfile
import time
import zipfile
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from streamer.errors import CapacityError, SnapshotError
from streamer.model.contract import StatePair

SNAPSHOT_FORMAT = 1
ATTACHMENT_PREFIX = "attached_"


class StateStore:
    """Slot allocation plus gather/scatter of state rows; not thread-safe (one owner: the engine)."""

    def __init__(self, states: Sequence[StatePair], *, initial_slots: int = 64, max_streams: int = 100_000) -> None:
        if initial_slots < 1 or max_streams < 1:
            raise ValueError("initial_slots and max_streams must be at least 1")
        self.states = list(states)
        self.max_streams = max_streams
        self.capacity = min(initial_slots, max_streams)
        self.slabs = [s.zeros(self.capacity) for s in self.states]
        self.slot_of: dict[str, int] = {}
        self.steps = np.zeros(self.capacity, dtype=np.int64)
        self.last_active_s = np.zeros(self.capacity, dtype=np.float64)
        self._free = list(range(self.capacity - 1, -1, -1))  # pop() hands out low slots first

    def __len__(self) -> int:
        return len(self.slot_of)

    def __contains__(self, stream_id: object) -> bool:
        return stream_id in self.slot_of

    def free_slots(self) -> int:
        return len(self._free) + (self.max_streams - self.capacity)

    def slots_for(self, stream_ids: Sequence[str]) -> np.ndarray:
        """Slots of these streams, allocating zeroed ones for new streams. Raises CapacityError if they don't fit."""
        slot_of = self.slot_of
        if len(stream_ids) > 1:
            try:  # the common case, every stream known: one C-level lookup
                return np.fromiter(operator.itemgetter(*stream_ids)(slot_of), dtype=np.intp, count=len(stream_ids))
            except KeyError:
                pass
        new = [s for s in stream_ids if s not in slot_of]
        if new:
            if len(new) > self.free_slots():
                raise CapacityError(
                    f"state store full: {len(self.slot_of)} streams active, max_streams is {self.max_streams}; "
                    "end or evict streams, or raise max_streams"
                )
            while len(new) > len(self._free):
                self._grow()
            for stream_id in new:
                slot_of[stream_id] = self._free.pop()
        return np.fromiter((slot_of[s] for s in stream_ids), dtype=np.intp, count=len(stream_ids))

    def gather(self, slots: np.ndarray) -> list[np.ndarray]:
        return [np.take(slab, slots, axis=s.batch_axis) for slab, s in zip(self.slabs, self.states, strict=True)]

    def scatter(self, slots: np.ndarray, values: Sequence[np.ndarray]) -> None:
        for slab, state, value in zip(self.slabs, self.states, values, strict=True):
            index = (slice(None),) * state.batch_axis + (slots,)
            slab[index] = value

    def touch(self, slots: np.ndarray, steps: int, now_s: float) -> None:
        self.steps[slots] += steps
        self.last_active_s[slots] = now_s

    def reset(self, stream_id: str) -> bool:
        """Zero one stream's state (it keeps its slot and its step count restarts). False if unknown."""
        slot = self.slot_of.get(stream_id)
        if slot is None:
            return False
        self._clear(slot)
        return True

    def end(self, stream_id: str) -> bool:
        """Forget one stream and free its slot. False if unknown."""
        slot = self.slot_of.pop(stream_id, None)
        if slot is None:
            return False
        self._clear(slot)
        self._free.append(slot)
        return True

    def evict_idle(self, idle_s: float, now_s: float | None = None) -> list[str]:
        """End every stream not stepped for `idle_s` seconds; returns the evicted ids (oldest first)."""
        now_s = time.monotonic() if now_s is None else now_s
        cutoff = now_s - idle_s
        idle = [
            (self.last_active_s[slot], sid) for sid, slot in self.slot_of.items() if self.last_active_s[slot] < cutoff
        ]
        evicted = [sid for _, sid in sorted(idle)]
        for stream_id in evicted:
            self.end(stream_id)
        return evicted

    def _clear(self, slot: int) -> None:
        for slab, state in zip(self.slabs, self.states, strict=True):
            slab[(slice(None),) * state.batch_axis + (slot,)] = 0.0
        self.steps[slot] = 0

    def _grow(self) -> None:
        old = self.capacity
        self.capacity = min(old * 2, self.max_streams)
        grown = []
        for slab, state in zip(self.slabs, self.states, strict=True):
            bigger = state.zeros(self.capacity)
            bigger[(slice(None),) * state.batch_axis + (slice(0, old),)] = slab
            grown.append(bigger)
        self.slabs = grown
        self.steps = np.concatenate([self.steps, np.zeros(self.capacity - old, np.int64)])
        self.last_active_s = np.concatenate([self.last_active_s, np.zeros(self.capacity - old)])
        self._free = list(range(self.capacity - 1, old - 1, -1)) + self._free

    # -- snapshots -------------------------------------------------------------------------------------------

    def snapshot(self, path: str | os.PathLike[str], fingerprint: str, attachment: Attachment | None = None) -> None:
        """Write every stream's state rows and step counts to `path` atomically (temp file, fsync, rename).
        `attachment` (a JSON-able header and named arrays) rides along: the pipeline stores frontend state in it."""
        ids = list(self.slot_of)
        slots = np.fromiter((self.slot_of[s] for s in ids), dtype=np.intp, count=len(ids))
        arrays: dict[str, np.ndarray] = {f"state_{i}": rows for i, rows in enumerate(self.gather(slots))}
        arrays["steps"] = self.steps[slots]
        header: dict[str, object] = {
            "format": SNAPSHOT_FORMAT,
            "fingerprint": fingerprint,
            "states": [[s.input, list(s.shape), s.batch_axis] for s in self.states],
            "streams": ids,
        }
        if attachment is not None:
            header["attachment"] = attachment.header
            arrays.update({ATTACHMENT_PREFIX + name: value for name, value in attachment.arrays.items()})
        arrays["header"] = np.array(json.dumps(header))
        write_atomically(Path(path), arrays)

    def restore(self, path: str | os.PathLike[str], fingerprint: str) -> Attachment | None:
        """Replace all state with a snapshot's; returns its attachment. Refuses (SnapshotError, nothing changed)
        a corrupt file or one written for another model."""
        snapshot = self.read(path, fingerprint)
        self.apply(snapshot)
        return snapshot.attachment

    def read(self, path: str | os.PathLike[str], fingerprint: str) -> Snapshot:
        """Read and check a snapshot without applying it."""
        path = Path(path)
        try:
            with path.open("rb") as f, np.load(f, allow_pickle=False) as data:
                header = json.loads(str(data["header"]))
                steps = data["steps"]
                rows = [data[f"state_{i}"] for i in range(len(self.states))]
                attached = {k[len(ATTACHMENT_PREFIX) :]: data[k] for k in data.files if k.startswith(ATTACHMENT_PREFIX)}
        except (OSError, ValueError, KeyError, json.JSONDecodeError, zipfile.BadZipFile, EOFError) as exc:
            raise SnapshotError(f"snapshot {path}: unreadable or corrupt ({exc})") from exc
        if not isinstance(header, dict) or header.get("format") != SNAPSHOT_FORMAT:
            raise SnapshotError(f"snapshot {path}: not a streamer snapshot of format {SNAPSHOT_FORMAT}")
        if header.get("fingerprint") != fingerprint:
            raise SnapshotError(f"snapshot {path}: written for another model (fingerprint differs); not restored")
        ids = header.get("streams")
        if not isinstance(ids, list) or len(ids) != len(steps) or len(ids) > self.max_streams:
            raise SnapshotError(f"snapshot {path}: stream list does not match its arrays or exceeds max_streams")
        for state, value in zip(self.states, rows, strict=True):
            if value.shape != state.zeros(len(ids)).shape or value.dtype != np.float32:
                raise SnapshotError(
                    f"snapshot {path}: state {state.input!r} has shape {value.shape}, "
                    f"expected {state.zeros(len(ids)).shape}"
                )
        attachment = Attachment(header["attachment"], attached) if isinstance(header.get("attachment"), dict) else None
        return Snapshot(path, ids, steps, rows, attachment)

    def apply(self, snapshot: Snapshot) -> None:
        """Make a checked snapshot the whole state: every other stream is ended."""
        for stream_id in list(self.slot_of):
            self.end(stream_id)
        slots = self.slots_for(snapshot.stream_ids)
        self.scatter(slots, snapshot.rows)
        self.steps[slots] = snapshot.steps
        self.last_active_s[slots] = time.monotonic()


@dataclass
class Snapshot:
    """A snapshot file's contents, checked against this store's model."""

    path: Path
    stream_ids: list[str]
    steps: np.ndarray
    rows: list[np.ndarray]
    attachment: Attachment | None


@dataclass
class Attachment:
    """Extra state saved in the same snapshot file as the engine's: a JSON-able header and named arrays."""

    header: dict[str, Any]
    arrays: dict[str, np.ndarray]


def write_atomically(path: Path, arrays: dict[str, np.ndarray]) -> None:
    """np.savez to a temp file beside `path`, fsync, rename over `path`, fsync the directory."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as f:
            np.savez(f, **arrays)  # type: ignore[arg-type]  # numpy's stub types **kwds as its bool options
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    _fsync_dir(path.parent)


def _fsync_dir(directory: Path) -> None:
    fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
