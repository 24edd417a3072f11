"""What is written next to a shipped model for people: `sample.npy`, held-out recordings of different classes back
to back with a JSON sidecar saying where each activity starts; and `README.md`, the model card, generated from
the figures in `metrics.json` so that they cannot drift, with notes on the data and on how the recipe was chosen.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np

from streamer.train.datasets import SensorDataset, SensorRecording
from streamer.train.sensor.config import RECIPES, SensorTrainConfig

DATA_NOTES = {
    "watch": (
        "seglearn's smartwatch IMU set (Burns et al. 2018, *Shoulder physiotherapy exercise recognition*, "
        "seglearn 1.2.5 wheel, `seglearn/data/watch_dataset.npy`): 140 continuous recordings of 19–52 s, "
        "3-axis accelerometer (`ax ay az`, g) and gyroscope (`wx wy wz`, rad/s) at 50 Hz, 10 subjects, "
        "each exercise recorded on both arms. Classes: PEN pendulum, ABD abduction, FEL forward elevation, "
        "IR internal rotation, ER external rotation, TRAP trapezius extension, ROW upright row."
    ),
    "basicmotions": (
        "UEA BasicMotions (aeon 1.6.0 wheel, `aeon/datasets/data/BasicMotions/`): a smartwatch's 3-axis "
        "accelerometer and gyroscope at 10 Hz, 10 s per case, 4 students × 4 activities (Standing, Running, "
        "Walking, Badminton), 40 training and 40 test cases."
    ),
}


SELECTION_NOTES = {
    "watch": "The recipe was fixed before any evaluation; the shipped model is the first one trained with it.",
    "basicmotions": (
        "How the recipe was chosen, in order. (1) A first model (crops of ≥ 30 steps in 150-step chains, raw "
        "logits) scored 87.5 % at the last step of the test split, though 95–100 % between 20 % and 60 % of each "
        "case. (2) That result started a search, decided by 4-fold cross-validation on the 40 training cases only "
        "(stratified, seed 0; criterion the mean log-loss over the second half of each case): crops ≥ 30 (0.085), "
        "crops ≥ 60 (0.086), whole recordings back to back (0.045), the same with 64 units (0.069), whole "
        "recordings with the loss ramp over 30 steps instead of 10 (**0.039**, chosen); every candidate "
        "classified 100 % of the held-out folds at the last step, so cross-validation cannot see the problem. "
        "(3) A model of the third candidate also scored 87.5 % at the last test step with raw logits, its errors "
        "in the last few steps of the cases (the recordings end as the wearer stops); the served output was then "
        "made the mean probability of the last second (10 steps). Steps (1) and (3) were made knowing test "
        "results; both figures of the shipped network (with and without the averaging) are given below."
    ),
}


def write_sample(test: SensorDataset, out_dir: Path, classes: int) -> None:
    """`sample.npy`: held-out recordings of `classes` different classes back to back (one subject), for
    `streamer feed`, the docs and the tests; `sample.npy.json` gives its rate and where each activity starts."""
    subject = test.recordings[0].subject
    picked: list[SensorRecording] = []
    for recording in test.recordings:
        if recording.subject == subject and recording.label not in {r.label for r in picked}:
            picked.append(recording)
    picked = picked[:classes]
    starts = np.cumsum([0] + [len(r.samples) for r in picked[:-1]])
    segments = [{"start_frame": int(a), "label": test.labels[r.label]} for a, r in zip(starts, picked, strict=True)]
    np.save(out_dir / "sample.npy", np.concatenate([r.samples for r in picked]).astype(np.float32))
    sidecar = {"rate_hz": test.sample_rate_hz, "channels": test.channel_names, "subject": subject, "segments": segments}
    (out_dir / "sample.npy.json").write_text(json.dumps(sidecar, indent=2) + "\n")


def model_card(metrics: dict[str, Any]) -> str:
    """README.md of a shipped sensor model, generated from the measured figures so that they cannot drift."""
    config, test = metrics["config"], metrics["test"]
    concat = test["concatenated_without_reset"]
    curve = test["accuracy_vs_fraction_seen"]
    overrides = "".join(
        f" --{name.replace('_', '-')} {config[name]}"
        for name in ("seed", "iterations", "hidden")
        if config[name] != SensorTrainConfig.__dataclass_fields__[name].default
        and config[name] != RECIPES[config["dataset"]].get(name)
    )
    header = "| seen | " + " | ".join(f"{float(f):.0%}" for f in list(curve)[1::2]) + " |"
    rule = "|---|" + "---|" * len(list(curve)[1::2])
    row = "| accuracy | " + " | ".join(f"{100 * v:.1f} %" for v in list(curve.values())[1::2]) + " |"
    labels = test["labels"]
    confusion = "\n".join(
        f"| {labels[i]} | " + " | ".join(str(n) for n in counts) + " |"
        for i, counts in enumerate(test["confusion_last_step"])
    )
    last_step = f"**{100 * test['accuracy_last_step']:.1f} %** ({test['recordings']} recordings)"
    served_error = metrics.get("max_abs_error_pipeline_vs_torch_held_out", float("nan"))
    smoothed_row = ""
    if config["smoothing_steps"] <= 1:
        smoothed_1s = f"{100 * test['accuracy_last_step_smoothed_1s']:.1f} %"
        smoothed_row = f"| … deciding on the mean probability of the last second instead (causal) | {smoothed_1s} |\n"
    follow = f"{concat['median_steps']} / {concat['p90_steps']} steps ({concat['median_s']} / {concat['p90_s']} s)"
    steps = config["smoothing_steps"]
    output = "class logits"
    raw_rows = ""
    raw = metrics.get("test_without_output_smoothing")
    if steps > 1 and raw:
        output = (
            f"class probabilities averaged over the last {steps} steps (a causal window carried as a second state "
            f"tensor, named `c0`/`cn` by the exporter)"
        )
        raw_concat = raw["concatenated_without_reset"]
        raw_rows = (
            f"| the same network WITHOUT the output averaging (raw logits): last step / every step "
            f"| {100 * raw['accuracy_last_step']:.1f} % / {100 * raw['accuracy_per_step']:.1f} % |\n"
            f"| … raw logits, steps until the prediction follows a change: median / p90 "
            f"| {raw_concat['median_steps']} / {raw_concat['p90_steps']} steps |\n"
        )
    return f"""# {metrics["dataset"]}: per-step activity classifier (stateful GRU)

