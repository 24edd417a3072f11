"""Renders `examples/audio/keywords.wav`, the clip the README feeds to a fresh daemon: a sentence that is not a
keyword, then the shipped model's four keywords ("hey streamer", "lights on", "play music", "stop timer") with
pauses, spoken by RHVoice's `clb` voice (LGPL-2.1+, built from the CMU ARCTIC clb recordings); 16 kHz mono int16.
It writes `keywords.json` beside it: where each keyword is spoken (the test that feeds it checks the events).

    bash scripts/install-tts.sh          # RHVoice, once
    .venv/bin/python examples/make_keyword_demo.py
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import soundfile

from streamer.train.keyword.voices import SAMPLE_RATE_HZ, Prosody, Voice, render_many

RATE_HZ = SAMPLE_RATE_HZ
VOICE = Voice("rhvoice", "clb", "cmu-clb", "LGPL-2.1+ (RHVoice, Debian non-free)")
SENTENCE = "the weather is lovely today"
KEYWORDS = ("hey streamer", "lights on", "play music", "stop timer")
OUT = Path(__file__).parent / "audio" / "keywords.wav"


def speak(text: str) -> np.ndarray:
    """`text` by RHVoice at its default speed and pitch, float32 at RATE_HZ (the training recipe's renderer)."""
    return render_many(VOICE, [(text, Prosody())])[0]


def room_tone(seconds: float, rng: np.random.Generator) -> np.ndarray:
    """Quiet noise at -60 dBFS, as a microphone hears an empty room (never digital silence)."""
    return (rng.standard_normal(int(seconds * RATE_HZ)) * 10 ** (-60 / 20)).astype(np.float32)


def main() -> None:
    rng = np.random.default_rng(0)
    parts = [room_tone(1.0, rng), speak(SENTENCE), room_tone(1.0, rng)]
    spoken = []
    for phrase in KEYWORDS:
        start = sum(len(p) for p in parts)
        parts.append(speak(phrase))
        end = sum(len(p) for p in parts)
        spoken.append({"label": phrase.replace(" ", "_"), "start_s": start / RATE_HZ, "end_s": end / RATE_HZ})
        parts.append(room_tone(1.5, rng))
    audio = np.concatenate(parts)
    OUT.parent.mkdir(exist_ok=True)
    soundfile.write(OUT, audio, RATE_HZ, subtype="PCM_16")
    notes = {"voice": f"RHVoice {VOICE.name}", "sentence": SENTENCE, "keywords": spoken}
    OUT.with_suffix(".json").write_text(json.dumps(notes, indent=1) + "\n")
    print(f"{OUT}: {len(audio) / RATE_HZ:.1f} s; keywords at", ", ".join(f"{k['start_s']:.1f} s" for k in spoken))


if __name__ == "__main__":
    main()
