"""The daemon: owns the lifecycle (bind, ready, serve, drain, exit) and wires ingest → batcher → stepper → publish.

One thread runs the loop: read what the sockets hold (bounded; ingest.py decodes and files it per stream in
batcher.py), and when a batch is due (`max_batch` streams ready, or the oldest has waited `max_delay_ms`) hand it
to the stepper (stepper.py). The stepper runs the frontend here and the model call on the engine's compute thread
(onnxruntime releases the GIL, so it uses the other core): while batch k's call runs, the loop reads, decodes and
prepares batch k+1 (its frontend), starts k+1's call the moment k's ends, then publishes k's answers. Signals
only set flags; the loop acts on them.
"""

from __future__ import annotations

import contextlib
import gc
import logging
import signal
import sys
import time
from pathlib import Path
from types import FrameType
from typing import Any

import zmq

from streamer.daemon.auth import ClientAllowList, is_loopback, make_server
from streamer.daemon.batcher import Batcher, BatcherPolicy, Item
from streamer.daemon.config import RELOADABLE, DaemonConfig, load_config
from streamer.daemon.ingest import Ingest
from streamer.daemon.metrics import DaemonMetrics
from streamer.daemon.mic import ENDPOINT as MIC_ENDPOINT
from streamer.daemon.mic import MicrophoneBridge
from streamer.daemon.persistence import StateKeeper
from streamer.daemon.publisher import Publisher, bind
from streamer.daemon.rates import Rates
from streamer.daemon.stepper import Batch, Stepper, build_detector, build_pipeline
from streamer.daemon.systemd import Notifier
from streamer.errors import ConfigError, StreamerError

log = logging.getLogger(__name__)
READ_BUDGET = 2048  # messages read per loop turn before the loop gets to step a batch
IN_FLIGHT_READ_BUDGET = 64  # ... while a batch's model call runs (~2 ms of decoding), to answer it promptly
# The compute thread needs the GIL back when its model call returns; the default 5 ms switch interval would let
# it wait that long behind the loop's decoding.
SWITCH_INTERVAL_S = 0.0005
HOUSEKEEPING_S = 0.5
IDLE_POLL_MS = 100
REBIND_TIMEOUT_S = 5.0


