"""DET plot (false rejects vs false accepts per hour) as a PNG, with matplotlib (the `train` extra)."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from streamer.errors import ConfigError


def plot_det(report: Mapping[str, Any], path: Path, title: str | None = None) -> None:
    """All keywords at one shared threshold (bold) and each keyword alone; FA/h on a log axis."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError as exc:
        raise ConfigError("--plot needs matplotlib: pip install 'streamer[train]' (or matplotlib)") from exc
    figure, axes = plt.subplots(figsize=(6.4, 4.4), dpi=120)
    floor = 0.01
    overall = report["det"]
    axes.step(
        [max(p["fa_per_hour"], floor) for p in overall],
        [100 * p["frr"] for p in overall],
        where="post",
        linewidth=2.2,
        color="black",
        label="all keywords",
    )
    for label, entry in report["per_keyword"].items():
        points = entry["det"]
        axes.step(
            [max(fa, floor) for fa, _ in points],
            [100 * frr for _, frr in points],
            where="post",
            linewidth=1.1,
            label=f"{label} ({entry['positives']})",
        )
    for target in (0.5, 1.0):
        axes.axvline(target, color="grey", linestyle=":", linewidth=1)
    axes.axhline(5.0, color="red", linestyle="--", linewidth=0.8, label="5 % FRR")
    axes.set_xscale("log")
    axes.set_xlim(floor, 50)
    axes.set_ylim(0, 100)
    axes.set_xlabel(f"false accepts per hour (over {report['negative_hours']:.2f} h of negatives)")
    axes.set_ylabel("false rejects (%)")
    snr = f", noise at {report['snr_db']:g} dB SNR" if report.get("snr_db") is not None else ""
    axes.set_title(title or f"DET: {report['positives']} positives{snr}", fontsize=10)
    axes.grid(True, which="both", alpha=0.3)
    axes.legend(fontsize=8, loc="upper right")
    figure.tight_layout()
    figure.savefig(path)
    plt.close(figure)
