#!/usr/bin/env bash
# Scale-out on a many-core server: N independent daemons ("shards", each with its own load generator and ports),
# each at one real-time load level of `streamer bench daemon`, all at once; the total held is the sum where every
# shard holds (p99 <= 100 ms). Usage: benchmarks/server_shards.sh [python] [series...]  (from the repo root)
# A series is "model setting shards streams-per-shard", the setting a [model] key=value (e.g. PARALLEL_CALLS=3).
set -u
python=${1:-python3}
shift || true
shards() {  # model setting shards streams-per-shard
    local model=$1 setting=$2 count=$3 per=$4 i held=0
    for i in $(seq "$count"); do
        env "STREAMER_MODEL__$setting" timeout 90 "$python" -m streamer.cli.main bench daemon \
            --model "$model" --streams "$per" --no-baseline --duration-s 6 >"/tmp/shard$i.txt" 2>&1 &
    done
    wait
    for i in $(seq "$count"); do
        line=$(tail -n1 "/tmp/shard$i.txt")
        echo "  shard $i: $line"
        case $line in *"-> held"*) held=$((held + 1)) ;; esac
    done
    echo "$(date +%T) $(basename "$(dirname "$model")") $setting: $count shards x $per streams," \
        "$held held -> $([ "$held" = "$count" ] && echo "$((count * per)) streams held" || echo "NOT held")"
}
if [ $# -eq 0 ]; then  # the series of docs/PERFORMANCE.md, "Many cores"
    set -- "models/keywords-lite/model.onnx INTRA_OP_THREADS=1 4 800" \
        "models/keywords-lite/model.onnx INTRA_OP_THREADS=1 7 700" \
        "models/keywords/model.onnx INTRA_OP_THREADS=3 4 300" \
        "models/keywords/model.onnx INTRA_OP_THREADS=2 7 150"
fi
for series in "$@"; do
    # shellcheck disable=SC2086 # a series is four words
    shards $series
done
