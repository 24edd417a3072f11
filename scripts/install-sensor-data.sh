#!/usr/bin/env bash
# Installs the real sensor data sets (seglearn watch, UEA BasicMotions) the data-only way: the wheels carry the
# files; their packages are never imported (they need pandas), streamer.train.datasets finds the files on disk.
set -euo pipefail
cd "$(dirname "$0")/.."
PIP="${PIP:-.venv/bin/pip}"
"$PIP" install -q --no-deps aeon==1.6.0 seglearn==1.2.5
