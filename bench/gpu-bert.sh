#!/usr/bin/env bash
# GPU benchmark of berth's BERT trainer against the Hugging Face reference on the same card, in one go:
#   1. shared/tools/gpu-anchor.py — HF transformers BERT, bf16 autocast, fused AdamW (the reference)
#   2. python3 -m berth_bert bench — ours: BERT-Large SQuAD fine-tune and inference, seq 384, batch 32, bf16
# then bench/gpu-bert.py prints the ratios. Everything lands in $OUT (default bench/.bench-out/gpu).
#   bench/gpu-bert.sh            the real run (needs CUDA; the reference also needs transformers)
#   bench/gpu-bert.sh --tiny     a seconds-long CPU rehearsal of the same path (tiny model, no reference)
#   bench/gpu-bert.sh --e2e      instead of throughput: the demo jobs on the GPU (torchrun, bf16 pretraining,
#                                fp16 + grad scaler and bf16 + torch.compile fine-tuning, SIGTERM, ONNX export)
# The anchor is looked for in $BERTH_GPU_ANCHOR, ../shared/tools, shared/tools, then .device-carry/
# (where a copy travels to the device machine, which gets the repo but not ../shared).
set -euo pipefail
repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
out="${OUT:-$repo/bench/.bench-out/gpu}"
py="${PYTHON:-python3}"
mkdir -p "$out"
export PYTHONPATH="$repo/payloads/bert${PYTHONPATH:+:$PYTHONPATH}" PYTHONUNBUFFERED=1

e2e() {
  # BERTH_E2E_LAUNCH / _HALF / _EXTRA let a CPU rehearse this (plain python3, bf16, a few steps).
  local w data="$repo/payloads/bert/demo/data" rc pid
  local launch=(${BERTH_E2E_LAUNCH:-torchrun --nproc_per_node 1}) half="${BERTH_E2E_HALF:-fp16}"
  local extra=(${BERTH_E2E_EXTRA:-})
  w="$(mktemp -d)"
  local squad=(squad --train-file "$data/train.json" --predict-file "$data/dev.json" --max-seq-length 128
               --doc-stride 64 --max-answer-length 8 --batch-size 32 --lr 2e-3 --log-every 50
               --init-from "$w/pretrain/model")
  "${launch[@]}" -m berth_bert pretrain --train-file "$data/corpus.txt" --model-config tiny --vocab-size 3000 \
    --max-seq-length 128 --batch-size 32 --lr 1e-3 --max-steps 200 --log-every 50 --precision bf16 \
    --output-dir "$w/pretrain" "${extra[@]}" | grep -v '"METADATA"\|PARAMETER'
  "$py" -m berth_bert "${squad[@]}" --epochs 2 --precision "$half" --output-dir "$w/half" "${extra[@]}" \
    | grep -v '"METADATA"\|PARAMETER'
  "$py" -m berth_bert "${squad[@]}" --epochs 2 --precision bf16 --compile --output-dir "$w/bf16c" "${extra[@]}" \
    | grep -v '"METADATA"\|PARAMETER'
  # SIGTERM once training is under way: expect exit 75 and a checkpoint.
  "$py" -m berth_bert "${squad[@]}" --epochs 50 --log-every 1 --output-dir "$w/term" >"$w/term.log" 2>&1 &
  pid=$!
  until grep -q '"step": \[0, 3\]' "$w/term.log" || ! kill -0 "$pid" 2>/dev/null; do sleep 0.1; done
  kill -TERM "$pid" || true
  rc=0; wait "$pid" || rc=$?
  "$py" -m berth_bert export-onnx --init-from "$w/half/model" --output "$w/model.onnx"
  { for run in half bf16c; do echo "$run: $(tr -d '\n ' < "$w/$run/results.json")"; done
    echo "sigterm: exit $rc, latest $(cat "$w/term/checkpoints/latest")"
    echo "onnx: $(stat -c %s "$w/model.onnx") bytes"; } | tee "$out/e2e-summary.txt"
}
if [ "${1:-}" = "--e2e" ]; then
  e2e
  exit 0
fi
if [ "${1:-}" = "--tiny" ]; then
  bench_args=(--model-config tiny --seq-length 64 --batch-size 4 --train-steps 3 --infer-steps 3 --warmup-steps 1
              --precision bf16 --device cpu)
  anchor=""
else
  bench_args=(--model-config large --seq-length 384 --batch-size 32 --train-steps 20 --infer-steps 30
              --warmup-steps 6 --precision bf16 --device cuda)
  anchor=""
  for candidate in "${BERTH_GPU_ANCHOR:-}" "$repo/../shared/tools/gpu-anchor.py" "$repo/shared/tools/gpu-anchor.py" \
                   "$repo/.device-carry/gpu-anchor.py"; do
    if [ -n "$candidate" ] && [ -f "$candidate" ]; then anchor="$candidate"; break; fi
  done
  [ -n "$anchor" ] || echo "gpu-bert: gpu-anchor.py not found; reporting our figures without the reference" >&2
fi

# Ours (eager) first, then the reference, then ours compiled last and time-capped: compiling BERT-Large
# takes a while, and the eager-vs-reference figures must not be lost to it.
"$py" -m berth_bert bench "${bench_args[@]}" --json-out "$out/berth-bench.json" 2>&1 | grep -v '"METADATA"' \
  | tee "$out/berth-bench.log" || echo "gpu-bert: our bench failed; see berth-bench.log" >&2
# Our model folder must load in Hugging Face transformers where it is installed (the GPU machine).
"$py" "$repo/bench/gpu-bert.py" hf-check "$out" 2>&1 | tee "$out/hf-check.log" || echo "gpu-bert: hf-check failed" >&2
if [ -n "$anchor" ]; then
  OUT="$out" "$py" "$anchor" 2>&1 | tee "$out/anchor.log"
fi
if [ "${1:-}" != "--tiny" ]; then
  timeout "${BERTH_COMPILE_TIMEOUT:-180}" "$py" -m berth_bert bench "${bench_args[@]}" --variant compiled \
    --json-out "$out/berth-bench-compiled.json" 2>&1 | grep -v '"METADATA"' | tee "$out/berth-bench-compiled.log" \
    || echo "gpu-bert: the compiled bench failed or ran out of time" >&2
fi
"$py" "$repo/bench/gpu-bert.py" summary "$out" | tee "$out/summary.txt"
