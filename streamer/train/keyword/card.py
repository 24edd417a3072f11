"""The model card (README.md next to model.onnx): what it hears, what it was trained on, how well it does."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from streamer.evaluate.run import fa_per_hour_text, frr_text
from streamer.frontend.melspec import LogMelParams
from streamer.train.keyword import sources
from streamer.train.keyword.assemble import TARGET_AFTER_END_MS, TARGET_BEFORE_END_MS
from streamer.train.keyword.voices import Voice


def _pct(value: float | None) -> str:
    return "not reached" if value is None else f"{100 * value:.1f} %"


def _results(evaluation: Mapping[str, Any]) -> list[str]:
    points = evaluation["operating_points"]
    default = evaluation["default"]
    lines = [
        f"Held-out voices, held-out noise and music at {evaluation['snr_db']} dB SNR, "
        f"{evaluation['negative_hours']:.2f} h of negatives ({evaluation['negative_files']} files: ordinary sentences "
        "by the held-out voices and the held-out half of the real recorded prompts, with pauses; looped material "
        "is re-augmented each time), "
        f"{evaluation['positives']} positives spliced in at random gaps, one stream, state never reset "
        f"(streamed through `streamer.pipeline.Pipeline` at {evaluation['realtime_factor']}× real time).",
        "",
        "| operating point | threshold | FRR [95 % CI] | false accepts | FA/h [95 % CI] | median latency |",
        "|---|---|---|---|---|---|",
    ]
    for name, point in (("≤ 0.5 FA/h", points["0_5_fa_per_hour"]), ("≤ 1 FA/h", points["1_fa_per_hour"])):
        if point is None:
            lines.append(f"| {name} | – | not reachable on the swept grid | | | |")
        else:
            lines.append(
                f"| {name} | {point['threshold']:.6g} | {frr_text(point)} | {point['false_accepts']} | "
                f"{fa_per_hour_text(point)} | {point['median_latency_ms']} ms |"
            )
    lines.append(
        f"| shipped defaults (metadata) | {', '.join(f'{v:.6g}' for v in default['thresholds'].values())} "
        f"| {frr_text(default)} | {default.get('false_accepts')} | {fa_per_hour_text(default)} | "
        f"{default.get('median_latency_ms')} ms |"
    )
    lines += [
        "",
        "Intervals: Wilson's for the FRR (the positives are few), the exact Poisson interval for false accepts per "
        "hour (the ≤ 0.5 FA/h point rests on one or two events: read it with its interval).",
    ]
    lines += [
        "",
        "Per keyword (each keyword's own false accepts over the same negatives):",
        "",
        "| keyword | positives | FRR at ≤ 0.5 FA/h | FRR at ≤ 1 FA/h | FRR / FA/h at the defaults |",
        "|---|---|---|---|---|",
    ]
    for label, entry in evaluation["per_keyword"].items():
        d = entry["default"] or {}
        lines.append(
            f"| {label} | {entry['positives']} | {_pct(entry['frr_at_0_5_fa_per_hour'])} | "
            f"{_pct(entry['frr_at_1_fa_per_hour'])} | {_pct(d.get('frr'))} / {d.get('fa_per_hour')} |"
        )
    per_voice = evaluation.get("per_voice_frr_at_defaults")
    if per_voice:
        lines += [
            "",
            "False rejects per held-out voice at the shipped defaults: "
            + ", ".join(f"`{voice}` {100 * frr:.0f} %" for voice, frr in per_voice.items())
            + ".",
        ]
    stress = evaluation.get("near_misses")
    if stress:
        lines += [
            "",
            f"Near-miss stress test (`eval_near_misses.json`): {stress['clips']} held-out renderings of phrases that "
            "share words or syllables with the keywords (each keyword's words alone, prefixes and suffixes, one word "
            'swapped for a sound-alike: "nights on", "play muse", "streamer"), 1 s apart, same noise: '
            f"{stress['false_accepts_at_defaults']} false accepts at the shipped defaults "
            f"({stress['false_accepts_per_100_clips_at_defaults']} per 100 near misses).",
        ]
    lines += [
        "",
        "![DET curve](det.png)",
        "",
        "Latency is stream time from the keyword's last loud sample to the event (± one model step); the "
        "daemon adds its processing and transport time on top.",
    ]
    return lines


def write_card(
    out_dir: Path, run: Mapping[str, Any], evaluation: Mapping[str, Any] | None, voices: Sequence[Voice]
) -> None:
    recipe = run["recipe"]
    phrases = recipe["phrases"]
    used = {v.key: v for v in voices}
    restricted = sorted(k for k in run["train_voices"] if k in used and "non-commercial" in used[k].licence)
    quoted = " ".join(f'"{p}"' for p in phrases)
    fit = recipe["fit"]
    quoted += (
        f" --steps {fit['steps']} --train-hours {recipe['train_hours']:g} --hidden {recipe['hidden']}"
        f" --target-fa-per-hour {recipe['target_fa_per_hour']:g} --eval-hours {recipe['eval_negative_hours']:g}"
        f" --seed {recipe['seed']}"
    )
    if recipe.get("dropout", 0.0) > 0:
        quoted += f" --dropout {recipe['dropout']:g}"
    if fit.get("warp", 0.0) > 0:
        quoted += f" --warp {fit['warp']:g}"
    if recipe.get("ensemble", 1) > 1:
        quoted += f" --ensemble {recipe['ensemble']}"
    frontend = LogMelParams.from_dict(recipe.get("frontend") or {})
    embedded = recipe.get("features", "logmel") == "embedding"
    if not embedded:  # the CLI's default is embedding
        quoted += " --features logmel"
    segment_steps = run.get("fit", fit)["segment_steps"]
    if segment_steps != (25 if embedded else 200):
        quoted += f" --segment-steps {segment_steps}"
    if embedded:
        members = recipe.get("ensemble", 1)
        gru = f"GRU {recipe['layers']}×{recipe['hidden']}"
        if members > 1:  # --ensemble: that many GRUs (successive seeds) whose probabilities the model averages
            seeds = f"seeds {recipe['seed']}–{recipe['seed'] + members - 1}"
            gru = f"{members} GRUs {recipe['layers']}×{recipe['hidden']} ({seeds}, probabilities averaged)"
        network = (
            f"Labels: `{run['labels']}`; scores: **probabilities** (softmax per 80 ms step). "
            f"{gru} over a frozen 96-d speech embedding computed inside the "
            "model from raw 16 kHz audio (`waveform` frontend, 1,280 samples per step: openWakeWord's 32-band mel "
            "spectrogram and Google's speech_embedding network, ~330k frozen weights trained on real speech, "
            "Apache-2.0, run as a streaming network whose convolution caches and audio overlap are model state); "
            f"{'the GRUs and heads' if members > 1 else 'the GRU and head'} have "
        )
    else:
        if (frontend.hop_ms, frontend.win_ms) != (LogMelParams.hop_ms, LogMelParams.win_ms):
            quoted += f" --hop-ms {frontend.hop_ms:g} --win-ms {frontend.win_ms:g}"
        network = (
            f"Labels: `{run['labels']}`; scores: **probabilities** (softmax per {frontend.hop_ms:g} ms step). "
            f"GRU {recipe['layers']}×{recipe['hidden']} over {frontend.n_mels} log-mel bands "
            f"({frontend.sample_rate_hz / 1000:g} kHz, {frontend.win_ms:g} ms window, {frontend.hop_ms:g} ms hop), "
        )
    lines = [
        f"# Keyword model: {', '.join(phrases)}",
        "",
        network + f"{run['parameters']} trained parameters, feature normalisation inside the graph. "
        "Built from text alone by "
        f"`streamer train-keyword {quoted} --out {out_dir}`.",
        "",
        f"Detection defaults (metadata `streamer.detection`): `{run['detection']}`, one threshold per keyword "
        "(the fewest misses in all within the false-accept budget), chosen on validation streams "
        f"(held-back renderings of the training voices, {run['validation']['negative_hours']} h): there "
        f"FRR {_pct(run['validation']['frr'])} at {run['validation']['fa_per_hour']} FA/h.",
        "",
        "## Evaluation",
        "",
    ]
    lines += _results(evaluation) if evaluation else ["Not evaluated in this run (`evaluate` was off)."]
    eval_set = run.get("eval_set") or {}
    if "sentence_clips" in eval_set:
        lines += [
            "",
            f"The negative hours are built from {eval_set['sentence_clips']} held-out renderings of ordinary "
            f"sentences and {eval_set['real_speech_files']} real prompts ({eval_set['real_speech_minutes']} min of "
            "one real speaker), drawn at random with pauses (about 6 of each per minute) until the hours are "
            "filled: each clip recurs several times, each time with fresh speed, reverberation, band-limiting and "
            "gain. The noise bed (held-out noise and music files) runs under the whole stream.",
        ]
    lines += [
        "",
        "## Data",
        "",
        f"Training voices ({len(run['train_voices'])}): " + ", ".join(f"`{k}`" for k in run["train_voices"]) + ".",
        "",
        f"Held-out voices, never trained on, no shared human donor ({len(run['heldout_voices'])}): "
        + ", ".join(f"`{k}`" for k in run["heldout_voices"])
        + ".",
        "",
        f"Clips rendered: {run['clips']['train']} training, {run['clips']['validation']} validation, "
        f"{run['clips']['heldout']} held-out (positives per keyword for training: {run['clips']['train_positives']}); "
        "rate and pitch varied per rendering. Negatives: near-miss phrases that share words or syllables with each "
        "keyword, ordinary sentences, the transcripts of the asterisk prompts, all rendered by the same voices; "
        f"real recorded speech ({run['real_speech_files_train']} asterisk prompts for training, the other half of "
        "the files held out for evaluation); noise "
        f"({run['noise_files_train']} files) and music ({run['music_files_train']} files) with whole files held out.",
        "",
        f"Training: {recipe['train_hours']} h of continuous streams ({recipe['stream_s']:.0f} s each, keywords "
        "spliced at random into speech, pauses, noise and music at 0–20 dB SNR; per utterance speed 0.8–1.25×, "
        "synthetic room reverberation, band-limiting; random level and a noise floor), played as "
        f"{recipe['fit']['lanes']} endless lanes with the GRU state carried across segments of "
        f"{run.get('fit', recipe['fit'])['segment_steps']} steps and across streams (truncated BPTT, never reset), "
        f"{recipe['fit']['steps']} Adam steps"
        + (
            ""
            if embedded
            else f", SpecAugment frequency masks ({recipe['fit']['freq_masks']} bands of "
            f"up to {recipe['fit']['freq_mask_bins']} mel bins per lane and segment)"
        )
        + ". Targets: the keyword class for "
        f"{TARGET_BEFORE_END_MS} ms before to {TARGET_AFTER_END_MS} ms after each "
        "keyword's end, ignored over the second half of the keyword, background elsewhere. "
        f"Wall time on the 2-core build machine: {run['timings_s']}.",
        "",
        "Licences of the inputs:",
        "",
    ]
    for voice in sorted({v.licence for k, v in used.items()}):
        engines = sorted({v.engine for v in used.values() if v.licence == voice})
        lines.append(f"- {', '.join(engines)}: {voice}")
    for package, licence in sources.LICENCES.items():
        lines.append(f"- {package}: {licence}")
    if embedded:
        lines.append(
            "- speech embedding and its mel spectrogram: Google's speech_embedding (TF Hub, Apache-2.0) as "
            "re-implemented in ONNX by openWakeWord (code Apache-2.0; `openwakeword==0.4.0` wheel), frozen"
        )
    if restricted:
        lines += [
            "",
            f"**Some voices are licensed for non-commercial use only ({', '.join(restricted)}); this model was "
            "trained on their output, so use it for non-commercial purposes only, or retrain without them.**",
        ]
    lines += [
        "",
        "## Limitations",
        "",
        "- Every positive is synthetic speech; the only real speech is one female speaker (8 kHz prompts), used as "
        "negatives. Accuracy on real people's voices is not measured here and will be lower.",
        "- The held-out evaluation uses the same recipe family (engines, augmentation) as training.",
        "- False accepts are measured on a few hours; rates under ~1/h are resolved only roughly.",
        "",
        "Reproduce: `make train-keyword` (see docs/keywords.md); the run's settings are in `train_config.json`, "
        "the full evaluation report in `eval.json`.",
    ]
    (out_dir / "README.md").write_text("\n".join(lines) + "\n")
