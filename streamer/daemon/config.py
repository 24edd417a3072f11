"""Daemon configuration: typed, validated once at the edge; TOML file < environment (STREAMER_*) < command line.

See docs/configuration.md for every key. Environment variables use the prefix `STREAMER_` and `__` between
nesting levels, e.g. `STREAMER_MODEL__PATH=models/x.onnx`, `STREAMER_BATCH__MAX_DELAY_MS=2`.
"""

from __future__ import annotations

import json
import os
import tomllib
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator
from pydantic_settings import BaseSettings, InitSettingsSource, PydanticBaseSettingsSource, SettingsConfigDict

from streamer.errors import ConfigError

DEFAULT_MODEL = Path("models/keywords/model.onnx")
ENV_PREFIX = "STREAMER_"
ENV_DELIMITER = "__"


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class ModelConfig(_Section):
    path: Path = Field(default=DEFAULT_MODEL, description="ONNX model file (CONTRACT.md §1)")
    provider: str = Field(default="cpu", description="onnxruntime execution provider: cpu, cuda, ...")
    intra_op_threads: int = Field(default=1, ge=1, le=64, description="threads per onnxruntime call")
    parallel_calls: int = Field(
        default=1,
        ge=1,
        le=64,
        description="onnxruntime calls run side by side per batch: the batch is split into this many parts (of 16 "
        "streams or more), each on its own thread; coarser than intra_op_threads, which splits every operator",
    )


class IngestConfig(_Section):
    endpoint: str = Field(default="tcp://127.0.0.1:5555", description="PULL socket the daemon binds")
    subscribe: list[str] = Field(default_factory=list, description="PUB feeds to connect a SUB socket to")
    receive_hwm: int = Field(default=1000, ge=1, description="ZeroMQ receive high-water mark (messages per peer)")
    max_payload_bytes: int = Field(default=4 * 1024 * 1024, ge=2, description="larger payloads are refused")
    max_queued_chunks: int = Field(
        default=20_000,
        ge=1,
        description="all streams: at this many queued chunks the "
        "daemon stops reading and producers' PUSH blocks (lossless backpressure)",
    )
    max_queued_bytes: int = Field(
        default=256 * 1024 * 1024, ge=1, description="the same bound on the queued payload bytes (memory)"
    )


class PublishConfig(_Section):
    endpoint: str = Field(default="tcp://127.0.0.1:5556", description="PUB socket the daemon binds")
    send_hwm: int = Field(
        default=100_000, ge=1, description="per-subscriber queue; beyond it that subscriber loses messages"
    )


class BatchConfig(_Section):
    max_batch: int = Field(default=128, ge=1, description="most streams stepped in one engine call")
    max_delay_ms: float = Field(
        default=2.0,
        ge=0,
        le=10_000,
        description="longest a ready chunk waits for a fuller batch (batches also fill while the previous computes)",
    )


class StreamsConfig(_Section):
    max_streams: int = Field(default=20_000, ge=1, description="state slots; chunks of further streams are refused")
    max_queued_per_stream: int = Field(
        default=32, ge=1, description="chunks queued per stream before the overload policy"
    )
    idle_timeout_s: float = Field(
        default=300.0, gt=0, description="a stream silent this long is evicted (status evicted)"
    )
    gap_policy: Literal["continue", "reset", "bridge"] = Field(
        default="continue",
        description="after a seq gap: keep state, zero it, or bridge the hole (frontends that can, e.g. sensor)",
    )


class OverloadConfig(_Section):
    policy: Literal["drop_oldest", "refuse_newest"] = Field(
        default="drop_oldest", description="full per-stream queue: drop its oldest chunk, or refuse the new one"
    )
    max_lag_ms: float = Field(default=1000.0, gt=0, description="a chunk waiting longer than this reports overload")
    report_interval_s: float = Field(
        default=5.0, gt=0, description="at most one overload status per stream per interval"
    )


