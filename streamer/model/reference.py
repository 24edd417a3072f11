"""A reference PyTorch module in the exporter's calling convention: RNN (GRU or LSTM) + linear head per step.

Used by tests, benchmarks and training recipes; also a template for users: `forward(x, *states) -> (y, *states)`.
"""

from __future__ import annotations

import torch
from torch import nn


class RecurrentClassifier(nn.Module):
    """x [batch, time, features] → per-step class scores [batch, time, classes], states carried in and out."""

    def __init__(self, cell: str, features: int, hidden: int, layers: int, classes: int) -> None:
        super().__init__()
        if cell not in ("gru", "lstm"):
            raise ValueError(f"cell is {cell!r}, expected 'gru' or 'lstm'")
        rnn_class = nn.GRU if cell == "gru" else nn.LSTM
        self.rnn = rnn_class(features, hidden, layers, batch_first=True)
        self.head = nn.Linear(hidden, classes)

    def forward(self, x: torch.Tensor, *states: torch.Tensor) -> tuple[torch.Tensor, ...]:
        if isinstance(self.rnn, nn.LSTM):
            y, (h, c) = self.rnn(x, (states[0], states[1]))
            return self.head(y), h, c
        y, h = self.rnn(x, states[0])
        return self.head(y), h
