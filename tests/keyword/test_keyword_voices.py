"""The voice tables: held-out donors never train, every engine has a renderer, and installed engines render."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from streamer.errors import ConfigError
from streamer.train.keyword.voices import (
    CI_HELDOUT_VOICES,
    CI_VOICES,
    HELDOUT_VOICES,
    TRAIN_VOICES,
    Prosody,
    Voice,
    _command,
    available,
    render_many,
)


@pytest.mark.parametrize(("train", "held"), [(TRAIN_VOICES, HELDOUT_VOICES), (CI_VOICES, CI_HELDOUT_VOICES)])
def test_held_out_donors_never_train(train: tuple[Voice, ...], held: tuple[Voice, ...]) -> None:
    shared = {v.donor for v in train} & {v.donor for v in held}
    assert not shared, f"donors both trained on and held out: {sorted(shared)}"
    keys = [v.key for v in (*train, *held)]
    assert len(keys) == len(set(keys)), "a voice is listed twice"


def test_every_voice_names_a_licence() -> None:
    assert all(v.licence for v in (*TRAIN_VOICES, *HELDOUT_VOICES))
    restricted = [v for v in TRAIN_VOICES if "non-commercial" in v.licence]
    assert {v.engine for v in restricted} >= {"mbrola"}  # the model card must carry this restriction


def test_rhvoice_command_scales_rate_and_pitch_in_percent(tmp_path: Path) -> None:
    voice = Voice("rhvoice", "bdl", "cmu-bdl", "LGPL-2.1+")
    command = _command(voice, "hey streamer", Prosody(rate=1.2, pitch=0.85), tmp_path / "out.wav")
    assert command == ["RHVoice-test", "-p", "bdl", "-r", "120", "-t", "85", "-o", str(tmp_path / "out.wav")]


def test_unknown_engine_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="no single-call renderer"):
        _command(Voice("festival", "kal_diphone", "cmu-kal", "x"), "hi", Prosody(), tmp_path / "x.wav")


def test_voices_with_missing_data_are_not_available(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(shutil, "which", lambda tool: f"/usr/bin/{tool}")  # every engine "installed"
    ghosts = [
        Voice("festival", "no_such_diphone", "x", "x"),
        Voice("rhvoice", "no-such-voice", "x", "x"),
        Voice("mbrola", "mb-zz9", "x", "x"),
    ]
    assert available(ghosts) == []


@pytest.mark.parametrize(
    "voice",
    [v for v in TRAIN_VOICES if v.key in ("festival:us1_mbrola", "festival:don_diphone", "rhvoice:bdl", "rhvoice:clb")],
    ids=lambda v: v.key,
)
def test_installed_voices_render_speech(voice: Voice) -> None:
    if not available([voice]):
        pytest.skip(f"{voice.key} is not installed (scripts/install-tts.sh)")
    clips = render_many(voice, [("lights on", Prosody()), ("lights on", Prosody(rate=1.25))])
    assert all(0.3 * 16000 < len(c) < 3 * 16000 for c in clips)
    assert len(clips[1]) < len(clips[0])  # faster is shorter
    assert all(float(abs(c).max()) > 0.05 for c in clips)
