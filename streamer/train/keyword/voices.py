"""The TTS voices keyword training renders with, and how each engine is driven (subprocess, 16 kHz float32 out)."""

from __future__ import annotations

import shutil
import subprocess
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import soundfile as sf
import soxr

from streamer.errors import ConfigError

SAMPLE_RATE_HZ = 16000


@dataclass(frozen=True)
class Voice:
    """One TTS voice: `engine` (espeak, mbrola, flite, festival, pico, rhvoice), its own voice name, licence note."""

    engine: str
    name: str
    donor: str  # the human (or synthesiser) behind it: hold-out splits are by donor, never by rendering
    licence: str

    @property
    def key(self) -> str:
        return f"{self.engine}:{self.name}"


@dataclass(frozen=True)
class Prosody:
    """Rendering variation: `rate` 1.0 = the voice's default speed (>1 faster); `pitch` 1.0 = default."""

    rate: float = 1.0
    pitch: float = 1.0


_ESPEAK_TRAIN_ACCENTS = ("en-us", "en", "en-gb-x-rp", "en-029", "en-gb-x-gbclan", "en-us-nyc")
_ESPEAK_HELDOUT_ACCENTS = ("en-gb-scotland", "en-gb-x-gbcwmd")
_ESPEAK_VARIANTS = ("m1", "m3", "m5", "m7", "f1", "f2", "f3", "f4")
# More of espeak-ng's voice variants (formant sets, breathiness, Klatt synthesis), for training only: each is
# another vocal tract over the same accent rules. The novelty ones (robots, whisper, croak) are left out.
_ESPEAK_MORE_VARIANTS = (
    "m2", "m4", "m6", "m8", "f5", "klatt", "klatt2", "klatt3", "Andy", "Annie", "adam", "anika", "aunty",
    "belinda", "boris", "david", "edward", "grandma", "grandpa", "john", "linda", "max", "norbert", "paul",
    "rob", "steph", "travis", "victor", "zac",
)  # fmt: skip
_GPL = "GPL-3 (espeak-ng)"


def _espeak(accents: Sequence[str], variants: Sequence[str] = _ESPEAK_VARIANTS) -> list[Voice]:
    return [Voice("espeak", f"{a}+{v}", donor=f"espeak-{a}", licence=_GPL) for a in accents for v in variants]


