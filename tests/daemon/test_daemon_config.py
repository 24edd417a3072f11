"""Configuration: defaults without a file, file < environment < command line, errors naming source, key, value."""

from __future__ import annotations

import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

from streamer.daemon.config import DaemonConfig, load_config, to_toml
from streamer.errors import ConfigError

REPO = Path(__file__).resolve().parents[2]


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "streamer.toml"
    path.write_text(text)
    return path


def test_defaults_need_no_file() -> None:
    config = load_config(None)
    assert config.model.path == Path("models/keywords/model.onnx")
    assert config.ingest.endpoint == "tcp://127.0.0.1:5555" and config.metrics.host == "127.0.0.1"


def test_file_then_environment_then_command_line(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = write(tmp_path, "[batch]\nmax_batch = 10\nmax_delay_ms = 1.0\n[streams]\ngap_policy = 'reset'\n")
    monkeypatch.setenv("STREAMER_BATCH__MAX_BATCH", "20")
    monkeypatch.setenv("STREAMER_MODEL__PATH", "env.onnx")
    config = load_config(path, {"model": {"path": "cli.onnx"}})
    assert config.batch.max_batch == 20  # environment beats the file
    assert config.batch.max_delay_ms == 1.0 and config.streams.gap_policy == "reset"  # file beats defaults
    assert config.model.path == Path("cli.onnx")  # command line beats the environment


def test_bad_value_names_file_key_value_and_what_is_allowed(tmp_path: Path) -> None:
    path = write(tmp_path, "[streams]\ngap_policy = 'skip'\n")
    with pytest.raises(ConfigError) as caught:
        load_config(path)
    message = str(caught.value)
    assert str(path) in message and "streams.gap_policy" in message and "skip" in message
    assert "'continue', 'reset' or 'bridge'" in message


def test_unknown_key_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"batch\.max_batches"):
        load_config(write(tmp_path, "[batch]\nmax_batches = 3\n"))


def test_bad_environment_value_names_the_variable(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("STREAMER_METRICS__PORT", "99999")
    with pytest.raises(ConfigError, match="environment STREAMER_METRICS__PORT"):
        load_config(None)


def test_not_toml_is_a_config_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="not valid TOML"):
        load_config(write(tmp_path, "[batch\n"))


def test_printed_config_is_toml_that_loads_back_to_the_same(tmp_path: Path) -> None:
    config = load_config(REPO / "configs" / "keywords-network.toml")
    text = to_toml(config)
    tomllib.loads(text)
    assert load_config(write(tmp_path, text)) == config


@pytest.mark.parametrize("name", ["keywords-network.toml", "keywords-mic.toml", "sensors.toml"])
def test_shipped_configs_are_valid(name: str) -> None:
    assert isinstance(load_config(REPO / "configs" / name), DaemonConfig)


def test_config_check_cli_exit_codes(tmp_path: Path) -> None:
    good = subprocess.run(
        [sys.executable, "-m", "streamer.cli.main", "config", "check", str(REPO / "configs" / "sensors.toml")],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert good.returncode == 0 and 'policy = "refuse_newest"' in good.stdout
    bad = subprocess.run(
        [
            sys.executable,
            "-m",
            "streamer.cli.main",
            "config",
            "check",
            str(write(tmp_path, "[batch]\nmax_batch = 0\n")),
        ],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert bad.returncode == 2 and "batch.max_batch" in bad.stderr


def test_mic_optional_device_argument_is_normalised() -> None:
    from streamer.cli.daemon import normalize_argv

    assert normalize_argv(["serve", "--mic", "pulse", "--model", "m.onnx"]) == [
        "serve", "--mic", "--mic-device", "pulse", "--model", "m.onnx"]  # fmt: skip
    assert normalize_argv(["serve", "--mic", "--model", "m.onnx"]) == ["serve", "--mic", "--model", "m.onnx"]
    assert normalize_argv(["feed", "--mic", "x"]) == ["feed", "--mic", "x"]
