"""The exporter and `streamer check`/`streamer export` as users run them: real processes, real files."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from torch import nn

from streamer.errors import ExportError
from streamer.model.contract import ModelSpec
from streamer.model.export import export_module

STREAMER = [sys.executable, "-m", "streamer.cli.main"]

USER_MODULE = """
import torch
from torch import nn

class Kws(nn.Module):
    def __init__(self):
        super().__init__()
        self.gru = nn.GRU(10, 12, 2, batch_first=True)
        self.out = nn.Linear(12, 3)

    def forward(self, x, h):
        y, h = self.gru(x, h)
        return torch.softmax(self.out(y), dim=-1), h

def make():
    torch.manual_seed(0)
    return Kws()
"""


def run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*STREAMER, *args], capture_output=True, text=True, timeout=120)


def test_export_then_check_from_the_command_line(tmp_path: Path) -> None:
    (tmp_path / "user_kws.py").write_text(USER_MODULE)
    out = tmp_path / "kws.onnx"
    frontend = json.dumps({"kind": "logmel", "sample_rate_hz": 16000, "n_mels": 10})
    done = run(
        "export",
        f"{tmp_path}/user_kws.py:make",
        "--out",
        str(out),
        "--features",
        "10",
        "--labels",
        "_background,yes,no",
        "--scores",
        "probabilities",
        "--frontend",
        frontend,
        "--metadata",
        'streamer.detection={"threshold": 0.7}',
    )
    assert done.returncode == 0, done.stderr
    assert "verified against PyTorch" in done.stdout

    spec = ModelSpec.load(out)
    assert spec.labels == ["_background", "yes", "no"] and spec.scores == "probabilities"
    assert spec.frontend == {"kind": "logmel", "sample_rate_hz": 16000, "n_mels": 10}
    assert json.loads(spec.metadata["streamer.detection"]) == {"threshold": 0.7}

    checked = run("check", str(out), "--json")
    assert checked.returncode == 0, checked.stderr
    report = json.loads(checked.stdout)
    assert report["ok"] and report["classes"] == 3 and len(report["checks"]) == 4
    assert all(c["max_abs_error"] <= 1e-5 for c in report["checks"])


def test_check_refuses_a_broken_file_with_exit_code_3(tmp_path: Path) -> None:
    (tmp_path / "broken.onnx").write_bytes(b"nope")
    done = run("check", str(tmp_path / "broken.onnx"))
    assert done.returncode == 3
    assert "broken.onnx" in done.stderr


def test_export_usage_errors_exit_2(tmp_path: Path) -> None:
    done = run("export", "no_colon_here", "--out", str(tmp_path / "x.onnx"), "--features", "4")
    assert done.returncode == 2 and "expected 'file.py:name'" in done.stderr


class TimeMajor(nn.Module):
    """A classic mistake: a time-major GRU fed batch-major data. Runs, exports, but does not stream."""

    def __init__(self) -> None:
        super().__init__()
        self.gru = nn.GRU(6, 8, 1)  # batch_first=False
        self.out = nn.Linear(8, 2)

    def forward(self, x: torch.Tensor, h: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        y, h = self.gru(x, h)
        return self.out(y), h


def test_a_module_that_does_not_stream_fails_verification(tmp_path: Path) -> None:
    with pytest.raises(ExportError):
        export_module(TimeMajor(), tmp_path / "bad.onnx", features=6, state_shapes=[(1, 8)])
    assert not (tmp_path / "bad.onnx").exists()  # nothing left behind that could be served


def test_bidirectional_is_refused_with_a_reason(tmp_path: Path) -> None:
    class Bi(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.gru = nn.GRU(4, 4, batch_first=True, bidirectional=True)

    with pytest.raises(ExportError, match="bidirectional"):
        export_module(Bi(), tmp_path / "bi.onnx", features=4)


def test_frontend_metadata_the_daemon_cannot_build_is_refused(tmp_path: Path) -> None:
    from streamer.model.reference import RecurrentClassifier

    module = RecurrentClassifier("gru", 8, 8, 1, 2)
    with pytest.raises(ExportError, match="unknown kind 'wavelet'"):
        export_module(module, tmp_path / "m.onnx", features=8, frontend={"kind": "wavelet"})
    with pytest.raises(ExportError, match=r"unknown parameter\(s\) \['nonsense'\]"):
        export_module(module, tmp_path / "m.onnx", features=8, frontend={"kind": "logmel", "n_mels": 8, "nonsense": 1})
    assert not (tmp_path / "m.onnx").exists()