class Daemon:
    """`Daemon(config).run()` serves until SIGTERM/SIGINT and returns the exit code."""

    def __init__(
        self, config: DaemonConfig, config_path: Path | None = None, overrides: dict[str, Any] | None = None
    ) -> None:
        self.config = config
        self._config_path = config_path
        self._overrides = overrides or {}
        self.metrics = DaemonMetrics()
        self.notifier = Notifier()
        self.pipeline = build_pipeline(config)
        self.spec = self.pipeline.engine.spec
        self.batcher = Batcher(self._batcher_policy(config))
        self.stepper = Stepper(self.pipeline, build_detector(self.pipeline, config), self.batcher, self.metrics)
        self._overload_reported: dict[str, float] = {}
        self._stop_requests = 0
        self._reload_requested = False
        self.context: zmq.Context[zmq.Socket[bytes]] = zmq.Context()
        self._ingest_sockets: list[zmq.Socket[bytes]] = []
        self.publisher: Publisher | None = None
        self.endpoints: dict[str, str] = {}
        self._rates = Rates()
        self._loop_cpu_s = self._model_busy_s = 0.0  # totals at the last housekeeping (_account_busy; set in _serve)
        self.ingest = Ingest(config.ingest, self.batcher, self.stepper, self.metrics, self._rates)
        self._sources: list[MicrophoneBridge] = []
        self.allow_list: ClientAllowList | None = None
        self._in_flight: Batch | None = None  # its model call is running (or done, not yet answered)
        self._prepared: Batch | None = None  # the next batch: frontend done, call not started
        # The compute thread says "model call done" on this inproc pair, which the loop polls with its sockets.
        self._wake_rx = self.context.socket(zmq.PAIR)
        self._wake_rx.bind(f"inproc://streamer-wake-{id(self):x}")
        self._wake_tx = self.context.socket(zmq.PAIR)
        self._wake_tx.connect(f"inproc://streamer-wake-{id(self):x}")
        self.keeper = StateKeeper(self.pipeline, self.batcher, self.stepper, self.metrics)
        self.keeper.restore(config.persistence)

    # -- setup -----------------------------------------------------------------------------------------------

    @staticmethod
    def _batcher_policy(config: DaemonConfig) -> BatcherPolicy:
        return BatcherPolicy(
            config.streams.max_queued_per_stream,
            config.streams.max_streams,
            config.streams.gap_policy,
            config.overload.policy,
        )

    def bind(self) -> None:
        """Bind ingest, publish and metrics; raises ConfigError naming the endpoint that failed."""
        security = self.config.security
        if security.curve:
            assert security.allowed_clients_dir is not None
            self.allow_list = ClientAllowList(self.context, security.allowed_clients_dir)
            self.ingest.allow_list = self.allow_list
        else:
            for role, endpoint in (("ingest", self.config.ingest.endpoint), ("publish", self.config.publish.endpoint)):
                if not is_loopback(endpoint):
                    log.warning(
                        "%s.endpoint %s is not loopback and security.curve is off: anyone who can reach it can "
                        "%s (see docs/security.md)",
                        role,
                        endpoint,
                        "send data" if role == "ingest" else "read every prediction",
                    )
        pull = self.context.socket(zmq.PULL)
        pull.setsockopt(zmq.RCVHWM, self.config.ingest.receive_hwm)
        pull.setsockopt(zmq.LINGER, 0)
        self._secure(pull)
        self.endpoints["ingest"] = bind(pull, self.config.ingest.endpoint, "ingest.endpoint")
        self._ingest_sockets.append(pull)
        if self.config.ingest.subscribe:
            sub = self.context.socket(zmq.SUB)
            sub.setsockopt(zmq.RCVHWM, self.config.ingest.receive_hwm)
            sub.setsockopt(zmq.LINGER, 0)
            sub.setsockopt(zmq.SUBSCRIBE, b"")
            for endpoint in self.config.ingest.subscribe:
                try:
                    sub.connect(endpoint)
                except zmq.ZMQError as exc:
                    raise ConfigError(f"ingest.subscribe: cannot connect {endpoint!r}: {exc}") from None
            self._ingest_sockets.append(sub)
        self._bind_publisher(self.config.publish.endpoint)
        if self.config.metrics.enabled:
            port = self.metrics.serve(self.config.metrics.host, self.config.metrics.port)
            self.endpoints["metrics"] = f"http://{self.config.metrics.host}:{port}/metrics"

    def _secure(self, socket: zmq.Socket[bytes]) -> None:
        if self.config.security.curve:
            assert self.config.security.server_secret_key is not None
            make_server(socket, self.config.security.server_secret_key)

    def _bind_publisher(self, endpoint: str) -> None:
        self.publisher = Publisher(
            self.context, endpoint, self.config.publish.send_hwm, self.metrics, configure=self._secure
        )
        self.endpoints["publish"] = self.publisher.endpoint
        self.stepper.publisher = self.publisher

    def add_microphone(self) -> None:
        """`mic.enabled`: capture from the microphone as stream `mic.stream_id` through the normal ingest path."""
        bind(self._ingest_sockets[0], MIC_ENDPOINT, "mic")
        bridge = MicrophoneBridge(self.context, self.config.mic, self.pipeline.sample_rate_hz)
        bridge.start()
        self._sources.append(bridge)

    # -- lifecycle -------------------------------------------------------------------------------------------

    def _on_stop(self, signum: int, frame: FrameType | None) -> None:
        self._stop_requests += 1
        if self._stop_requests > 1:
            log.warning("second %s: stopping without finishing the drain", signal.Signals(signum).name)

    def _on_hup(self, signum: int, frame: FrameType | None) -> None:
        self._reload_requested = True

    def install_signal_handlers(self) -> None:
        signal.signal(signal.SIGTERM, self._on_stop)
        signal.signal(signal.SIGINT, self._on_stop)
        signal.signal(signal.SIGHUP, self._on_hup)

    def run(self) -> int:
        """Bind (if not done), announce readiness, serve until asked to stop, drain, close. Returns 0."""
        if self.publisher is None:
            self.bind()
        self.install_signal_handlers()
        # Everything loaded so far (onnxruntime, numpy, the model) lives until exit: freeze it out of the cyclic
        # GC, whose full collections otherwise walk it all and stall the loop for tens of milliseconds.
        gc.collect()
        gc.freeze()
        sys.setswitchinterval(SWITCH_INTERVAL_S)
        log.info(
            "serving %s (%d classes) ingest %s publish %s%s",
            self.spec.path,
            self.spec.num_classes,
            self.endpoints["ingest"],
            self.endpoints["publish"],
            f" metrics {self.endpoints['metrics']}" if "metrics" in self.endpoints else "",
        )
        self.notifier.ready(self._status_line())
        try:
            self._serve()
            self._drain()
        finally:
            self.close()
        return 0

    def close(self) -> None:
        for source in self._sources:
            source.close()
        self._sources.clear()
        for sock in self._ingest_sockets:
            sock.close(linger=0)
        self._ingest_sockets.clear()
        if self.publisher is not None:
            self.publisher.close(linger_ms=1000)
            self.publisher = None
            self.stepper.publisher = None
        self.metrics.close()
        self.pipeline.engine.close()
        self._wake_rx.close(linger=0)
        self._wake_tx.close(linger=0)
        if self.allow_list is not None:
            self.allow_list.stop()
            self.allow_list = self.ingest.allow_list = None
        self.context.term()
        self.notifier.close()

    # -- the loop --------------------------------------------------------------------------------------------

    def _serve(self) -> None:
        poller = zmq.Poller()
        for sock in self._ingest_sockets:
            poller.register(sock, zmq.POLLIN)
        poller.register(self._wake_rx, zmq.POLLIN)
        next_housekeeping_s = time.monotonic() + HOUSEKEEPING_S
        self._loop_cpu_s, self._model_busy_s = time.thread_time(), self.pipeline.engine.busy_s
        while not self._stop_requests:
            # One turn: when the running model call is done, start the prepared batch's and answer the finished
            # one; prepare the next batch if one is due; read what has arrived (a little at a time while a call
            # runs, so the next one starts promptly).
            if self._in_flight is not None and self._in_flight.done():
                self._advance()
            if self._prepared is None and self._batch_due(time.monotonic()):
                self._prepare(self.batcher.take(self.config.batch.max_batch))
            paused = self.ingest.full()
            self.metrics.ingest_paused.set(paused)
            if paused:  # nothing may be read (producers' PUSH blocks): wait for the running call instead
                if self._in_flight is not None:
                    self._advance()
            else:
                if self._in_flight is not None:  # the call's wake-up ends the wait
                    timeout_ms, budget = IDLE_POLL_MS, IN_FLIGHT_READ_BUDGET
                else:
                    timeout_ms, budget = self._poll_timeout_ms(time.monotonic()), READ_BUDGET
                for sock in dict(poller.poll(timeout_ms)):
                    if sock is self._wake_rx:
                        self._wake_rx.recv()
                    else:
                        self.ingest.read(sock, budget)
            now_s = time.monotonic()
            if now_s >= next_housekeeping_s:
                self._flush()  # evictions and snapshots need the pipeline still
                self._housekeeping(now_s)
                next_housekeeping_s = now_s + HOUSEKEEPING_S
            self.notifier.watchdog(now_s)
        self._flush()

    def _prepare(self, items: list[Item]) -> None:
        """Control items reset or end a stream everywhere (detector included): answer what runs first."""
        if any(item.message.kind != "data" for item in items):
            self._flush()
        self._prepared = self.stepper.prepare(items)
        if self._in_flight is None:
            self._launch()

    def _launch(self) -> None:
        batch, self._prepared = self._prepared, None
        if batch is not None:
            self.stepper.submit(batch)
            self._in_flight = batch
            if batch.pending is not None:
                batch.pending.on_done(self._wake)

    def _advance(self) -> None:
        """The running call is done (or waited for): start the prepared one, then answer the finished batch."""
        finished, self._in_flight = self._in_flight, None
        self._launch()
        if finished is not None:
            self.stepper.complete(finished)

    def _flush(self) -> None:
        """Run and answer everything taken from the batcher."""
        while self._in_flight is not None or self._prepared is not None:
            if self._in_flight is None:
                self._launch()
            self._advance()

    def _wake(self) -> None:
        # Runs on the compute thread (the only user of this end once a call is started) or, for a call that was
        # already done, here; either way one byte that the loop's poll sees.
        with contextlib.suppress(zmq.Again):
            self._wake_tx.send(b"", zmq.NOBLOCK)

    def _poll_timeout_ms(self, now_s: float) -> int:
        oldest_s = self.batcher.oldest_received_s()
        if oldest_s is None:
            return IDLE_POLL_MS
        wait_s = oldest_s + self.config.batch.max_delay_ms / 1000 - now_s
        return max(0, min(IDLE_POLL_MS, int(wait_s * 1000) + 1))

    def _batch_due(self, now_s: float) -> bool:
        oldest_s = self.batcher.oldest_received_s()
        if oldest_s is None:
            return False
        full = self.batcher.streams_ready() >= self.config.batch.max_batch
        return full or now_s - oldest_s >= self.config.batch.max_delay_ms / 1000

    def _send_status(self, stream_id: str | None, code: str, message: str, **extra: Any) -> None:
        self.stepper.send_status(stream_id, code, message, **extra)

    # -- housekeeping ----------------------------------------------------------------------------------------

    def _housekeeping(self, now_s: float) -> None:
        if self._reload_requested:
            self._reload_requested = False
            self.reload()
        evicted = self.batcher.evict_idle(self.config.streams.idle_timeout_s, now_s)
        for stream_id in evicted:
            self.stepper.forget(stream_id)
            self._overload_reported.pop(stream_id, None)
            self._send_status(
                stream_id,
                "evicted",
                f"no message for {self.config.streams.idle_timeout_s:g} s "
                "(streams.idle_timeout_s): state freed; the next message starts afresh",
            )
        self.metrics.evictions.inc(len(evicted))
        self._report_lag(now_s)
        self.metrics.active_streams.set(len(self.batcher))
        self.metrics.queued_chunks.set(self.batcher.queued)
        self.metrics.queued_bytes.set(self.batcher.queued_bytes)
        self.metrics.max_queue_depth.set(self.batcher.max_depth())
        self._rates.steps += self.stepper.steps
        self.stepper.steps = 0
        self._account_busy()
        self.keeper.snapshot_if_due(self.config.persistence, now_s)
        if self._rates.due(now_s):
            self.notifier.status(self._status_line())

    def _account_busy(self) -> None:
        """The loop thread's CPU and the model calls' time since the last housekeeping, into metrics and STATUS."""
        loop_cpu_s, model_s = time.thread_time(), self.pipeline.engine.busy_s
        loop_delta_s, model_delta_s = loop_cpu_s - self._loop_cpu_s, max(0.0, model_s - self._model_busy_s)
        self._loop_cpu_s, self._model_busy_s = loop_cpu_s, model_s
        self.metrics.loop_cpu.inc(loop_delta_s)
        self.metrics.model_busy.inc(model_delta_s)
        self._rates.loop_cpu_s += loop_delta_s
        self._rates.model_busy_s += model_delta_s

    def _report_lag(self, now_s: float) -> None:
        oldest_s = self.batcher.oldest_received_s()
        lag_s = 0.0 if oldest_s is None else now_s - oldest_s
        self.metrics.lag.set(lag_s)
        if lag_s * 1000 < self.config.overload.max_lag_ms:
            return
        interval_s = self.config.overload.report_interval_s
        for stream_id, waited_s in self.batcher.lagging(now_s, self.config.overload.max_lag_ms / 1000):
            if now_s - self._overload_reported.get(stream_id, float("-inf")) >= interval_s:
                self._overload_reported[stream_id] = now_s
                self._send_status(
                    stream_id,
                    "overload",
                    f"behind real time: a chunk has waited {waited_s:.2f} s "
                    f"(overload.max_lag_ms {self.config.overload.max_lag_ms:g})",
                )

    def _status_line(self) -> str:
        return (
            f"{len(self.batcher)} streams, {self._rates.messages_per_s:.0f} msg/s, "
            f"{self._rates.steps_per_s:.0f} steps/s, {self.batcher.queued} queued, "
            f"loop {self._rates.loop_busy:.0%} CPU, model {self._rates.model_busy:.0%} busy"
        )

    def reload(self) -> None:
        """SIGHUP: re-read file and environment; apply the reloadable sections, keep the rest."""
        try:
            fresh = load_config(self._config_path, self._overrides)
        except ConfigError as exc:
            log.error("reload refused, configuration unchanged: %s", exc)
            return
        for name in type(fresh).model_fields:
            if name not in RELOADABLE and getattr(fresh, name) != getattr(self.config, name):
                log.warning("reload: %s changed but needs a restart; keeping the running value", name)
        values = {
            name: getattr(fresh if name in RELOADABLE else self.config, name) for name in type(fresh).model_fields
        }
        config = DaemonConfig.model_construct(**values)
        try:
            detector = build_detector(self.pipeline, config)
        except StreamerError as exc:
            log.error("reload refused, detection unchanged: %s", exc)
            return
        self.config = config
        self.stepper.detector = detector
        self.batcher.policy = self._batcher_policy(config)
        self._reload_keys()
        logging.getLogger("streamer").setLevel(config.log_level)
        log.info("configuration reloaded (%s)", ", ".join(RELOADABLE))

    def _reload_keys(self) -> None:
        """Re-read the allowed client keys. Subscribers whose key was removed are cut off by rebinding the PUB
        socket (the others reconnect by themselves); producers' messages are checked one by one in `_read`."""
        if self.allow_list is None:
            return
        removed = self.allow_list.reload()
        log.info("client keys reloaded: %d allowed, %d removed", len(self.allow_list.allowed), len(removed))
        if removed and self.publisher is not None:
            endpoint = self.publisher.endpoint
            self.publisher.close(linger_ms=0)
            self.publisher = self.stepper.publisher = None
            # ZeroMQ closes the old listener in its I/O thread: the port is free a moment later, not at once.
            deadline_s = time.monotonic() + REBIND_TIMEOUT_S
            while True:
                try:
                    self._bind_publisher(endpoint)
                    return
                except ConfigError:
                    if time.monotonic() > deadline_s:
                        raise
                    time.sleep(0.01)

    # -- shutdown --------------------------------------------------------------------------------------------

    def _drain(self) -> None:
        """Answer every accepted message: step what the timeout allows, `shutdown` status for the rest."""
        self.notifier.stopping(f"draining {self.batcher.queued} chunks")
        deadline_s = time.monotonic() + self.config.drain_timeout_s
        log.info(
            "stopping: draining %d queued chunks (drain_timeout_s %g)", self.batcher.queued, self.config.drain_timeout_s
        )
        while self.batcher.queued and time.monotonic() < deadline_s and self._stop_requests < 2:
            self.stepper.step(self.batcher.take(self.config.batch.max_batch))
            self.notifier.watchdog()
        leftover = self.batcher.drain_all()
        for item in leftover:
            if item.message.kind == "data":
                self._send_status(
                    item.stream_id, "shutdown", "daemon stopped before this chunk was stepped", seq=item.message.seq
                )
        for stream_id, last_seq in self.batcher.last_seqs().items():
            self._send_status(stream_id, "shutdown", "daemon stopping: stream closed", last_seq=last_seq)
        log.info("drained: %d chunk(s) unprocessed at the deadline, exit", len(leftover))
        self.keeper.snapshot(self.config.persistence)


def serve(config: DaemonConfig, config_path: Path | None = None, overrides: dict[str, Any] | None = None) -> int:
    """Load, bind, serve, drain: what `streamer serve` runs. ModelError/ConfigError propagate to the CLI."""
    daemon = Daemon(config, config_path, overrides)
    try:
        daemon.bind()
        if config.mic.enabled:
            daemon.add_microphone()
    except BaseException:
        daemon.close()
        raise
    return daemon.run()
