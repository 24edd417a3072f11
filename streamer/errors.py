"""streamer's exception tree; every error a user can meet is one of these.

    StreamerError
    ├── ConfigError          bad configuration or arguments        (CLI exit code 2)
    ├── ModelError           a model file breaks the contract      (CLI exit code 3)
    ├── ExportError          a PyTorch module could not be exported and verified
    ├── StreamError          one stream's input was refused; other streams go on
    │   ├── ChunkError       a chunk has the wrong shape, dtype or non-finite values
    │   └── UnknownStreamError   reset/end/restore named a stream that does not exist
    ├── CapacityError        no free state slot: max_streams reached
    ├── SnapshotError        a state snapshot is corrupt or belongs to another model
    ├── ProtocolError        a wire message is malformed (carries a status code)
    └── DeviceError          audio device or provider unavailable (says what to install or pass)

Only the CLI boundary turns these into one log line and an exit code.
"""

from __future__ import annotations


class StreamerError(Exception):
    """Root of all errors streamer raises on purpose."""

    exit_code = 1


class ConfigError(StreamerError):
    """Bad configuration or command-line arguments."""

    exit_code = 2


class ModelError(StreamerError):
    """A model file breaks the stateful model contract."""

    exit_code = 3


class ExportError(StreamerError):
    """A PyTorch module could not be exported, or the exported file failed verification."""

    exit_code = 3


class StreamError(StreamerError):
    """One stream's input was refused; nothing else was touched."""

    def __init__(self, stream_id: str, message: str) -> None:
        super().__init__(f"stream {stream_id!r}: {message}")
        self.stream_id = stream_id
        self.reason = message


class ChunkError(StreamError):
    """A chunk has the wrong shape, dtype or non-finite values."""


class UnknownStreamError(StreamError):
    """An operation named a stream the engine does not hold."""


class CapacityError(StreamerError):
    """Every state slot is taken (max_streams reached)."""


class SnapshotError(StreamerError):
    """A state snapshot is unreadable, corrupt, or was written for another model."""


class ProtocolError(StreamerError):
    """A wire message is malformed; `code` is the status code sent back (bad_header, bad_payload...)."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code


class DeviceError(StreamerError):
    """An audio device, sound server or execution provider is unavailable."""
