"""How much a gap costs the watch model: accuracy over the 5 s after a hole in the middle of each held-out recording,
when the stream continues across 1 or 25 lost samples (`gap_policy = "continue"`) or is reset (`"reset"`).

    bash scripts/install-sensor-data.sh && python examples/gap_policy_effect.py [--model models/watch/model.onnx]
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np

from streamer.pipeline import Pipeline
from streamer.train.datasets import load_watch

AFTER_STEPS = 250  # 5 s at 50 Hz


def accuracy_after(model: Path, samples: np.ndarray, label: int, cut: int, lost: int, reset: bool) -> float:
    pipeline = Pipeline(model)
    pipeline.push({"s": samples[:cut]})
    if reset:
        pipeline.reset("s")
    scores = pipeline.push({"s": samples[cut + lost : cut + lost + AFTER_STEPS]})["s"]
    return float(np.mean(scores.argmax(axis=1) == label))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", type=Path, default=Path("models/watch/model.onnx"))
    args = parser.parse_args()
    card = json.loads((args.model.parent / "metrics.json").read_text())
    held_out = set(card["config"]["test_subjects"])
    recordings = [r for r in load_watch().recordings if r.subject in held_out]
    rng = np.random.default_rng(0)
    cases = {"no gap": (0, False), "1 sample lost, continue": (1, False), "25 samples lost, continue": (25, False)}
    cases["reset at the gap"] = (0, True)
    results: dict[str, list[float]] = {name: [] for name in cases}
    for recording in recordings:
        cut = int(rng.integers(300, len(recording.samples) - AFTER_STEPS - 30))
        for name, (lost, reset) in cases.items():
            results[name].append(accuracy_after(args.model, recording.samples, recording.label, cut, lost, reset))
    for name, values in results.items():
        share = 100 * np.mean(values)
        print(f"{name:>26}: {share:.1f} % of the next {AFTER_STEPS} steps right ({len(values)} recordings)")


if __name__ == "__main__":
    main()
