"""The baseline daemon, written the way a user would: one thread, one model call per message.

Per message: decode the header, compute the model's frontend features for that one stream (streamer's own frontend, so
features are identical), one onnxruntime call with that stream's state, one `pred` publish (wire protocol v1).
No batching across streams, no queues. `streamer bench daemon` runs it against the same load as the real daemon.

    python benchmarks/naive_daemon.py --model models/keywords/model.onnx \
        --ingest tcp://127.0.0.1:5555 --publish tcp://127.0.0.1:5556
"""

from __future__ import annotations

import argparse
import json
import signal
import time

import numpy as np
import onnxruntime as ort
import zmq

from streamer.frontend import Frontend, build_frontend


class NaiveDaemon:
    """The per-message logic, kept apart from the sockets so the benchmark can also time it in-process."""

    def __init__(self, model: str) -> None:
        options = ort.SessionOptions()
        options.intra_op_num_threads = 1
        options.inter_op_num_threads = 1
        self.session = ort.InferenceSession(model, options, providers=["CPUExecutionProvider"])
        meta = self.session.get_modelmeta().custom_metadata_map
        self.labels = json.loads(meta["streamer.labels"])
        self.frontend_spec = json.loads(meta["streamer.frontend"])  # the model's own (logmel or waveform)
        self.state_pairs = json.loads(meta["streamer.state"])
        self.inputs = {i.name: i for i in self.session.get_inputs()}
        self.data_name = next(name for name in self.inputs if name not in self.state_pairs)
        self.feature_dim = self.inputs[self.data_name].shape[2]
        self.output_names = [self.session.get_outputs()[0].name, *self.state_pairs.values()]
        self.states: dict[str, list[np.ndarray]] = {}
        self.steps_done: dict[str, int] = {}
        self.frontends: dict[str, Frontend] = {}

    def handle(self, frames: list[bytes]) -> list[bytes] | None:
        """One ingest message in, its `pred` frames out (None for reset/end)."""
        received_s = time.monotonic()
        stream_id = frames[0].decode()
        header = json.loads(frames[1])
        if header["kind"] != "data":
            self.states.pop(stream_id, None)
            self.frontends.pop(stream_id, None)
            self.steps_done.pop(stream_id, None)
            return None
        samples = np.frombuffer(frames[2], dtype=header["dtype"]).reshape(-1, header["channels"])
        frontend = self.frontends.get(stream_id)
        if frontend is None:
            frontend = self.frontends[stream_id] = build_frontend(self.frontend_spec, self.feature_dim)
        features = frontend.push({stream_id: (samples, header["rate_hz"])})[stream_id]
        step0 = self.steps_done.get(stream_id, 0)
        payload = b""
        if len(features):  # shorter than one hop: nothing to step yet
            state = self.states.get(stream_id)
            if state is None:
                state = [
                    np.zeros([d if isinstance(d, int) else 1 for d in self.inputs[name].shape], np.float32)
                    for name in self.state_pairs
                ]
            feeds = {self.data_name: features[None], **dict(zip(self.state_pairs, state, strict=True))}
            y, *new_state = self.session.run(self.output_names, feeds)
            self.states[stream_id] = new_state
            self.steps_done[stream_id] = step0 + len(features)
            payload = y[0].tobytes()
        reply = {
            "v": 1,
            "stream": stream_id,
            "seq": header["seq"],
            "step0": step0,
            "steps": len(features),
            "labels": self.labels,
            "latency_ms": (time.monotonic() - received_s) * 1000,
        }
        if "t_ns" in header:
            reply["t_ns"] = header["t_ns"]
        return [f"pred/{stream_id}/".encode(), json.dumps(reply).encode(), payload]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", required=True)
    parser.add_argument("--ingest", default="tcp://127.0.0.1:5555")
    parser.add_argument("--publish", default="tcp://127.0.0.1:5556")
    args = parser.parse_args()
    daemon = NaiveDaemon(args.model)
    context = zmq.Context()
    pull = context.socket(zmq.PULL)
    pull.bind(args.ingest)
    pub = context.socket(zmq.PUB)
    pub.setsockopt(zmq.SNDHWM, 100_000)
    pub.bind(args.publish)
    running = True

    def stop(signum: int, frame: object) -> None:
        nonlocal running
        running = False

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    while running:
        if not pull.poll(100):
            continue
        reply = daemon.handle(pull.recv_multipart())
        if reply is not None:
            pub.send_multipart(reply)
    pull.close(0)
    pub.close(0)
    context.term()


if __name__ == "__main__":
    main()
