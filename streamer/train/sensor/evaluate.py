"""Held-out evaluation of an exported model the way it is served: the ONNX runs through the model's own sensor
frontend and the batched Engine, each recording a stream from zero state, the path a user gets. Figures:
last-step, per-step, smoothed and majority-vote accuracy, accuracy against the fraction of each recording seen
(and its PNG), the confusion matrix, the no-reset concatenation test (steps until the prediction follows a
change of activity), and `pipeline_vs_torch`, the largest per-step difference between `Pipeline` fed in chunks
and the torch module.
"""

from __future__ import annotations

import itertools
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from streamer.train.datasets import SensorDataset, SensorRecording
from streamer.train.sensor.fit import TrainResult
from streamer.train.sensor.model import SmoothedOutput

FRACTIONS = tuple(round(f, 2) for f in np.linspace(0.05, 1.0, 20))


def serve_scores(model_path: Path, recordings: list[np.ndarray], rate_hz: int) -> list[np.ndarray]:
    """Per-step scores of each recording through the model's own frontend and the batched Engine, each a stream
    from zero state, all streams stepped together (as a daemon would)."""
    from streamer.engine import Engine
    from streamer.frontend.sensor import SensorFrontend
    from streamer.model.contract import ModelSpec

    spec = ModelSpec.load(model_path)
    frontend = SensorFrontend(spec.frontend or {}, spec.feature_dim)
    engine = Engine(model_path, initial_slots=len(recordings), max_streams=len(recordings))
    ids = [f"r{i}" for i in range(len(recordings))]
    features = frontend.push({i: (r, rate_hz) for i, r in zip(ids, recordings, strict=True)})
    scores = engine.step(features)
    return [scores[i] for i in ids]


def softmax(logits: np.ndarray) -> np.ndarray:
    """Class probabilities of per-step logits [steps, classes]."""
    shifted = np.exp(logits - logits.max(axis=1, keepdims=True))
    return shifted / shifted.sum(axis=1, keepdims=True)


def accuracy_curve(scores: list[np.ndarray], labels: np.ndarray) -> dict[str, float]:
    """Accuracy of the argmax after each fraction of every recording has been seen (state carried from its start)."""
    curve = {}
    for fraction in FRACTIONS:
        hits = [
            np.argmax(s[max(0, int(np.ceil(fraction * len(s))) - 1)]) == y for s, y in zip(scores, labels, strict=True)
        ]
        curve[f"{fraction:.2f}"] = float(np.mean(hits))
    return curve


def follow_steps(predicted: np.ndarray, label: int, hold_steps: int) -> int | None:
    """Steps from a segment's start until the prediction is `label` and stays so for `hold_steps` (or to the
    segment's end); None if it never does."""
    right = predicted == label
    for start in np.flatnonzero(right):
        window = right[start : start + hold_steps]
        if window.all():
            return int(start)
    return None


def concatenation_eval(
    model_path: Path, dataset: SensorDataset, hold_steps: int, seed: int, chains: int = 8
) -> dict[str, Any]:
    """Recordings of different classes back to back WITHOUT a reset: how many steps after each change of
    activity until the prediction follows. Chains are random orders of one subject's recordings (or of the
    whole test set when subjects are unknown), consecutive recordings always of different classes."""
    rng = np.random.default_rng(seed)
    groups: dict[int, list[SensorRecording]] = {}
    for r in dataset.recordings:
        groups.setdefault(r.subject, []).append(r)
    chain_parts = []
    for index in range(chains):
        pool = list(groups[sorted(groups)[index % len(groups)]])
        order: list[SensorRecording] = []
        while pool:
            choices = [i for i, r in enumerate(pool) if not order or r.label != order[-1].label] or [0]
            order.append(pool.pop(choices[int(rng.integers(len(choices)))]))
        chain_parts.append(order)
    streams = [np.concatenate([r.samples for r in parts]) for parts in chain_parts]
    scores = serve_scores(model_path, streams, dataset.sample_rate_hz)
    delays: list[int | None] = []
    for parts, chain_scores in zip(chain_parts, scores, strict=True):
        predicted = chain_scores.argmax(axis=1)
        offset = len(parts[0].samples)
        for previous, current in itertools.pairwise(parts):
            if previous.label != current.label:
                segment = predicted[offset : offset + len(current.samples)]
                delays.append(follow_steps(segment, current.label, hold_steps))
            offset += len(current.samples)
    followed = np.array([d for d in delays if d is not None], dtype=float)
    rate = dataset.sample_rate_hz
    median = round(float(np.median(followed)), 1) if len(followed) else None
    p90 = round(float(np.percentile(followed, 90)), 1) if len(followed) else None
    return {
        "changes": len(delays),
        "followed": len(followed),
        "never_followed": int(sum(d is None for d in delays)),
        "hold_steps": hold_steps,
        "median_steps": median,
        "p90_steps": p90,
        "median_s": None if median is None else round(median / rate, 2),
        "p90_s": None if p90 is None else round(p90 / rate, 2),
    }