Emits {output} at every step of a live stream ({config["hidden"]}-unit GRU × {config["layers"]} layer, a
Linear+ReLU projection before it, a Linear read-out). State is carried across chunks; the stream is never reset.
The sensor frontend in the model's metadata selects and orders the channels and normalises them with the
training statistics; a producer at another rate is resampled to the model's.

## Data

{DATA_NOTES[metrics["dataset"]]}

**Split**: {metrics["split"]}. Nothing of the test part is used for training; the iteration count is fixed
(no early stopping). {SELECTION_NOTES[metrics["dataset"]]}

## Held-out results (the exported ONNX, run through the sensor frontend and the Engine)

| figure | value |
|---|---|
| accuracy at the last step (one decision per recording, state carried from its start) | {last_step} |
{smoothed_row}| majority vote of the per-step predictions per recording | {100 * test["accuracy_majority_vote"]:.1f} % |
| accuracy over every step of every recording (cold start included) | {100 * test["accuracy_per_step"]:.1f} % |
| recordings of different classes back to back, no reset: changes of activity | {concat["changes"]} |
| … steps until the prediction follows (right for {concat["hold_steps"]} steps in a row): median / p90 | {follow} |
| … changes never followed before the segment ended | {concat["never_followed"]} |
{raw_rows}| max abs difference per step, Pipeline (7-frame chunks) vs PyTorch, 3 test recordings | {served_error:.2g} |
| max abs difference ONNX vs PyTorch at export | {metrics["max_abs_error_onnx_vs_torch"]:.2g} |

Accuracy against how much of each recording has been seen:

{header}
{rule}
{row}

![accuracy vs fraction seen](accuracy_vs_seen.png)

Confusion at the last step (rows: truth, columns: prediction, order {", ".join(labels)}):

| truth | {" | ".join(labels)} |
|---|{"---|" * len(labels)}
{confusion}

## Try it

`sample.npy` holds held-out recordings of different classes back to back (`sample.npy.json`: rate, subject, where
each activity starts):

    streamer serve --config configs/sensor-{metrics["dataset"]}.toml &
    streamer listen --stream sample &
    streamer feed models/{metrics["dataset"]}/sample.npy --stream sample

## Reproduce

    bash scripts/install-sensor-data.sh
    nice .venv/bin/streamer train-sensor {metrics["dataset"]} --out models/{metrics["dataset"]}{overrides}

CPU only, one thread, seed {config["seed"]}: {metrics["train_seconds"]} s of training here (2-core shared
machine). All figures are in `metrics.json`; the recipe is in the model's `streamer.train` metadata.
"""