# Split by donor: the held-out voices share no human donor with the training voices (flite slt = festival slt).
TRAIN_VOICES: tuple[Voice, ...] = (
    *_espeak(_ESPEAK_TRAIN_ACCENTS, (*_ESPEAK_VARIANTS, *_ESPEAK_MORE_VARIANTS)),
    Voice("festival", "kal_diphone", "cmu-kal", "festvox (free use)"),
    Voice("mbrola", "mb-us1", "mbrola-us1", "mbrola voice: non-commercial use only"),
    Voice("mbrola", "mb-us2", "mbrola-us2", "mbrola voice: non-commercial use only"),
    Voice("mbrola", "mb-en1", "mbrola-en1", "mbrola voice: non-commercial use only"),
    Voice("flite", "kal16", "cmu-kal", "BSD-like (CMU flite)"),
    Voice("flite", "awb", "cmu-awb", "BSD-like (CMU flite)"),
    Voice("flite", "rms", "cmu-rms", "BSD-like (CMU flite)"),
    Voice("festival", "rab_diphone", "festvox-rab", "festvox (free use)"),
    Voice("pico", "en-US", "pico-en-US", "Apache-2.0 (SVOX pico, Debian non-free)"),
    # The mbrola donors again through festival's own prosody and lexicon (a different rendering of each word).
    Voice("festival", "us1_mbrola", "mbrola-us1", "mbrola voice: non-commercial use only"),
    Voice("festival", "us2_mbrola", "mbrola-us2", "mbrola voice: non-commercial use only"),
    Voice("festival", "en1_mbrola", "mbrola-en1", "mbrola voice: non-commercial use only"),
    Voice("festival", "don_diphone", "festvox-don", "festvox (free use)"),
    # RHVoice's statistical parametric voices: the most natural here. alan, bdl and clb are built from the CMU
    # ARCTIC recordings (alan = awb's donor); its slt shares the held-out donor cmu-slt and is left out.
    Voice("rhvoice", "alan", "cmu-awb", "LGPL-2.1+ (RHVoice, Debian non-free)"),
    Voice("rhvoice", "bdl", "cmu-bdl", "LGPL-2.1+ (RHVoice, Debian non-free)"),
    Voice("rhvoice", "clb", "cmu-clb", "LGPL-2.1+ (RHVoice, Debian non-free)"),
    Voice("rhvoice", "evgeniy-eng", "rhvoice-evgeniy", "CC-BY-NC-ND-4.0 (RHVoice): non-commercial use only"),
    Voice("rhvoice", "lyubov", "rhvoice-lyubov", "CC-BY-NC-ND-4.0 (RHVoice): non-commercial use only"),
)
HELDOUT_VOICES: tuple[Voice, ...] = (
    *_espeak(_ESPEAK_HELDOUT_ACCENTS[:1])[:4],
    Voice("mbrola", "mb-us3", "mbrola-us3", "mbrola voice: non-commercial use only"),
    Voice("flite", "slt", "cmu-slt", "BSD-like (CMU flite)"),
    Voice("festival", "ked_diphone", "festvox-ked", "festvox (free use)"),
    Voice("festival", "cmu_us_slt_arctic_hts", "cmu-slt", "festvox (free use)"),
    Voice("pico", "en-GB", "pico-en-GB", "Apache-2.0 (SVOX pico, Debian non-free)"),
)
# The espeak/flite subset present on a plain CI machine (scripts/install-system.sh).
CI_VOICES: tuple[Voice, ...] = (
    Voice("espeak", "en-us+m3", "espeak-en-us", _GPL),
    Voice("espeak", "en+f2", "espeak-en", _GPL),
    Voice("flite", "kal16", "cmu-kal", "BSD-like (CMU flite)"),
    Voice("flite", "awb", "cmu-awb", "BSD-like (CMU flite)"),
)
CI_HELDOUT_VOICES: tuple[Voice, ...] = (
    Voice("espeak", "en-gb-scotland+m1", "espeak-en-gb-scotland", _GPL),
    Voice("flite", "rms", "cmu-rms", "BSD-like (CMU flite)"),
)

_TOOLS = {
    "espeak": "espeak-ng",
    "mbrola": "espeak-ng",
    "flite": "flite",
    "festival": "festival",
    "pico": "pico2wave",
    "rhvoice": "RHVoice-test",
}
_FESTIVAL_VOICES = Path("/usr/share/festival/voices")
_RHVOICE_VOICES = Path("/usr/share/RHVoice/voices")


def _installed(voice: Voice) -> bool:
    if shutil.which(_TOOLS[voice.engine]) is None:
        return False
    if voice.engine == "mbrola":
        return Path("/usr/share/mbrola", voice.name.removeprefix("mb-")).exists()
    if voice.engine == "festival":
        return any(_FESTIVAL_VOICES.glob(f"*/{voice.name}"))
    if voice.engine == "rhvoice":
        return (_RHVOICE_VOICES / voice.name).exists()
    return True


def available(voices: Sequence[Voice]) -> list[Voice]:
    """The voices whose engine (and voice data) is installed here."""
    return [voice for voice in voices if _installed(voice)]


def _command(voice: Voice, text: str, prosody: Prosody, wav: Path) -> list[str]:
    if voice.engine in ("espeak", "mbrola"):
        words_per_min = str(round(165 * prosody.rate))
        pitch = str(int(np.clip(50 * prosody.pitch, 0, 99)))
        return ["espeak-ng", "-v", voice.name, "-s", words_per_min, "-p", pitch, "-w", str(wav), text]
    if voice.engine == "flite":
        return [
            "flite",
            "-voice",
            voice.name,
            "--setf",
            f"duration_stretch={1.0 / prosody.rate:.3f}",
            "--setf",
            f"int_f0_target_mean={round(110 * prosody.pitch)}",
            "-t",
            text,
            "-o",
            str(wav),
        ]
    if voice.engine == "pico":
        speed_pct, pitch_pct = round(100 * prosody.rate), round(100 * prosody.pitch)
        body = f"<speed level='{speed_pct}'><pitch level='{pitch_pct}'>{text}</pitch></speed>"
        return ["pico2wave", "-l", voice.name, "-w", str(wav), body]
    if voice.engine == "rhvoice":  # reads the text from stdin; rate and pitch in percent of the voice's default
        rate, pitch = str(round(100 * prosody.rate)), str(round(100 * prosody.pitch))
        return ["RHVoice-test", "-p", voice.name, "-r", rate, "-t", pitch, "-o", str(wav)]
    raise ConfigError(f"voice {voice.key}: engine {voice.engine!r} has no single-call renderer")


