"""`streamer train-keyword`, `eval-keyword` and `import-openwakeword`: keyword models from text or from
openWakeWord, and their honest DET curve."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path
from typing import Annotated

import typer

from streamer.errors import ConfigError


def check_device(device: str) -> None:
    """A torch device this machine has: 'cpu', or 'cuda'/'cuda:N' where torch sees that GPU (else exit 2)."""
    import torch

    if device == "cpu":
        return
    if not (device == "cuda" or (device.startswith("cuda:") and device[5:].isdigit())):
        raise ConfigError(f"--device is {device!r}, expected 'cpu', 'cuda' or 'cuda:N'")
    count = torch.cuda.device_count() if torch.cuda.is_available() else 0
    index = int(device[5:]) if ":" in device else 0
    if index >= count:
        raise ConfigError(
            f"--device {device}: torch {torch.__version__} sees {count} CUDA device(s); train on 'cpu' "
            "or install a CUDA build of torch"
        )


def _frontend(hop_ms: float, win_ms: float) -> dict:
    """The log-mel metadata for a hop and window (else the defaults); the FFT the next power of two ≥ the window."""
    from streamer.frontend.melspec import LogMelParams

    if not (0 < hop_ms <= win_ms <= 64):
        raise ConfigError(f"--hop-ms {hop_ms:g} --win-ms {win_ms:g}: expected 0 < hop ≤ window ≤ 64 ms")
    window = LogMelParams(hop_ms=hop_ms, win_ms=win_ms)
    n_fft = max(512, 1 << (window.win_samples - 1).bit_length())
    params = LogMelParams.from_dict({**window.to_dict(), "n_fft": n_fft})
    return params.to_dict()


def train_keyword(
    phrases: Annotated[list[str], typer.Argument(help="keyword phrases, one class each, e.g. 'hey streamer'")],
    out: Annotated[Path, typer.Option("--out", "-o", help="folder for model.onnx, README.md, det.png, ...")],
    data_dir: Annotated[
        Path | None, typer.Option(help="cache of renderings and the eval set \\[default: data/keyword/<labels>]")
    ] = None,
    voices: Annotated[str, typer.Option(help="'full' (scripts/install-tts.sh) or 'ci' (espeak-ng + flite)")] = "full",
    steps: Annotated[int, typer.Option(help="optimiser steps (128 lanes × --segment-steps each)")] = 1500,
    segment_steps: Annotated[
        int | None,
        typer.Option(help="model steps per BPTT segment \\[default: 2 s: 200 for logmel, 25 for embedding]"),
    ] = None,
    train_hours: Annotated[float, typer.Option(help="hours of assembled training audio")] = 10.0,
    eval_hours: Annotated[float, typer.Option(help="hours of held-out negatives to evaluate on (0: skip)")] = 2.0,
    hidden: Annotated[int, typer.Option(help="GRU units per layer (2 layers)")] = 64,
    dropout: Annotated[float, typer.Option(help="dropout on each GRU layer's output while training (0: none)")] = 0.0,
    ensemble: Annotated[
        int, typer.Option(help="GRUs trained with successive seeds and averaged in the model (embedding only)")
    ] = 1,
    warp: Annotated[
        float, typer.Option(help="vocal tract length perturbation: mel axis stretched by up to this fraction (0: off)")
    ] = 0.0,
    target_fa_per_hour: Annotated[
        float, typer.Option(help="the default threshold: fewest misses with at most this many FA/h on validation")
    ] = 1.0,
    hop_ms: Annotated[
        float, typer.Option(help="feature hop = one model step (20: ~30 % less daemon CPU, less accurate)")
    ] = 10.0,
    win_ms: Annotated[float, typer.Option(help="analysis window (FFT length: the next power of two)")] = 25.0,
    features: Annotated[
        str,
        typer.Option(
            help="'embedding': a frozen speech embedding trained on real speech, inside the model (80 ms steps); "
            "'logmel': the GRU reads log-mel bands (~4x cheaper to serve, but learns from TTS voices alone)"
        ),
    ] = "embedding",
    workers: Annotated[int, typer.Option(help="processes for rendering and feature extraction")] = 2,
    device: Annotated[str, typer.Option(help="where the network trains: 'cpu', or 'cuda' for a GPU")] = "cpu",
    seed: Annotated[int, typer.Option()] = 0,
) -> None:
    """Build a keyword model from text alone: TTS voices, augmentation, stateful training, export, evaluation."""
    from streamer.train.keyword.fit import FitConfig
    from streamer.train.keyword.recipe import KeywordRecipe, label_of, train_keyword

    if not phrases:
        raise ConfigError("give at least one keyword phrase")
    if steps < 1 or train_hours <= 0 or eval_hours < 0 or hidden < 1 or target_fa_per_hour < 0:
        raise ConfigError(
            f"steps={steps}, train_hours={train_hours}, eval_hours={eval_hours}: expected "
            "steps ≥ 1, train_hours > 0, eval_hours ≥ 0, hidden ≥ 1, target_fa_per_hour ≥ 0"
        )
    if not (0.0 <= dropout < 1.0 and 0.0 <= warp <= 0.5):
        raise ConfigError(f"dropout={dropout}, warp={warp}: expected 0 ≤ dropout < 1 and 0 ≤ warp ≤ 0.5")
    if features not in ("logmel", "embedding"):
        raise ConfigError(f"--features {features!r}: expected 'logmel' or 'embedding'")
    if ensemble < 1 or (ensemble > 1 and features != "embedding"):
        raise ConfigError(f"--ensemble {ensemble}: expected 1, or more with --features embedding")
    if segment_steps is None:
        segment_steps = 25 if features == "embedding" else 200
    if segment_steps < 1:
        raise ConfigError(f"--segment-steps {segment_steps}: expected ≥ 1")
    check_device(device)
    frontend = _frontend(hop_ms, win_ms)
    recipe = KeywordRecipe(
        phrases=tuple(phrases),
        voices=voices,
        hidden=hidden,
        dropout=dropout,
        ensemble=ensemble,
        target_fa_per_hour=target_fa_per_hour,
        train_hours=train_hours,
        fit=dataclasses.replace(
            FitConfig(), steps=steps, segment_steps=segment_steps, seed=seed, device=device, warp=warp
        ),
        evaluate=eval_hours > 0,
        eval_negative_hours=eval_hours or 2.0,
        workers=workers,
        seed=seed,
        frontend=frontend,
        features=features,
    )
    folder = data_dir or Path("data/keyword") / "-".join(label_of(p) for p in phrases)
    run = train_keyword(recipe, out, folder)
    typer.echo(f"wrote {out / 'model.onnx'} ({run['timings_s']['total_s']:.0f} s); model card {out / 'README.md'}")


def eval_keyword(
    model: Annotated[Path, typer.Argument(help="keyword model (ONNX, logmel or waveform frontend)")],
    positives: Annotated[Path, typer.Option(help="folder: one sub-folder of clips per keyword label")],
    negatives: Annotated[Path, typer.Option(help="folder of audio without the keywords (any length)")],
    as_json: Annotated[bool, typer.Option("--json", help="print the full report as JSON")] = False,
    plot: Annotated[Path | None, typer.Option(help="write the DET curve to this PNG")] = None,
    noise: Annotated[Path | None, typer.Option(help="folder of noise/music mixed over the whole stream")] = None,
    snr_db: Annotated[float | None, typer.Option(help="noise level: positive speech RMS over noise RMS")] = None,
    negative_hours: Annotated[float | None, typer.Option(help="loop the negatives up to this many hours")] = None,
    min_gap_s: Annotated[float, typer.Option(help="least negative audio between two positives")] = 4.0,
    tolerance_s: Annotated[float, typer.Option(help="a hit may come this late after the keyword's end")] = 1.0,
    seed: Annotated[int, typer.Option(help="splice positions and noise excerpts")] = 0,
) -> None:
    """Stream positives spliced into negatives through the Pipeline (state never reset): FRR vs FA/h (DET)."""
    from streamer.evaluate.run import EvalOptions, evaluate, fa_per_hour_text, frr_text

    if (noise is None) != (snr_db is None):
        raise ConfigError("--noise and --snr-db go together: give both or neither")
    options = EvalOptions(
        noise_dir=noise,
        snr_db=snr_db,
        negative_hours=negative_hours,
        min_gap_s=min_gap_s,
        tolerance_after_s=tolerance_s,
        seed=seed,
        progress=not as_json,
    )
    report = evaluate(model, positives, negatives, options)
    if plot is not None:
        from streamer.evaluate.plot import plot_det

        plot_det(report, plot)
    if as_json:
        typer.echo(json.dumps(report, indent=2))
        return
    typer.echo(
        f"{report['positives']} positives, {report['negative_hours']:.2f} h of negatives "
        f"({report['negative_files']} files), noise {report['snr_db']} dB SNR"
    )
    for key in ("0_5", "1"):
        point = report["operating_points"][f"{key}_fa_per_hour"]
        name = key.replace("_", ".")
        if point is None:
            typer.echo(f"  ≤ {name} FA/h: not reachable (every swept threshold gives more false accepts)")
        else:
            typer.echo(
                f"  ≤ {name} FA/h: FRR {frr_text(point)} at threshold {point['threshold']:.6g} "
                f"({point['false_accepts']} false accepts, {fa_per_hour_text(point)}), "
                f"median latency {point['median_latency_ms']} ms"
            )
    d = report["default"]
    typer.echo(
        f"  model defaults {d['thresholds']}: FRR {frr_text(d)}, {d['false_accepts']} false accepts, "
        f"{fa_per_hour_text(d)}, "
        f"median latency {d['median_latency_ms']} ms"
    )
    typer.echo("  (95 % confidence intervals: Wilson for FRR, exact Poisson for false accepts per hour)")
    if plot is not None:
        typer.echo(f"  DET curve: {plot}")


def import_openwakeword(
    models: Annotated[
        list[str],
        typer.Argument(help="openWakeWord classifiers (.onnx), or the openwakeword wheel's by name: hey_jarvis, ..."),
    ],
    out: Annotated[Path, typer.Option("--out", "-o", help="folder for model.onnx and README.md")],
    label: Annotated[
        list[str] | None, typer.Option(help="each wake word's label, once per model \\[default: from the file name]")
    ] = None,
    threshold: Annotated[
        float | None, typer.Option(help="detection threshold \\[default: 0.5, openWakeWord's]")
    ] = None,
) -> None:
    """Serve openWakeWord models statefully: their classifiers on one streaming speech embedding, one ONNX model."""
    from streamer.train.keyword import openwakeword

    if threshold is not None and not 0.0 < threshold <= 1.0:
        raise ConfigError(f"--threshold {threshold:g}: expected a probability in (0, 1]")
    sources = [openwakeword.resolve_source(model) for model in models]
    out.mkdir(parents=True, exist_ok=True)
    classifiers = openwakeword.convert(sources, out / "model.onnx", labels=label or None, threshold=threshold)
    openwakeword.write_card(sources, classifiers, out / "README.md", threshold)
    words = ", ".join(f"{', '.join(c.labels[1:])} ({c.window * 80} ms window)" for c in classifiers)
    typer.echo(f"wrote {out / 'model.onnx'}: {words}; serve it with: streamer serve --model {out / 'model.onnx'}")


def register(app: typer.Typer) -> None:
    app.command("train-keyword")(train_keyword)
    app.command("eval-keyword")(eval_keyword)
    app.command("import-openwakeword")(import_openwakeword)
