"""Keyword training speed by device: the recipe's own `fit` on the CPU and on a CUDA GPU, same data, same seed.

Synthetic feature streams stand in for rendered audio (the TTS engines are not installed on GPU machines); the
cost of an optimiser step does not depend on what the features say. Checks made on the way, each printed:
the first step's loss agrees between devices (same initial weights, same batch), the network comes back on the
CPU after GPU training, and a GPU-trained network exports with its ONNX output matching torch.

    python benchmarks/fit_device.py --hidden 96 256 --json fit_device.json
"""

from __future__ import annotations

import argparse
import copy
import dataclasses
import json
import os
import platform
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch

from streamer.model.export import export_module
from streamer.train.keyword.dataset import FeatureStream
from streamer.train.keyword.fit import FitConfig, fit, normalisation
from streamer.train.keyword.model import KeywordNet, ProbabilityOutput

N_MELS = 40
CLASSES = 5  # background + 4 keywords, like the shipped model
FRAMES_PER_S = 100


def synthetic_streams(hours: float, stream_s: float, seed: int) -> list[FeatureStream]:
    """Streams of random features with a keyword span (label 1..4, ~60 frames) every ~10 s."""
    rng = np.random.default_rng(seed)
    frames = int(stream_s * FRAMES_PER_S)
    streams = []
    for _ in range(max(1, round(hours * 3600 / stream_s))):
        features = rng.normal(-6.0, 2.0, (frames, N_MELS)).astype(np.float16)
        targets = np.zeros(frames, np.int8)
        for start in range(0, frames - 100, 1000):
            offset = start + int(rng.integers(0, 900))
            targets[offset : offset + 60] = int(rng.integers(1, CLASSES))
        streams.append(FeatureStream(features, targets, []))
    return streams


def new_net(hidden: int, streams: list[FeatureStream]) -> KeywordNet:
    torch.manual_seed(0)
    net = KeywordNet(N_MELS, CLASSES, hidden, 2)
    net.set_normalisation(*normalisation(streams))
    return net


def timed_fit(net: KeywordNet, streams: list[FeatureStream], config: FitConfig) -> tuple[float, list[float]]:
    """Seconds per optimiser step over `config.steps` (after 12 untimed warm-up steps on the same device)."""
    fit(copy.deepcopy(net), streams, dataclasses.replace(config, steps=12))
    if config.device.startswith("cuda"):
        torch.cuda.synchronize()
    started = time.perf_counter()
    losses = fit(net, streams, config)
    if config.device.startswith("cuda"):
        torch.cuda.synchronize()
    return (time.perf_counter() - started) / config.steps, losses


def run(args: argparse.Namespace) -> dict[str, Any]:
    streams = synthetic_streams(args.hours, 60.0, seed=1)
    has_cuda = torch.cuda.is_available()
    report: dict[str, Any] = {
        "command": "python benchmarks/fit_device.py " + " ".join(sys.argv[1:]),
        "machine": {
            "cpu": platform.processor() or platform.machine(),
            "cpu_count": os.cpu_count(),
            "gpu": torch.cuda.get_device_name(0) if has_cuda else None,
            "torch": torch.__version__,
        },
        "hours_of_features": args.hours,
        "lanes_x_segment": [FitConfig().lanes, FitConfig().segment_steps],
        "results": [],
    }
    for hidden in args.hidden:
        row: dict[str, Any] = {"hidden": hidden}
        for threads in args.cpu_threads:
            torch.set_num_threads(threads)
            config = FitConfig(steps=args.cpu_steps, seed=0, device="cpu")
            seconds, _ = timed_fit(new_net(hidden, streams), streams, config)
            row[f"cpu_{threads}_threads_s_per_step"] = round(seconds, 4)
        if has_cuda:
            torch.set_num_threads(1)
            first_cpu = fit(new_net(hidden, streams), streams, FitConfig(steps=12, seed=0))[0]
            first_gpu = fit(new_net(hidden, streams), streams, FitConfig(steps=12, seed=0, device="cuda"))[0]
            net = new_net(hidden, streams)
            seconds, losses = timed_fit(net, streams, FitConfig(steps=args.gpu_steps, seed=0, device="cuda"))
            on_cpu = all(p.device.type == "cpu" for p in net.parameters())
            with tempfile.TemporaryDirectory() as tmp:
                export = export_module(ProbabilityOutput(net), Path(tmp) / "m.onnx", features=N_MELS)
            baseline = row[f"cpu_{args.cpu_threads[0]}_threads_s_per_step"]
            row.update(
                gpu_s_per_step=round(seconds, 5),
                gpu_speedup_vs_cpu_1_thread=round(baseline / seconds, 1),
                recipe_5000_steps_min={"cpu": round(5000 * baseline / 60, 1), "gpu": round(5000 * seconds / 60, 2)},
                first_loss_cpu_gpu=[round(first_cpu, 6), round(first_gpu, 6)],
                first_loss_abs_diff=abs(first_cpu - first_gpu),
                gpu_loss_first_last=[round(float(np.mean(losses[:10])), 4), round(float(np.mean(losses[-10:])), 4)],
                net_back_on_cpu=on_cpu,
                export_max_abs_error=export.max_abs_error,
            )
        report["results"].append(row)
        print(json.dumps(row), flush=True)
    return report


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--hidden", type=int, nargs="+", default=[96])
    parser.add_argument("--hours", type=float, default=2.0, help="hours of synthetic feature streams")
    parser.add_argument("--cpu-steps", type=int, default=10)
    parser.add_argument("--cpu-threads", type=int, nargs="+", default=[1])
    parser.add_argument("--gpu-steps", type=int, default=300)
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()
    report = run(args)
    if args.json:
        args.json.write_text(json.dumps(report, indent=2) + "\n")


if __name__ == "__main__":
    main()
