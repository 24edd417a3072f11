"""The baseline daemon, written the way a user would: one thread, one model call per message.

Per message: decode the header, compute log-mel features for that one stream (streamer's own numpy log-mel, so
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

from streamer.frontend.logmel import LogMelFrontend


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", required=True)
    parser.add_argument("--ingest", default="tcp://127.0.0.1:5555")
    parser.add_argument("--publish", default="tcp://127.0.0.1:5556")
    args = parser.parse_args()

    options = ort.SessionOptions()
    options.intra_op_num_threads = 1
    options.inter_op_num_threads = 1
    session = ort.InferenceSession(args.model, options, providers=["CPUExecutionProvider"])
    meta = session.get_modelmeta().custom_metadata_map
    labels = json.loads(meta["streamer.labels"])
    frontend_params = {k: v for k, v in json.loads(meta["streamer.frontend"]).items() if k != "kind"}
    state_pairs = json.loads(meta["streamer.state"])
    inputs = {i.name: i for i in session.get_inputs()}
    data_name = next(name for name in inputs if name not in state_pairs)
    feature_dim = inputs[data_name].shape[2]
    output_names = [session.get_outputs()[0].name, *state_pairs.values()]

    context = zmq.Context()
    pull = context.socket(zmq.PULL)
    pull.bind(args.ingest)
    pub = context.socket(zmq.PUB)
    pub.setsockopt(zmq.SNDHWM, 100_000)
    pub.bind(args.publish)

    states: dict[str, list[np.ndarray]] = {}
    steps_done: dict[str, int] = {}
    frontends: dict[str, LogMelFrontend] = {}
    running = True

    def stop(signum: int, frame: object) -> None:
        nonlocal running
        running = False

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    while running:
        if not pull.poll(100):
            continue
        frames = pull.recv_multipart()
        received_s = time.monotonic()
        stream_id = frames[0].decode()
        header = json.loads(frames[1])
        if header["kind"] != "data":
            states.pop(stream_id, None)
            frontends.pop(stream_id, None)
            steps_done.pop(stream_id, None)
            continue
        samples = np.frombuffer(frames[2], dtype=header["dtype"]).reshape(-1, header["channels"])
        frontend = frontends.get(stream_id)
        if frontend is None:
            frontend = frontends[stream_id] = LogMelFrontend(frontend_params, feature_dim)
        features = frontend.push({stream_id: (samples, header["rate_hz"])})[stream_id]
        if len(features) == 0:  # shorter than one hop: nothing to step yet
            reply0 = {
                "v": 1,
                "stream": stream_id,
                "seq": header["seq"],
                "step0": steps_done.get(stream_id, 0),
                "steps": 0,
                "labels": labels,
                "latency_ms": (time.monotonic() - received_s) * 1000,
            }
            pub.send_multipart([f"pred/{stream_id}/".encode(), json.dumps(reply0).encode(), b""])
            continue
        state = states.get(stream_id)
        if state is None:
            state = [
                np.zeros([d if isinstance(d, int) else 1 for d in inputs[name].shape], np.float32)
                for name in state_pairs
            ]
        y, *new_state = session.run(
            output_names, {data_name: features[None], **dict(zip(state_pairs, state, strict=True))}
        )
        states[stream_id] = new_state
        step0 = steps_done.get(stream_id, 0)
        steps_done[stream_id] = step0 + len(features)
        reply = {
            "v": 1,
            "stream": stream_id,
            "seq": header["seq"],
            "step0": step0,
            "steps": len(features),
            "labels": labels,
            "latency_ms": (time.monotonic() - received_s) * 1000,
        }
        if "t_ns" in header:
            reply["t_ns"] = header["t_ns"]
        pub.send_multipart([f"pred/{stream_id}/".encode(), json.dumps(reply).encode(), y[0].tobytes()])
    pull.close(0)
    pub.close(0)
    context.term()


if __name__ == "__main__":
    main()