def evaluate(model_path: Path, dataset: SensorDataset, hold_steps: int, seed: int) -> dict[str, Any]:
    """Held-out figures of an exported model: last-step and per-step accuracy, the curve, per-class recall,
    the confusion matrix at the last step, and the no-reset concatenation test."""
    recordings = [r.samples for r in dataset.recordings]
    labels = np.array([r.label for r in dataset.recordings])
    scores = serve_scores(model_path, recordings, dataset.sample_rate_hz)
    last = np.array([s[-1].argmax() for s in scores])
    confusion = np.zeros((len(dataset.labels), len(dataset.labels)), dtype=int)
    for truth, guess in zip(labels, last, strict=True):
        confusion[truth, guess] += 1
    steps_right = np.concatenate([s.argmax(axis=1) == y for s, y in zip(scores, labels, strict=True)])
    window = dataset.sample_rate_hz  # one second of steps
    smoothed = np.array([softmax(s[-window:]).mean(axis=0).argmax() for s in scores])
    majority = np.array([np.bincount(s.argmax(axis=1), minlength=len(dataset.labels)).argmax() for s in scores])
    return {
        "recordings": len(recordings),
        "accuracy_last_step": float(np.mean(last == labels)),
        "accuracy_last_step_smoothed_1s": float(np.mean(smoothed == labels)),
        "accuracy_majority_vote": float(np.mean(majority == labels)),
        "accuracy_per_step": float(steps_right.mean()),
        "accuracy_vs_fraction_seen": accuracy_curve(scores, labels),
        "labels": dataset.labels,
        "confusion_last_step": confusion.tolist(),
        "concatenated_without_reset": concatenation_eval(model_path, dataset, hold_steps, seed),
    }


def plot_curve(figures: dict[str, Any], title: str, path: Path) -> None:
    """The card's PNG: held-out accuracy against the fraction of each recording seen."""
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib import pyplot as plt

    curve = figures["accuracy_vs_fraction_seen"]
    fractions = [float(f) for f in curve]
    figure, axes = plt.subplots(figsize=(6, 3.6), dpi=100)
    axes.plot(fractions, [100 * v for v in curve.values()], marker="o")
    axes.set_xlabel("fraction of the recording seen")
    axes.set_ylabel("held-out accuracy (%)")
    axes.set_ylim(0, 101)
    axes.set_xlim(0, 1.02)
    axes.grid(alpha=0.3)
    axes.set_title(title)
    figure.tight_layout()
    figure.savefig(path)
    plt.close(figure)


def pipeline_vs_torch(result: TrainResult, model_path: Path, recordings: int = 3, chunk_frames: int = 7) -> float:
    """Largest |served − torch| per step over a few held-out recordings: raw samples in 7-frame chunks through
    `Pipeline` (frontend + Engine) against the torch module on the same recordings normalised offline."""
    from streamer.pipeline import Pipeline

    config, pipeline, worst = result.config, Pipeline(model_path), 0.0
    served_module: nn.Module = result.module
    states = [torch.zeros(config.layers, 1, config.hidden)]
    if config.smoothing_steps > 1:
        served_module = SmoothedOutput(result.module, config.smoothing_steps).eval()
        states.append(torch.zeros(config.smoothing_steps - 1, 1, len(result.split.train.labels)))
    for index, recording in enumerate(result.split.test.recordings[:recordings]):
        samples = recording.samples
        served = np.concatenate(
            [
                pipeline.push({f"r{index}": samples[start : start + chunk_frames]})[f"r{index}"]
                for start in range(0, len(samples), chunk_frames)
            ]
        )
        normalised = torch.from_numpy(((samples - result.mean) / result.std).astype(np.float32))[None]
        with torch.no_grad():
            expected = served_module(normalised, *states)[0][0].numpy()
        worst = max(worst, float(np.max(np.abs(served - expected))))
    return worst
