"""train-keyword end to end: render → assemble → features → train → tune → export → evaluate → model card."""

from __future__ import annotations

import dataclasses
import hashlib
import json
import random
import shutil
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import soundfile as sf
import torch

from streamer.errors import ConfigError
from streamer.frontend.melspec import LogMelParams, mel_edges_hz
from streamer.frontend.waveform import WaveformParams
from streamer.model.export import export_module
from streamer.train.keyword import corpus, embedding, sources
from streamer.train.keyword.assemble import Pools, StepTiming, StreamRecipe, assemble
from streamer.train.keyword.dataset import build_streams
from streamer.train.keyword.fit import FitConfig, fit, normalisation, probabilities
from streamer.train.keyword.model import KeywordNet, ProbabilityOutput
from streamer.train.keyword.synthesize import BACKGROUND, ClipSet, RenderPlan, synthesize
from streamer.train.keyword.tune import tune
from streamer.train.keyword.voices import (
    CI_HELDOUT_VOICES,
    CI_VOICES,
    HELDOUT_VOICES,
    TRAIN_VOICES,
    Voice,
    available,
)

BACKGROUND_LABEL = "_background"
RENDER_VERSION = 2  # part of the render cache key: bump when what is rendered changes
SAMPLE_RATE_HZ = 16000


