"""The network and what it carries into serving: `SensorGRU`, the per-step classifier that is trained;
`SmoothedOutput`, its served form when the recipe averages class probabilities over recent steps (the window
carried as a second state tensor); and the training set's channel statistics, which become the sensor
frontend's metadata so that serving normalises as training did.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
from torch import nn

from streamer.train.datasets import SensorDataset


class SensorGRU(nn.Module):
    """Per-step classifier: Linear+ReLU input projection, a GRU carrying state, a Linear read-out of logits."""

    def __init__(self, features: int, classes: int, hidden: int, layers: int) -> None:
        super().__init__()
        self.project = nn.Linear(features, hidden)
        self.gru = nn.GRU(hidden, hidden, num_layers=layers, batch_first=True)
        self.readout = nn.Linear(hidden, classes)

    def forward(self, x: torch.Tensor, h0: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        y, hn = self.gru(torch.relu(self.project(x)), h0)
        return self.readout(y), hn


class SmoothedOutput(nn.Module):
    """The served form of a SensorGRU: per-step class probabilities averaged over the last `steps` steps (causal).

    The recent probabilities are a second state tensor `[steps - 1, batch, classes]`, zeros at a stream's start;
    dividing by the window's total makes the first steps the mean of the steps seen so far."""

    def __init__(self, inner: SensorGRU, steps: int) -> None:
        super().__init__()
        self.inner = inner
        self.steps = steps
        self.classes = inner.readout.out_features
        self.register_buffer("kernel", torch.ones(self.classes, 1, steps))

    def forward(
        self, x: torch.Tensor, h0: torch.Tensor, recent0: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        logits, hn = self.inner(x, h0)
        window = torch.cat([recent0.transpose(0, 1), torch.softmax(logits, dim=-1)], dim=1)  # [B, steps-1+T, C]
        kernel = torch.as_tensor(self.kernel)
        summed = nn.functional.conv1d(window.transpose(1, 2), kernel, groups=self.classes).transpose(1, 2)
        smoothed = summed / summed.sum(dim=-1, keepdim=True)
        return smoothed, hn, window[:, -(self.steps - 1) :].transpose(0, 1)


def channel_stats(dataset: SensorDataset) -> tuple[np.ndarray, np.ndarray]:
    """Per-channel mean and standard deviation over every training frame (float64)."""
    frames = np.concatenate([r.samples for r in dataset.recordings]).astype(np.float64)
    return frames.mean(axis=0), frames.std(axis=0)


def frontend_params(dataset: SensorDataset, mean: np.ndarray, std: np.ndarray) -> dict[str, Any]:
    """The `streamer.frontend` metadata that reproduces training's normalisation when serving."""
    return {
        "kind": "sensor",
        "sample_rate_hz": dataset.sample_rate_hz,
        "channels": len(dataset.channel_names),
        "channel_order": list(dataset.channel_names),
        "mean": [float(v) for v in mean],
        "std": [float(v) for v in std],
        "max_fill_s": 0.5,
    }
