"""Sensor classifier training: a stateful GRU that emits a class at every step, exported with its sensor frontend.

Training sequences are chains of random crops of training recordings (often of different classes) with per-step
labels, so the model learns to classify from a cold start AND to switch class without a reset, as a live stream
needs. Reproducible from `seed` on CPU with one thread. The exported ONNX is evaluated through the sensor frontend
and the Engine, the path a user gets. Importing the package imports torch (the daemon never does).

Modules, in the order `streamer train-sensor` uses them:

- `config`: the training recipe (`SensorTrainConfig`, `recipe`) and each data set's train/test split.
- `model`: the per-step GRU, its output-smoothing served form, and the frontend's normalisation statistics.
- `fit`: training chains, deterministic CPU training, and ONNX export with the frontend in the metadata.
- `evaluate`: held-out figures of the exported model as served, the accuracy plot, `Pipeline` vs torch.
- `card`: the `sample.npy` for demos and the generated model card.
- `run`: `train_and_export`, the whole command end to end.
"""

from __future__ import annotations

from streamer.train.sensor.config import RECIPES, SensorTrainConfig, Split, load_split, recipe
from streamer.train.sensor.fit import TrainResult, export, train
from streamer.train.sensor.run import train_and_export

__all__ = [
    "RECIPES",
    "SensorTrainConfig",
    "Split",
    "TrainResult",
    "export",
    "load_split",
    "recipe",
    "train",
    "train_and_export",
]
