#!/usr/bin/env bash
# Scale-out on a many-core server: N independent daemons ("shards", each with its own load generator and ports),
# each at one real-time load level of `streamer bench daemon`, all at once; the total held is the sum where every
# shard holds (p99 <= 100 ms). Usage: benchmarks/server_shards.sh [python]  (from the repo root)
set -u
python=${1:-python3}
shards() {  # model threads shards streams-per-shard
    local model=$1 threads=$2 count=$3 per=$4 i held=0
    for i in $(seq "$count"); do
        STREAMER_MODEL__INTRA_OP_THREADS=$threads timeout 90 "$python" -m streamer.cli.main bench daemon \
            --model "$model" --streams "$per" --no-baseline --duration-s 6 >"/tmp/shard$i.txt" 2>&1 &
    done
    wait
    for i in $(seq "$count"); do
        line=$(tail -n1 "/tmp/shard$i.txt")
        echo "  shard $i: $line"
        case $line in *"-> held"*) held=$((held + 1)) ;; esac
    done
    echo "$(date +%T) $(basename "$(dirname "$model")") threads=$threads: $count shards x $per streams," \
        "$held held -> $([ "$held" = "$count" ] && echo "$((count * per)) streams held" || echo "NOT held")"
}
shards models/keywords-lite/model.onnx 1 4 800
shards models/keywords-lite/model.onnx 1 7 700
shards models/keywords/model.onnx 3 4 300
shards models/keywords/model.onnx 2 7 150
