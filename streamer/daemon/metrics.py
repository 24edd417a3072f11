"""Prometheus metrics of the daemon (prometheus-client), in a registry of its own, served over HTTP on loopback."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from wsgiref.simple_server import WSGIServer

import numpy as np
from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, disable_created_metrics, start_http_server
from prometheus_client.core import HistogramMetricFamily
from prometheus_client.registry import Collector

from streamer.errors import ConfigError

OUTCOMES = (
    "accepted",
    "bad_frames",
    "bad_stream_id",
    "bad_header",
    "bad_version",
    "bad_payload",
    "bad_seq",
    "overload",
    "capacity",
    "refused",
    "internal_error",
    "resend",
    "unauthorized",
)
LATENCY_BUCKETS_S = (0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.2, 0.5, 1.0, 2.0, 5.0)
BATCH_BUCKETS = (1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024, 2048, 4096)


class BatchHistogram(Collector):
    """A Prometheus histogram fed a whole batch at a time (one numpy call instead of a locked call per value)."""

    def __init__(self, name: str, documentation: str, buckets: tuple[float, ...], registry: CollectorRegistry) -> None:
        self.name, self.documentation = name, documentation
        self.bounds = np.asarray(buckets, np.float64)
        self._counts = np.zeros(len(buckets) + 1, np.int64)
        self._sum = 0.0
        registry.register(self)

    def observe_many(self, values: np.ndarray) -> None:
        if len(values):
            self._counts += np.bincount(np.searchsorted(self.bounds, values), minlength=len(self._counts))
            self._sum += float(values.sum())

    def observe(self, value: float) -> None:
        self.observe_many(np.asarray([value], np.float64))

    def collect(self) -> Iterator[HistogramMetricFamily]:
        cumulative = np.cumsum(self._counts).tolist()
        buckets = [(f"{bound:g}", count) for bound, count in zip(self.bounds.tolist(), cumulative, strict=False)]
        buckets.append(("+Inf", cumulative[-1]))
        yield HistogramMetricFamily(self.name, self.documentation, buckets=buckets, sum_value=self._sum)


class DaemonMetrics:
    """Every metric the daemon exports; children with fixed labels are bound once (labels() is slow)."""

    def __init__(self) -> None:
        disable_created_metrics()  # *_created series double the scrape for no use here
        self.registry = CollectorRegistry()
        r = self.registry
        messages = Counter("streamer_messages", "Ingest messages by outcome", ["outcome"], registry=r)
        self.messages = {outcome: messages.labels(outcome) for outcome in OUTCOMES}
        published = Counter("streamer_published", "Messages published by kind", ["kind"], registry=r)
        self.published = {kind: published.labels(kind) for kind in ("pred", "event", "status")}
        self.publish_dropped = Counter("streamer_publish_dropped", "Messages the PUB socket refused", registry=r)
        self.steps = Counter("streamer_steps", "Model steps computed (all streams)", registry=r)
        self.engine_calls = Counter("streamer_batches", "Batched pipeline calls", registry=r)
        self.batch_size = Histogram(
            "streamer_batch_streams", "Streams per batched call", buckets=BATCH_BUCKETS, registry=r
        )
        self.latency = BatchHistogram(
            "streamer_latency_seconds", "Receive to publish of each pred", LATENCY_BUCKETS_S, r
        )
        self.e2e_latency = BatchHistogram(
            "streamer_e2e_latency_seconds",
            "Producer t_ns to publish of each pred (assumes one clock)",
            LATENCY_BUCKETS_S,
            r,
        )
        self.active_streams = Gauge("streamer_active_streams", "Streams the daemon holds", registry=r)
        self.evictions = Counter("streamer_evictions", "Streams evicted after idle_timeout_s", registry=r)
        self.overload = Counter("streamer_overload", "Chunks dropped or refused by the overload policy", registry=r)
        self.gaps = Counter("streamer_gaps", "Sequence gaps seen", registry=r)
        self.events = Counter("streamer_detections", "Keyword events published", registry=r)
        self.queued_chunks = Gauge("streamer_queued_chunks", "Chunks waiting in per-stream queues", registry=r)
        self.queued_bytes = Gauge("streamer_queued_bytes", "Payload bytes waiting in per-stream queues", registry=r)
        self.max_queue_depth = Gauge("streamer_max_stream_queue_depth", "Deepest per-stream queue", registry=r)
        self.lag = Gauge("streamer_lag_seconds", "Age of the oldest queued chunk", registry=r)
        self.snapshot_seconds = Histogram(
            "streamer_snapshot_seconds",
            "Time to write a state snapshot (persistence.snapshot_path)",
            buckets=LATENCY_BUCKETS_S,
            registry=r,
        )
        self.ingest_paused = Gauge("streamer_ingest_paused", "1 while reading is paused (backpressure)", registry=r)
        self.loop_cpu = Counter(
            "streamer_loop_cpu_seconds",
            "CPU time of the serving loop's thread; a rate near 1 means the loop is the limit (add a shard)",
            registry=r,
        )
        self.model_busy = Counter(
            "streamer_model_busy_seconds",
            "Wall time the compute thread spent in model calls; a rate near 1 means the model is the limit",
            registry=r,
        )
        self._server: WSGIServer | None = None
        self._thread: threading.Thread | None = None

    def serve(self, host: str, port: int) -> int:
        """Start the HTTP endpoint; returns the bound port (useful with port 0)."""
        try:
            self._server, self._thread = start_http_server(port, addr=host, registry=self.registry)
        except OSError as exc:
            raise ConfigError(f"metrics: cannot listen on {host}:{port}: {exc} (metrics.host / metrics.port)") from None
        return int(self._server.server_address[1])

    def close(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None
