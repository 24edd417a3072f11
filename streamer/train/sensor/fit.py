"""Training and export. `sample_chains` builds batches of random crops of training recordings chained back to
back, with per-step labels and a loss weight that ramps up after each change of class, so the model learns both
a cold start and a switch without a reset; `train` fits a `SensorGRU` on CPU with one thread, deterministically
from the seed; `export` writes the ONNX with the contract exporter, the labels, the sensor frontend and the
recipe in its metadata.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from streamer.train.sensor.config import SensorTrainConfig, Split, load_split
from streamer.train.sensor.model import SensorGRU, SmoothedOutput, channel_stats, frontend_params


def sample_chains(
    recordings: list[np.ndarray], labels: np.ndarray, config: SensorTrainConfig, rng: np.random.Generator
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """A batch of chains: normalised inputs [B, T, F], per-step labels [B, T], per-step loss weights [B, T]."""
    steps, features = config.chain_steps, recordings[0].shape[1]
    x = np.zeros((config.batch, steps, features), dtype=np.float32)
    y = np.zeros((config.batch, steps), dtype=np.int64)
    weight = np.zeros((config.batch, steps), dtype=np.float32)
    for row in range(config.batch):
        t = 0
        while t < steps:
            pick = int(rng.integers(len(recordings)))
            source = recordings[pick]
            length = min(
                int(rng.integers(config.crop_min_steps, max(config.crop_min_steps, len(source)) + 1)),
                len(source),
                steps - t,
            )
            start = int(rng.integers(0, len(source) - length + 1))
            gain = rng.uniform(1 - config.scale_jitter, 1 + config.scale_jitter, size=features)
            x[row, t : t + length] = source[start : start + length] * gain
            changed = t == 0 or y[row, t - 1] != labels[pick]
            y[row, t : t + length] = labels[pick]
            if changed:
                weight[row, t : t + length] = np.minimum(1.0, np.arange(1, length + 1) / config.ramp_steps)
            else:
                weight[row, t : t + length] = 1.0
            t += length
    x += rng.normal(0, config.noise_std, size=x.shape).astype(np.float32)
    return x, y, weight


@dataclass
class TrainResult:
    """A trained module and what it needs for export."""

    module: SensorGRU
    config: SensorTrainConfig
    split: Split
    mean: np.ndarray
    std: np.ndarray
    seconds: float
    losses: list[float] = field(default_factory=list)


def train(config: SensorTrainConfig, split: Split | None = None, log: Callable[[str], None] = print) -> TrainResult:
    """Train on CPU with one thread, deterministically from `config.seed` (on `split`, default the recipe's)."""
    torch.set_num_threads(1)
    torch.manual_seed(config.seed)
    rng = np.random.default_rng(config.seed)
    split = split or load_split(config)
    mean, std = channel_stats(split.train)
    recordings = [((r.samples - mean) / std).astype(np.float32) for r in split.train.recordings]
    labels = np.array([r.label for r in split.train.recordings])
    module = SensorGRU(len(mean), len(split.train.labels), config.hidden, config.layers)
    optimiser = torch.optim.Adam(module.parameters(), lr=config.learning_rate)
    schedule = torch.optim.lr_scheduler.CosineAnnealingLR(optimiser, T_max=max(1, config.iterations))
    h0 = torch.zeros(config.layers, config.batch, config.hidden)
    started = time.monotonic()
    result = TrainResult(module, config, split, mean, std, 0.0)
    for iteration in range(1, config.iterations + 1):
        x, y, weight = (torch.from_numpy(a) for a in sample_chains(recordings, labels, config, rng))
        logits, _ = module(x, h0)
        per_step = nn.functional.cross_entropy(logits.transpose(1, 2), y, reduction="none")
        loss = (per_step * weight).sum() / weight.sum()
        optimiser.zero_grad()
        loss.backward()
        nn.utils.clip_grad_norm_(module.parameters(), 1.0)
        optimiser.step()
        schedule.step()
        result.losses.append(loss.item())
        if iteration % 50 == 0 or iteration == config.iterations:
            log(f"iteration {iteration}/{config.iterations}: loss {np.mean(result.losses[-50:]):.4f}")
    result.seconds = time.monotonic() - started
    result.module.eval()
    return result


def export(result: TrainResult, path: Path, *, smoothing: bool = True) -> dict[str, Any]:
    """Export with the contract exporter: labels, the sensor frontend and the training recipe as metadata; with the
    recipe's output smoothing (probabilities) unless `smoothing` is False (raw logits)."""
    from streamer.model.export import export_module

    config = result.config
    params = frontend_params(result.split.train, result.mean, result.std)
    module: nn.Module = result.module
    state_shapes = None
    if smoothing and config.smoothing_steps > 1:
        module = SmoothedOutput(result.module, config.smoothing_steps).eval()
        classes = len(result.split.train.labels)
        state_shapes = [(config.layers, config.hidden), (config.smoothing_steps - 1, classes)]
    report = export_module(
        module,
        path,
        features=len(result.mean),
        state_shapes=state_shapes,
        labels=result.split.train.labels,
        scores="probabilities" if state_shapes else "logits",
        frontend=params,
        extra_metadata={"streamer.train": json.dumps(asdict(config))},
    )
    return {"path": str(path), "max_abs_error_vs_torch": report.max_abs_error, "frontend": params}