def _load_16k(wav: Path) -> np.ndarray:
    samples, rate_hz = sf.read(str(wav), dtype="float32", always_2d=True)
    mono = samples.mean(axis=1)
    if rate_hz != SAMPLE_RATE_HZ:
        mono = soxr.resample(mono, rate_hz, SAMPLE_RATE_HZ)
    return np.ascontiguousarray(mono, dtype=np.float32)


def _scheme_string(text: str) -> str:
    return '"' + text.replace("\\", " ").replace('"', " ") + '"'


def render_many(voice: Voice, items: Sequence[tuple[str, Prosody]]) -> list[np.ndarray]:
    """Render each (text, prosody) with `voice`; 16 kHz mono float32 arrays, in order."""
    with tempfile.TemporaryDirectory(prefix="streamer-tts-") as tmp:
        paths = [Path(tmp, f"{i}.wav") for i in range(len(items))]
        if voice.engine == "festival":
            # One festival process for all items: it costs ~0.5 s to start, ~20 ms per utterance after.
            lines = [f"(voice_{voice.name})"]
            for (text, prosody), path in zip(items, paths, strict=True):
                lines.append(f"(Parameter.set 'Duration_Stretch {1.0 / prosody.rate:.3f})")
                lines.append(f'(utt.save.wave (utt.synth (Utterance Text {_scheme_string(text)})) "{path}" \'riff)')
            script = Path(tmp, "render.scm")
            script.write_text("\n".join(lines) + "\n")
            _run(["festival", "--batch", str(script)], voice)
        else:
            for (text, prosody), path in zip(items, paths, strict=True):
                _run(_command(voice, text, prosody, path), voice, stdin=text if voice.engine == "rhvoice" else None)
        clips = []
        for (_, prosody), path in zip(items, paths, strict=True):
            clip = _load_16k(path)
            if voice.engine == "festival" and prosody.pitch != 1.0:
                clip = _shift_pitch(clip, prosody.pitch)
            clips.append(clip)
        return clips


def _shift_pitch(clip: np.ndarray, factor: float) -> np.ndarray:
    """Pitch shift by resampling, keeping duration roughly (festival has no simple pitch knob)."""
    shifted = soxr.resample(clip, SAMPLE_RATE_HZ, SAMPLE_RATE_HZ / factor)
    return np.asarray(shifted, dtype=np.float32)


def _run(command: list[str], voice: Voice, stdin: str | None = None) -> None:
    data = stdin.encode() if stdin is not None else None
    result = subprocess.run(command, input=data, capture_output=True, timeout=120, check=False)
    if result.returncode != 0:
        message = result.stderr.decode(errors="replace").strip()[-300:]
        raise ConfigError(f"TTS voice {voice.key}: {command[0]} exited {result.returncode}: {message}")


def trim_silence(clip: np.ndarray, threshold_db: float = -40.0, pad_ms: float = 30.0) -> np.ndarray:
    """Cut leading/trailing audio quieter than `threshold_db` below the clip's peak (10 ms frames)."""
    frame = SAMPLE_RATE_HZ // 100
    usable = len(clip) // frame * frame
    if usable == 0:
        return clip
    energy = np.sqrt(np.mean(clip[:usable].reshape(-1, frame) ** 2, axis=1) + 1e-12)
    loud = np.flatnonzero(20 * np.log10(energy / energy.max()) > threshold_db)
    if loud.size == 0:
        return clip[:0]
    pad = int(pad_ms * SAMPLE_RATE_HZ / 1000)
    start = max(0, loud[0] * frame - pad)
    stop = min(len(clip), (loud[-1] + 1) * frame + pad)
    return clip[start:stop]