@dataclass(frozen=True)
class KeywordRecipe:
    """Everything that defines a training run; saved next to the model as train_config.json."""

    phrases: tuple[str, ...]
    voices: str = "full"  # "full": every installed engine (scripts/install-tts.sh); "ci": espeak-ng + flite
    plan: RenderPlan = field(default_factory=lambda: RenderPlan(positives=40, near_misses=12, sentences=20))
    espeak_plan: RenderPlan = field(default_factory=lambda: RenderPlan(positives=2, near_misses=1, sentences=2))
    eval_plan: RenderPlan = field(default_factory=lambda: RenderPlan(positives=12, near_misses=8, sentences=40))
    validation_fraction: float = 0.1
    train_hours: float = 10.0
    validation_hours: float = 6.0  # negatives there set the per-keyword thresholds: a few hours, not minutes
    stream_s: float = 60.0
    stream: StreamRecipe = field(default_factory=StreamRecipe)
    fit: FitConfig = field(default_factory=FitConfig)
    hidden: int = 64
    layers: int = 2
    dropout: float = 0.0  # on each GRU layer's output, in training only
    ensemble: int = 1  # GRUs trained with seeds seed, seed+1, ...; the model averages them (embedding features)
    target_fa_per_hour: float = 0.5
    evaluate: bool = True
    eval_negative_hours: float = 2.0
    eval_snr_db: float = 10.0
    workers: int = 2
    seed: int = 0
    frontend: dict[str, Any] = field(default_factory=lambda: LogMelParams().to_dict())
    # "logmel": the GRU reads `frontend`'s log-mel bands; "embedding": it reads a frozen speech embedding
    # computed inside the model from raw audio (streamer.train.keyword.embedding; `frontend` is then unused)
    features: str = "logmel"

    def labels(self) -> list[str]:
        return [BACKGROUND_LABEL, *(label_of(p) for p in self.phrases)]

    def to_json(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


def label_of(phrase: str) -> str:
    """The class label of a phrase: lower-case words joined by '_' ("Hey Streamer" → "hey_streamer")."""
    words = corpus.words_of(phrase)
    if not words:
        raise ConfigError(f"keyword phrase {phrase!r} has no words (letters a-z and apostrophes)")
    return "_".join(words)


def _voices(recipe: KeywordRecipe) -> tuple[list[Voice], list[Voice]]:
    if recipe.voices not in ("full", "ci"):
        raise ConfigError(f"voices={recipe.voices!r}, expected 'full' or 'ci'")
    train, held = (TRAIN_VOICES, HELDOUT_VOICES) if recipe.voices == "full" else (CI_VOICES, CI_HELDOUT_VOICES)
    train_found, held_found = available(train), available(held)
    if not train_found or not held_found:
        raise ConfigError(
            "no TTS voices installed for training and for held-out evaluation: run "
            "scripts/install-tts.sh (full) or scripts/install-system.sh (espeak-ng, flite)"
        )
    return train_found, held_found


def _render(
    recipe: KeywordRecipe, voices: Sequence[Voice], plan: RenderPlan, espeak_plan: RenderPlan, cache: Path, name: str
) -> ClipSet:
    key = json.dumps(
        [
            RENDER_VERSION,
            recipe.phrases,
            [v.key for v in voices],
            dataclasses.asdict(plan),
            dataclasses.asdict(espeak_plan),
            recipe.seed,
        ],
        sort_keys=True,
    )
    path = cache / f"{name}-{hashlib.sha256(key.encode()).hexdigest()[:16]}.npz"
    if path.exists():
        return ClipSet.load(path)
    merged = ClipSet([], [], [], [])
    for group_plan, group in (
        (espeak_plan, [v for v in voices if v.engine == "espeak"]),
        (plan, [v for v in voices if v.engine != "espeak"]),
    ):
        if group:
            part = synthesize(
                recipe.phrases, group, group_plan, seed=recipe.seed, workers=recipe.workers, desc=f"render {name}"
            )
            for attr in ("clips", "labels", "texts", "voices"):
                getattr(merged, attr).extend(getattr(part, attr))
    cache.mkdir(parents=True, exist_ok=True)
    merged.save(path)
    return merged


def _split(clips: ClipSet, fraction: float, seed: int) -> tuple[ClipSet, ClipSet]:
    """Renderings (not voices) split per label into training and validation, at least one of each label on
    each side when it has two; whole voices are held out separately, for evaluation."""
    rng = random.Random(seed)
    train, valid = ClipSet([], [], [], []), ClipSet([], [], [], [])
    for label in sorted(set(clips.labels)):
        indices = [i for i, lab in enumerate(clips.labels) if lab == label]
        rng.shuffle(indices)
        count = min(len(indices) - 1, max(1, round(fraction * len(indices)))) if len(indices) > 1 else 0
        for position, i in enumerate(indices):
            target = valid if position < count else train
            target.clips.append(clips.clips[i])
            target.labels.append(clips.labels[i])
            target.texts.append(clips.texts[i])
            target.voices.append(clips.voices[i])
    return train, valid


def _pools(
    clips: ClipSet,
    near_misses: bool,
    count: int,
    speech: list[sources.Recording],
    noise: list[sources.Recording],
    music: list[sources.Recording],
) -> Pools:
    positives = [clips.of_label(k) for k in range(count)]
    missing = [k for k, p in enumerate(positives) if not p]
    if missing:
        raise ConfigError(f"no renderings for keyword(s) {missing}: the TTS engines produced no audio")
    negatives = clips.of_label(BACKGROUND) if near_misses else clips.negatives(sentences=True)
    return Pools(positives, negatives, speech, noise, music)


def write_eval_set(recipe: KeywordRecipe, held: ClipSet, folder: Path) -> dict[str, Any]:
    """Held-out voices' keywords, ≥ eval_negative_hours of held-out negatives, held-out noise: as wav files."""
    rng = np.random.default_rng(recipe.seed + 7)
    labels = recipe.labels()[1:]
    if folder.exists():
        shutil.rmtree(folder)  # ours alone (data_dir/eval): stale clips of another run must not count
    for k, label in enumerate(labels):
        target = folder / "positives" / label
        target.mkdir(parents=True, exist_ok=True)
        mine = [(c, v) for c, lab, v in zip(held.clips, held.labels, held.voices, strict=True) if lab == k]
        for i, (clip, voice) in enumerate(mine):  # the voice in the name: misses can be traced to voices
            sf.write(target / f"{voice.replace(':', '_')}-{i:04d}.wav", clip, SAMPLE_RATE_HZ, subtype="PCM_16")
    speech = sources.speech("eval", recipe.phrases)
    pools = Pools([[np.zeros(1, np.float32)]], held.negatives(sentences=True), speech, [], [])
    # Negative files: held-out voices' ordinary sentences and held-out real speech with pauses, no noise bed (the
    # noise is mixed in at eval time at a fixed SNR). Levels around -26 dBFS, like the spliced positives.
    # The near misses ("nights on", "streamer" alone) are a separate stress test: one file each, 1 s apart.
    negative_recipe = dataclasses.replace(
        recipe.stream,
        positives_per_min=0.0,
        tts_negatives_per_min=6.0,
        speech_per_min=6.0 if speech else 0.0,
        noise_probability=0.0,
        music_probability=0.0,
        level_dbfs=(-30.0, -22.0),
        eq_probability=0.0,  # the held-out negatives are plain renderings and recordings
    )
    files = max(1, round(recipe.eval_negative_hours * 6))
    (folder / "negatives").mkdir(parents=True, exist_ok=True)
    for i in range(files):
        samples, _ = assemble(recipe.eval_negative_hours * 3600 / files, pools, rng, negative_recipe)
        sf.write(folder / "negatives" / f"{i:03d}.wav", samples, SAMPLE_RATE_HZ, subtype="PCM_16")
    near_misses = held.negatives(sentences=False)
    (folder / "near_misses").mkdir(parents=True, exist_ok=True)
    pause = np.zeros(SAMPLE_RATE_HZ // 2, np.float32)
    for i, clip in enumerate(near_misses):
        level = 10 ** (rng.uniform(-30.0, -22.0) / 20) / (float(np.sqrt(np.mean(clip**2))) + 1e-9)
        sf.write(
            folder / "near_misses" / f"{i:04d}.wav",
            np.concatenate([pause, clip * level, pause]),
            SAMPLE_RATE_HZ,
            subtype="PCM_16",
        )
    (folder / "noise").mkdir(parents=True, exist_ok=True)
    noise_files = [*sources.noise("eval"), *sources.music("eval")]
    for recording in noise_files:
        sf.write(folder / "noise" / f"{recording.path.stem}.wav", recording.samples, SAMPLE_RATE_HZ)
    return {
        "positives": sum(len(held.of_label(k)) for k in range(len(labels))),
        "negative_files": files,
        "negative_hours": recipe.eval_negative_hours,
        "near_miss_clips": len(near_misses),
        "sentence_clips": len(held.negatives(sentences=True)),
        "real_speech_minutes": round(sum(len(r.samples) for r in speech) / SAMPLE_RATE_HZ / 60, 1),
        "real_speech_files": len(speech),
        "noise_files": [str(r.path) for r in noise_files],
    }


def _per_voice(held: ClipSet, missed: Sequence[str]) -> dict[str, float]:
    """False-reject rate per held-out voice at the shipped defaults, from the missed files' names."""
    totals: dict[str, int] = {}
    for label, voice in zip(held.labels, held.voices, strict=True):
        if label != BACKGROUND:
            totals[voice.replace(":", "_")] = totals.get(voice.replace(":", "_"), 0) + 1
    misses: dict[str, int] = {}
    for name in missed:
        voice = Path(name).name.rsplit("-", 1)[0]
        misses[voice] = misses.get(voice, 0) + 1
    return {voice: round(misses.get(voice, 0) / total, 3) for voice, total in sorted(totals.items())}


def _stress_summary(stress: dict[str, Any], clips: int) -> dict[str, Any]:
    """False accepts on the near-miss clips alone, per clip, at the model's defaults and the main operating points."""
    default = stress["default"]
    return {
        "clips": clips,
        "hours": stress["negative_hours"],
        "false_accepts_at_defaults": default["false_accepts"],
        "false_accepts_per_100_clips_at_defaults": round(100 * default["false_accepts"] / max(clips, 1), 2),
        "frr_at_defaults": default["frr"],
    }


def train_keyword(recipe: KeywordRecipe, out_dir: Path, data_dir: Path) -> dict[str, Any]:
    """Run the recipe; writes model.onnx, train_config.json, eval.json, det.png and README.md to `out_dir`."""
    from streamer.train.keyword.card import write_card

    started = time.perf_counter()
    timings: dict[str, float] = {}
    torch.set_num_threads(1)  # one thread: faster than two here when the machine is shared (measured)
    torch.set_flush_denormal(True)
    params = LogMelParams.from_dict(recipe.frontend)
    if recipe.features not in ("logmel", "embedding"):
        raise ConfigError(f"features={recipe.features!r}, expected 'logmel' or 'embedding'")
    embedded = recipe.features == "embedding"
    if recipe.ensemble < 1 or (recipe.ensemble > 1 and not embedded):
        raise ConfigError(f"ensemble={recipe.ensemble}: expected 1, or more with the embedding features")
    timing: StepTiming = WaveformParams(embedding.SAMPLE_RATE_HZ, embedding.FRAME_SAMPLES) if embedded else params
    featurize = embedding.embed if embedded else None
    feature_dim = embedding.EMBEDDING_DIM if embedded else params.n_mels
    if embedded:
        embedding.model_files()  # fail before hours of work if the embedding's files are not installed
    labels = recipe.labels()
    train_voices, held_voices = _voices(recipe)
    cache = data_dir / "renders"

    mark = time.perf_counter()
    rendered = _render(recipe, train_voices, recipe.plan, recipe.espeak_plan, cache, "train")
    held = _render(recipe, held_voices, recipe.eval_plan, recipe.eval_plan, cache, "heldout")
    timings["render_s"] = time.perf_counter() - mark
    train_clips, valid_clips = _split(rendered, recipe.validation_fraction, recipe.seed)

    mark = time.perf_counter()
    speech = sources.speech("train", recipe.phrases)
    noise, music = sources.noise("train"), sources.music("train")
    count = len(recipe.phrases)
    train_streams = build_streams(
        _pools(train_clips, True, count, speech, noise, music),
        params=timing,
        featurize=featurize,
        count=max(1, round(recipe.train_hours * 3600 / recipe.stream_s)),
        duration_s=recipe.stream_s,
        seed=recipe.seed,
        recipe=recipe.stream,
        workers=recipe.workers,
        desc="train streams",
    )
    valid_streams = build_streams(
        _pools(valid_clips, False, count, speech, noise, music),
        params=timing,
        featurize=featurize,
        count=max(1, round(recipe.validation_hours * 3600 / recipe.stream_s)),
        duration_s=recipe.stream_s,
        seed=recipe.seed + 1,
        recipe=recipe.stream,
        workers=recipe.workers,
        desc="validation streams",
    )
    timings["features_s"] = time.perf_counter() - mark

    mark = time.perf_counter()
    # SpecAugment and VTLP act on mel bands, not on an embedding's dimensions
    fit_config = dataclasses.replace(recipe.fit, freq_masks=0, warp=0.0) if embedded else recipe.fit
    nets, losses = [], []
    for member in range(recipe.ensemble):  # an ensemble: the same recipe with other seeds, averaged
        torch.manual_seed(recipe.seed + member)
        net = KeywordNet(feature_dim, len(labels), recipe.hidden, recipe.layers, recipe.dropout)
        net.set_normalisation(*normalisation(train_streams))
        member_config = dataclasses.replace(fit_config, seed=fit_config.seed + member)
        losses.append(fit(net, train_streams, member_config, centres_hz=mel_edges_hz(params)[1:-1]))
        nets.append(net)
    timings["train_s"] = time.perf_counter() - mark

    valid_probabilities = np.mean([probabilities(n, valid_streams) for n in nets], axis=0)
    tuning = tune(valid_probabilities, labels, valid_streams, timing, recipe.target_fa_per_hour)
    out_dir.mkdir(parents=True, exist_ok=True)
    model_path = out_dir / "model.onnx"
    summary = {
        "phrases": list(recipe.phrases),
        "train_voices": [v.key for v in train_voices],
        "heldout_voices": [v.key for v in held_voices],
        "validation": tuning.validation,
    }
    metadata = {"streamer.detection": tuning.detection, "streamer.keyword.training": summary}
    # With the embedding, each GRU alone is exported (and checked against torch), then joined to the feature graph.
    heads = [data_dir / ("head.onnx" if len(nets) == 1 else f"head{i}.onnx") for i in range(len(nets))]
    reports = [
        export_module(
            ProbabilityOutput(net),
            heads[i] if embedded else model_path,
            features=feature_dim,
            labels=labels,
            scores="probabilities",
            frontend=None if embedded else params.to_dict(),
            extra_metadata=metadata,
        )
        for i, net in enumerate(nets)
    ]
    if embedded:
        embedding.combine(heads, model_path, {"streamer.keyword.embedding": json.dumps(embedding.PROVENANCE)})

    evaluation = eval_set = None
    if recipe.evaluate:
        from streamer.evaluate.plot import plot_det
        from streamer.evaluate.run import EvalOptions, evaluate, write_json

        mark = time.perf_counter()
        eval_dir = data_dir / "eval"
        eval_set = write_eval_set(recipe, held, eval_dir)
        has_noise = bool(eval_set["noise_files"])  # none where the noise packages are not installed (CI)
        options = EvalOptions(
            noise_dir=eval_dir / "noise" if has_noise else None,
            snr_db=recipe.eval_snr_db if has_noise else None,
            seed=recipe.seed,
            progress=False,
        )
        evaluation = evaluate(model_path, eval_dir / "positives", eval_dir / "negatives", options)
        write_json(evaluation, out_dir / "eval.json")
        stress = evaluate(
            model_path, eval_dir / "positives", eval_dir / "near_misses", dataclasses.replace(options, min_gap_s=0.5)
        )
        write_json(stress, out_dir / "eval_near_misses.json")
        evaluation = {
            **evaluation,
            "near_misses": _stress_summary(stress, eval_set["near_miss_clips"]),
            "per_voice_frr_at_defaults": _per_voice(held, evaluation["missed_at_defaults"]),
        }
        plot_det(evaluation, out_dir / "det.png")
        timings["evaluate_s"] = time.perf_counter() - mark

    timings["total_s"] = time.perf_counter() - started
    run = {
        "recipe": recipe.to_json(),
        "labels": labels,
        "clips": {
            "train": len(train_clips.clips),
            "validation": len(valid_clips.clips),
            "heldout": len(held.clips),
            "heldout_positives": sum(len(held.of_label(k)) for k in range(count)),
            "train_positives": [len(train_clips.of_label(k)) for k in range(count)],
        },
        "real_speech_files_train": len(speech),
        "noise_files_train": len(noise),
        "music_files_train": len(music),
        "train_voices": [v.key for v in train_voices],
        "heldout_voices": [v.key for v in held_voices],
        "fit": dataclasses.asdict(fit_config),  # as run
        "loss_first_last": [float(np.mean(losses[0][:20])), float(np.mean(losses[0][-20:]))],
        "validation": tuning.validation,
        "detection": tuning.detection,
        "export_max_abs_error": max(r.max_abs_error for r in reports),
        "eval_set": eval_set,
        "timings_s": {k: round(v, 1) for k, v in timings.items()},
        "parameters": sum(p.numel() for n in nets for p in n.parameters()),
    }
    (out_dir / "train_config.json").write_text(json.dumps(run, indent=2) + "\n")
    write_card(out_dir, run, evaluation, [*train_voices, *held_voices])
    return run