class DetectionConfig(_Section):
    enabled: bool = Field(default=True, description="publish events when the model has streamer.detection metadata")
    threshold: float | None = Field(default=None, gt=0, le=1, description="overrides the model's default threshold")
    thresholds: dict[str, float] = Field(default_factory=dict, description="per-label thresholds (override)")
    smoothing_steps: int | None = Field(default=None, ge=1, description="moving-average window over probabilities")
    patience_steps: int | None = Field(default=None, ge=1, description="consecutive steps over threshold to fire")
    refractory_s: float | None = Field(default=None, ge=0, description="quiet time after an event (stream time)")

    def overrides(self) -> dict[str, Any]:
        """The fields set here, as a partial `streamer.detection` dict."""
        fields = self.model_dump(exclude={"enabled"}, exclude_none=True)
        if not fields.get("thresholds"):
            fields.pop("thresholds", None)
        return fields


class MetricsConfig(_Section):
    enabled: bool = Field(default=True, description="serve Prometheus metrics over HTTP")
    host: str = Field(default="127.0.0.1", description="metrics bind address (loopback by default)")
    port: int = Field(default=9105, ge=0, le=65535, description="metrics port; 0 picks a free one")


class MicConfig(_Section):
    enabled: bool = Field(default=False, description="add a microphone stream")
    device: str | None = Field(default=None, description="sounddevice name or index; None is the default input")
    stream_id: str = Field(
        default="mic", pattern=r"^[A-Za-z0-9._:-]{1,128}$", description="stream id of the microphone"
    )
    chunk_ms: float = Field(default=100.0, gt=0, le=1000, description="microphone chunk length")
    stall_ms: float = Field(
        default=1000.0, gt=0, description="no audio for this long is a fault: the device is reopened (with backoff)"
    )


class SecurityConfig(_Section):
    curve: bool = Field(default=False, description="CurveZMQ authentication and encryption on ingest and publish")
    server_secret_key: Path | None = Field(
        default=None, description="the daemon's NAME.key_secret (`streamer keys generate`), mode 0600"
    )
    allowed_clients_dir: Path | None = Field(
        default=None, description="directory of allowed producers' and subscribers' NAME.key files (re-read on SIGHUP)"
    )

    @model_validator(mode="after")
    def _curve_needs_keys(self) -> SecurityConfig:
        if self.curve and (self.server_secret_key is None or self.allowed_clients_dir is None):
            raise ValueError("curve = true needs server_secret_key and allowed_clients_dir")
        return self


class PersistenceConfig(_Section):
    snapshot_path: Path | None = Field(
        default=None, description="file for all streams' state, restored at start; unset: state is not kept"
    )
    snapshot_period_s: float = Field(
        default=30.0, gt=0, description="seconds between snapshots (also written at shutdown after the drain)"
    )


class DaemonConfig(BaseSettings):
    """Everything `streamer serve` needs. Sections are frozen; SIGHUP builds a new one."""

    model_config = SettingsConfigDict(
        env_prefix=ENV_PREFIX, env_nested_delimiter=ENV_DELIMITER, extra="forbid", frozen=True
    )

    model: ModelConfig = Field(default_factory=ModelConfig)
    ingest: IngestConfig = Field(default_factory=IngestConfig)
    publish: PublishConfig = Field(default_factory=PublishConfig)
    batch: BatchConfig = Field(default_factory=BatchConfig)
    streams: StreamsConfig = Field(default_factory=StreamsConfig)
    overload: OverloadConfig = Field(default_factory=OverloadConfig)
    detection: DetectionConfig = Field(default_factory=DetectionConfig)
    metrics: MetricsConfig = Field(default_factory=MetricsConfig)
    mic: MicConfig = Field(default_factory=MicConfig)
    security: SecurityConfig = Field(default_factory=SecurityConfig)
    persistence: PersistenceConfig = Field(default_factory=PersistenceConfig)
    drain_timeout_s: float = Field(default=10.0, gt=0, description="SIGTERM: longest the daemon drains before exiting")
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = Field(
        default="INFO", description="DEBUG, INFO, WARNING or ERROR"
    )


