"""The keyword network: per-bin feature normalisation, a stacked GRU, a per-step linear head (torch)."""

from __future__ import annotations

import numpy as np
import torch
from torch import nn


class KeywordNet(nn.Module):
    """log-mel [batch, time, n_mels] → per-step class logits [batch, time, classes]; GRU state in and out.

    The feature mean/std of the training data are buffers, so the exported file normalises by itself.
    """

    feature_mean: torch.Tensor
    feature_std: torch.Tensor

    def __init__(self, n_mels: int, classes: int, hidden: int = 64, layers: int = 2, dropout: float = 0.0) -> None:
        super().__init__()
        self.register_buffer("feature_mean", torch.zeros(n_mels))
        self.register_buffer("feature_std", torch.ones(n_mels))
        # Dropout (training only) on each GRU layer's output: between the layers and before the head.
        self.rnn = nn.GRU(n_mels, hidden, layers, batch_first=True, dropout=dropout if layers > 1 else 0.0)
        self.drop = nn.Dropout(dropout)
        self.head = nn.Linear(hidden, classes)

    def set_normalisation(self, mean: np.ndarray, std: np.ndarray) -> None:
        self.feature_mean.copy_(torch.as_tensor(mean, dtype=torch.float32))
        self.feature_std.copy_(torch.as_tensor(np.maximum(std, 1e-3), dtype=torch.float32))

    def forward(self, x: torch.Tensor, h: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        y, h = self.rnn((x - self.feature_mean) / self.feature_std, h)
        return self.head(self.drop(y)), h

    def zero_state(self, batch: int) -> torch.Tensor:
        return torch.zeros(self.rnn.num_layers, batch, self.rnn.hidden_size)


class ProbabilityOutput(nn.Module):
    """What is exported: the same network with a softmax, so scores are probabilities (sum to 1 per step)."""

    def __init__(self, net: KeywordNet) -> None:
        super().__init__()
        self.net = net

    def forward(self, x: torch.Tensor, h: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        logits, h = self.net(x, h)
        return torch.softmax(logits, dim=-1), h
