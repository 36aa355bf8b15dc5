#!/usr/bin/env bash
# The CPU demo as two containers — exactly the jobs berth submits: (a) MLM-pretrain a tiny BERT on the demo
# corpus, (b) fine-tune it on the demo SQuAD set and score the held-out dev set. Prints exact match and F1.
# Usage: payloads/bert/demo/run-demo.sh [RESULTS_DIR]   (default: a new temp dir; needs berth/bert-cpu:dev,
#        built by docker/build-bert-cpu-image.sh)
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
image="${BERTH_BERT_CPU_IMAGE:-berth/bert-cpu:dev}"
results="${1:-$(mktemp -d /tmp/berth-demo.XXXXXX)}"
mkdir -p "$results/pretrain" "$results/squad"
data="$here/data"

start=$(date +%s)
docker run --rm -v "$data:/data:ro" -v "$results/pretrain:/results" "$image" \
  python3 -m berth_bert pretrain --train-file /data/corpus.txt --model-config tiny --vocab-size 3000 \
    --max-seq-length 128 --batch-size 32 --lr 1e-3 --max-steps 200 --warmup 0.1 --save-every 100 --log-every 20 \
  | grep -v '"METADATA"'
docker run --rm -v "$data:/data:ro" -v "$results/pretrain/model:/init:ro" -v "$results/squad:/results" "$image" \
  python3 -m berth_bert squad --train-file /data/train.json --predict-file /data/dev.json --init-from /init \
    --max-seq-length 128 --doc-stride 64 --max-answer-length 8 --batch-size 32 --lr 2e-3 --epochs 2 \
    --warmup 0.1 --save-every 100 --log-every 20 \
  | grep -v '"METADATA"'
echo "demo: $(( $(date +%s) - start ))s; model in $results/squad/model, scores in $results/squad/results.json:"
cat "$results/squad/results.json"