RELOADABLE = ("batch", "streams", "overload", "detection", "log_level", "drain_timeout_s", "persistence")
"""Sections SIGHUP applies; the others (model, sockets, metrics, mic) need a restart."""


def _read_toml(path: Path) -> dict[str, Any]:
    try:
        with path.open("rb") as file:
            return tomllib.load(file)
    except FileNotFoundError:
        raise ConfigError(f"config file {path}: not found") from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"config file {path}: not valid TOML: {exc}") from None
    except OSError as exc:
        raise ConfigError(f"config file {path}: cannot read: {exc}") from None


def _source_of(loc: tuple[int | str, ...], path: Path | None, overrides: dict[str, Any]) -> str:
    keys = [str(part) for part in loc]
    env_name = ENV_PREFIX + ENV_DELIMITER.join(keys).upper()
    node: Any = overrides
    for key in keys:
        node = node.get(key) if isinstance(node, dict) else None
    if node is not None:
        return "command line"
    if env_name in os.environ or ENV_PREFIX + keys[0].upper() in os.environ:
        return f"environment {env_name}"
    return f"config file {path}" if path else "defaults"


def _describe(exc: ValidationError, path: Path | None, overrides: dict[str, Any]) -> str:
    lines = []
    for error in exc.errors():
        loc = tuple(error["loc"])
        key = ".".join(str(part) for part in loc)
        value = json.dumps(error.get("input"), default=str)[:80]
        lines.append(f"{_source_of(loc, path, overrides)}: key {key!r} = {value}: {error['msg']}")
    return "; ".join(lines)


def load_config(path: Path | None = None, overrides: dict[str, Any] | None = None) -> DaemonConfig:
    """Defaults, then the TOML file, then STREAMER_* variables, then `overrides` (nested dict, from the CLI)."""
    file_data = _read_toml(path) if path is not None else {}
    cli_data = overrides or {}

    class _Loaded(DaemonConfig):
        @classmethod
        def settings_customise_sources(
            cls,
            settings_cls: type[BaseSettings],
            init_settings: PydanticBaseSettingsSource,
            env_settings: PydanticBaseSettingsSource,
            dotenv_settings: PydanticBaseSettingsSource,
            file_secret_settings: PydanticBaseSettingsSource,
        ) -> tuple[PydanticBaseSettingsSource, ...]:
            return init_settings, env_settings, InitSettingsSource(settings_cls, init_kwargs=file_data)

    try:
        loaded = _Loaded(**cli_data)
    except ValidationError as exc:
        raise ConfigError(_describe(exc, path, cli_data)) from None
    return DaemonConfig.model_construct(**{name: getattr(loaded, name) for name in DaemonConfig.model_fields})


def to_toml(config: DaemonConfig) -> str:
    """The resolved configuration as TOML text (what `streamer config check` prints)."""
    data = config.model_dump(mode="json")
    top = [f"{key} = {json.dumps(value)}" for key, value in data.items() if not isinstance(value, dict)]
    sections = []
    for key, value in data.items():
        if isinstance(value, dict):
            body = []
            for name, item in value.items():
                if item is None:
                    hint = ": the model's default" if key == "detection" else ""
                    body.append(f"# {name} = (unset{hint})")
                elif isinstance(item, dict):
                    pairs = ", ".join(f"{json.dumps(k)} = {json.dumps(v)}" for k, v in item.items())
                    body.append(f"{name} = {{{pairs}}}" if pairs else f"{name} = {{}}")
                else:
                    body.append(f"{name} = {json.dumps(item)}")
            sections.append(f"[{key}]\n" + "\n".join(body))
    return "\n".join(top) + "\n\n" + "\n\n".join(sections) + "\n"
