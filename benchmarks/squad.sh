#!/usr/bin/env bash
# SQuAD v1.1 benchmark: adapters vs full fine-tuning of the default model
# (all-MiniLM-L6-v2), official exact match / F1.
#
# Only dev-v1.1.json exists here, so it is split by article (deterministic,
# seed 0): 40 articles / 9180 questions to train, 8 articles / 1390 questions
# to evaluate (Normans, Amazon_rainforest, Packet_switching,
# American_Broadcasting_Company, Genghis_Khan, Pharmacy, Harvard_University,
# Jacksonville,_Florida).
#
# Budget, sized for < 60 min per configuration on 2 CPU cores: windows of 192
# wordpieces, doc_stride 128 (12488 training windows, 1926 eval windows),
# batch 32, 1 epoch = 390 steps. Measured (32 x 192 train step, CPU seconds):
# adapter 8.5 s, full ~9.8 s, i.e. ~5.7 / ~6.5 s wall on an otherwise idle
# 2-core machine -> ~37 / ~42 min of training + ~3 min features, eval and
# start-up. A machine shared with other training runs takes proportionally
# longer. Learning rates: the library defaults (adapter 1e-3, full 5e-5).
#
# Usage: benchmarks/squad.sh [RESULTS_FILE]    (default runs/squad/results.tsv)
# Env: OUT (default runs/squad), MODES (default "adapter full"), SQUAD_DEV,
# LEARNING_RATE (default: each mode's library default; when set, the run's
# output dir is $OUT/<mode>_lr<LEARNING_RATE>).
# A run that was interrupted resumes from its checkpoints when started again;
# delete $OUT/<mode> to start that configuration from scratch.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PY:-.venv/bin/python}
DEV=${SQUAD_DEV:-../shared/data/squad/dev-v1.1.json}
OUT=${OUT:-runs/squad}
RESULTS=${1:-$OUT/results.tsv}
MODES=${MODES:-adapter full}
MAX_SEQ_LENGTH=192
DOC_STRIDE=128
EPOCHS=1
BATCH=32
mkdir -p "$OUT" "$(dirname "$RESULTS")"

"$PY" -m keras_adapters.squad.split --input "$DEV" \
  --train_out "$OUT/train.json" --eval_out "$OUT/eval.json" \
  --eval_articles 8 --seed 0

if [ ! -s "$RESULTS" ]; then
  printf 'date\tcommit\tfine_tune_mode\tmax_seq_length\tdoc_stride\tepochs\tbatch\ttrained_params\texact_match\tf1\tminutes\tsplit\tlearning_rate\n' > "$RESULTS"
fi
for mode in $MODES; do
  start=$(date +%s)
  run="$mode${LEARNING_RATE:+_lr$LEARNING_RATE}"
  "$PY" run_squad.py --do_train --do_predict \
    --train_file "$OUT/train.json" --predict_file "$OUT/eval.json" \
    --fine_tune_mode "$mode" --max_seq_length "$MAX_SEQ_LENGTH" \
    --doc_stride "$DOC_STRIDE" --max_query_length 64 \
    --train_batch_size "$BATCH" --predict_batch_size 32 \
    --num_train_epochs "$EPOCHS" --warmup_proportion 0.1 \
    --save_checkpoints_steps 100 --seed 42 \
    ${LEARNING_RATE:+--learning_rate "$LEARNING_RATE"} \
    --output_dir "$OUT/$run" 2>&1 | tee "$OUT/$run.log"
  minutes=$(( ($(date +%s) - start + 30) / 60 ))
  value() { awk -F' = ' -v k="$1" '$1 == k {print $2}' "$OUT/$run/eval_results.txt"; }
  trained=$(sed -n 's/.*trained per task \([0-9,]*\).*/\1/p' "$OUT/$run.log" | tail -1 | tr -d ,)
  lr=$(sed -n 's/.*learning_rate=\([0-9.e+-]*\).*/\1/p' "$OUT/$run.log" | head -1)
  printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n' \
    "$(date -u +%Y-%m-%dT%H:%MZ)" "$(git rev-parse --short HEAD 2>/dev/null || echo -)" \
    "$mode" "$MAX_SEQ_LENGTH" "$DOC_STRIDE" "$EPOCHS" "$BATCH" "$trained" \
    "$(value exact_match)" "$(value f1)" "$minutes" \
    "dev-v1.1 by article: eval_articles=8 seed=0" "$lr" >> "$RESULTS"
  echo "squad.sh: $run: EM $(value exact_match) F1 $(value f1) in ${minutes} min -> $RESULTS"
done
