"""`streamer train-sensor` end to end: train, export `model.onnx`, evaluate it as served (and, when the recipe
smooths its output, a raw-logits export of the same network too), check `Pipeline` against torch, then write
`metrics.json`, the accuracy PNG, the sample and the model card.
"""

from __future__ import annotations

import json
import tempfile
from collections.abc import Callable
from dataclasses import asdict
from pathlib import Path
from typing import Any

from streamer.train.sensor.card import model_card, write_sample
from streamer.train.sensor.config import SensorTrainConfig
from streamer.train.sensor.evaluate import evaluate, pipeline_vs_torch, plot_curve
from streamer.train.sensor.fit import export, train


def train_and_export(config: SensorTrainConfig, out_dir: Path, log: Callable[[str], None] = print) -> dict[str, Any]:
    """Train, export `model.onnx`, evaluate it as served, write `metrics.json`, the PNG and `README.md`."""
    out_dir.mkdir(parents=True, exist_ok=True)
    result = train(config, log=log)
    log(f"trained in {result.seconds:.0f} s; exporting")
    model_path = out_dir / "model.onnx"
    exported = export(result, model_path)
    figures = evaluate(model_path, result.split.test, config.hold_steps, config.seed)
    served_error = pipeline_vs_torch(result, model_path)
    raw_figures = None
    if config.smoothing_steps > 1:
        with tempfile.TemporaryDirectory() as folder:
            raw_path = Path(folder) / "raw.onnx"
            export(result, raw_path, smoothing=False)
            raw = evaluate(raw_path, result.split.test, config.hold_steps, config.seed)
        raw_figures = {
            key: raw[key] for key in ("accuracy_last_step", "accuracy_per_step", "concatenated_without_reset")
        }
    metrics = {
        "dataset": config.dataset,
        "split": result.split.description,
        "train_seconds": round(result.seconds, 1),
        "max_abs_error_onnx_vs_torch": exported["max_abs_error_vs_torch"],
        "max_abs_error_pipeline_vs_torch_held_out": served_error,
        "config": asdict(config),
        "test": figures,
        "test_without_output_smoothing": raw_figures,
    }
    (out_dir / "metrics.json").write_text(json.dumps(metrics, indent=2) + "\n")
    plot_curve(figures, f"{config.dataset}: held-out accuracy vs fraction seen", out_dir / "accuracy_vs_seen.png")
    write_sample(result.split.test, out_dir, classes=3 if config.dataset == "watch" else 4)
    (out_dir / "README.md").write_text(model_card(metrics))
    log(
        f"held out: last step {figures['accuracy_last_step']:.3f}, per step {figures['accuracy_per_step']:.3f}; "
        f"wrote {out_dir}"
    )
    return metrics
