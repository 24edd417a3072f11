#!/usr/bin/env bash
# Daemon capacity on a many-core server: single real-time load levels of `streamer bench daemon` (a fresh daemon
# per level, p99 <= 100 ms to hold) for both shipped keyword models and several onnxruntime thread counts per call.
# A series stops at its first level not held. Usage: benchmarks/server_capacity.sh [python]  (from the repo root)
set -u
python=${1:-python3}
nproc; lscpu | grep -E 'Model name|^CPU\(s\)|Thread|L3' || true
"$python" -c "import onnxruntime, numpy, zmq; print('onnxruntime', onnxruntime.__version__, 'numpy', numpy.__version__, 'pyzmq', zmq.__version__)"
series() {  # model threads levels...
    local model=$1 threads=$2 n line
    shift 2
    for n in "$@"; do
        line=$(STREAMER_MODEL__INTRA_OP_THREADS=$threads timeout 90 "$python" -m streamer.cli.main bench daemon \
            --model "$model" --streams "$n" --no-baseline --duration-s 6 2>&1 | tail -1)
        echo "$(date +%T) $(basename "$(dirname "$model")") threads=$threads $line"
        case $line in *"-> held"*) ;; *) return ;; esac
    done
}
series models/keywords/model.onnx 1 100 150 200 250
series models/keywords/model.onnx 4 200 300 400 500 600
series models/keywords/model.onnx 8 300 450 600 800 1000
series models/keywords-lite/model.onnx 1 600 800 900
series models/keywords-lite/model.onnx 2 600 800 900 1000
