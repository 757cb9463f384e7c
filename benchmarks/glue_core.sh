#!/usr/bin/env bash
# The README's GLUE figures: adapters vs full fine-tuning on MRPC (same seed,
# epochs, batch, max_seq_length; each mode at its default learning rate), plus
# STS-B (regression) and CoLA (Matthews) with adapters.
# Resumable: a run whose result line is already in the results file is skipped.
# Usage: bash benchmarks/glue_core.sh [results.jsonl]   (from the repo root)
set -uo pipefail
cd "$(dirname "$0")/.."
RESULTS=${1:-benchmarks/results/glue_core.jsonl}
DATA=${DATA:-../shared/data/glue_data}
OUT=${OUT:-runs/glue_core}
PY=${PY:-.venv/bin/python}
mkdir -p "$(dirname "$RESULTS")" "$OUT"; touch "$RESULTS"

run() {  # run NAME TASK ARGS...
  local name=$1 task=$2; shift 2
  if grep -q "\"name\": \"$name\"" "$RESULTS"; then echo "skip $name (done)"; return; fi
  local cmd="python run_classifier.py --task_name=$task --do_train --do_eval --data_dir=$DATA/$task --output_dir=$OUT/$name $*"
  echo "== $name: $cmd"
  local start=$(date +%s)
  if $PY ${cmd#python } > "$OUT/$name.log" 2>&1; then
    $PY -m benchmarks.append_result "$RESULTS" "$name" "$OUT/$name" $(( $(date +%s) - start )) "$cmd"
  else
    echo "FAILED $name, see $OUT/$name.log"; tail -3 "$OUT/$name.log"
  fi
}

run mrpc_adapter MRPC
run mrpc_full MRPC --fine_tune_mode=full
run stsb_adapter STS-B --num_train_epochs=1
run cola_adapter CoLA --num_train_epochs=1 --max_seq_length=64
run cola_adapter_3ep CoLA --num_train_epochs=3 --max_seq_length=64
