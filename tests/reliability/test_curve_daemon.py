"""CURVE through a real daemon: unknown producers get nothing processed, unknown subscribers receive nothing,
and a key removed from the allowed directory stops working after SIGHUP."""

from __future__ import annotations

import contextlib
import shutil
import signal
import time
from pathlib import Path

import zmq
from daemon_helpers import speechlike

from streamer.client import Subscriber, wait_until_serving
from streamer.daemon import auth
from streamer.daemon.auth import ClientKeys
from streamer.daemon.protocol import OutputMessage, encode_ingest

STREAMS = ["a", "b", "m", "anon"]


def keys_for(folder: Path, name: str) -> ClientKeys:
    return ClientKeys(folder / f"{name}.key_secret", folder / "server.key")


def drain(sub: Subscriber, seconds: float) -> list[OutputMessage]:
    got, deadline = [], time.monotonic() + seconds
    while time.monotonic() < deadline:
        message = sub.recv(timeout_ms=50)
        if message is not None:
            got.append(message)
    return got


def test_curve_admits_only_allowed_keys_and_reload_revokes(
    daemon_factory, audio_model_path: Path, tmp_path: Path
) -> None:
    folder, allowed = tmp_path / "keys", tmp_path / "allowed"
    for name in ("server", "alice", "bob", "mallory"):
        auth.generate_keypair(folder, name)
    allowed.mkdir()
    for name in ("alice", "bob"):
        shutil.copy(folder / f"{name}.key", allowed / f"{name}.key")
    security = {
        "curve": True,
        "server_secret_key": str(folder / "server.key_secret"),
        "allowed_clients_dir": str(allowed),
    }
    daemon = daemon_factory(audio_model_path, {"security": security}, wait=False)
    alice, bob, mallory = (keys_for(folder, n) for n in ("alice", "bob", "mallory"))
    wait_until_serving(daemon.ingest, daemon.publish, timeout_s=60, curve=alice)

    context: zmq.Context[zmq.Socket[bytes]] = zmq.Context()
    sockets: list[zmq.Socket[bytes]] = []

    def producer(keys: ClientKeys | None) -> zmq.Socket[bytes]:
        push = context.socket(zmq.PUSH)
        push.linger = 0
        if keys is not None:
            keys.apply(push)
        push.connect(daemon.ingest)
        sockets.append(push)
        return push

    def send(push: zmq.Socket[bytes], stream_id: str, seq: int) -> None:
        chunk = speechlike(0.1, seed=seq)[:, 0]
        # An unauthenticated PUSH never gets a peer: never block on it (what it fails to send, nobody reads anyway;
        # an allowed producer's lost chunk would show in the assertions on answers).
        if push.poll(500, zmq.POLLOUT):
            with contextlib.suppress(zmq.Again):
                push.send_multipart(encode_ingest(stream_id, seq, "data", chunk, 16000), zmq.NOBLOCK)

    try:
        with (
            Subscriber(daemon.publish, STREAMS, context=context, curve=alice) as watcher,
            Subscriber(daemon.publish, STREAMS, context=context, curve=bob) as bob_sub,
            Subscriber(daemon.publish, STREAMS, context=context, curve=mallory) as mallory_sub,
            Subscriber(daemon.publish, STREAMS, context=context) as keyless_sub,
        ):
            time.sleep(0.5)  # the subscribers' handshakes
            p_alice, p_bob, p_mallory, p_keyless = producer(alice), producer(bob), producer(mallory), producer(None)
            for seq in range(3):
                for push, stream_id in ((p_alice, "a"), (p_bob, "b"), (p_mallory, "m"), (p_keyless, "anon")):
                    send(push, stream_id, seq)
            seen = drain(watcher, 2.0)
            preds = {m.stream_id for m in seen if m.kind == "pred"}
            assert preds == {"a", "b"}  # nothing from mallory or the keyless producer was processed
            assert {m.stream_id for m in drain(bob_sub, 0.5) if m.kind == "pred"} == {"a", "b"}  # bob may read
            assert drain(mallory_sub, 0.5) == [] and drain(keyless_sub, 0.5) == []

            (allowed / "bob.key").unlink()
            daemon.process.send_signal(signal.SIGHUP)
            deadline = time.monotonic() + 30
            while "client keys reloaded" not in daemon.log and time.monotonic() < deadline:
                time.sleep(0.1)
            drain(bob_sub, 1.0)  # whatever bob received before the revocation
            seq, back = 3, False
            while not back and time.monotonic() < deadline:  # allowed subscribers reconnect to the rebound PUB
                send(p_alice, "a", seq)
                seq += 1
                back = any(m.kind == "pred" and m.stream_id == "a" for m in drain(watcher, 0.5))
            assert back, "alice's subscriber never got answers again after the reload"
            for _ in range(3):
                send(p_bob, "b", seq)
                send(p_alice, "a", seq)
                seq += 1
            after = drain(watcher, 2.5)
            assert {m.stream_id for m in after if m.kind == "pred"} == {"a"}  # bob's chunks are dropped now
            assert drain(bob_sub, 1.0) == []  # and bob reads nothing any more
        assert "client keys reloaded: 1 allowed, 1 removed" in daemon.log
        assert "no longer in security.allowed_clients_dir" in daemon.log
    finally:
        for sock in sockets:
            sock.close(0)
        context.term()
    assert daemon.stop() == 0


def test_plain_daemon_warns_when_bound_beyond_loopback(daemon_factory, audio_model_path: Path) -> None:
    from daemon_helpers import free_port

    port = free_port()
    daemon = daemon_factory(audio_model_path, {"ingest": {"endpoint": f"tcp://0.0.0.0:{port}"}}, wait=False)
    deadline = time.monotonic() + 60
    while "is not loopback and security.curve is off" not in daemon.log and time.monotonic() < deadline:
        time.sleep(0.2)
    assert "ingest.endpoint tcp://0.0.0.0" in daemon.log
    daemon.kill()
