#!/usr/bin/env bash
# The vector cache's figures of CONCURRENCY_ANALYSIS.md ("Vector cache"), in one run on this
# machine: the bundled all-MiniLM-L6-v2 served by Gunicorn with its defaults, first without the
# cache (:8085), then with VECTOR_CACHE=local (:8086); benchmark.py's `openai` endpoint with a
# repeated-query workload (--repeat-fraction 0.5: each text is one of 64 popular queries half the
# time, a new text otherwise), 8 texts per request, concurrency 4, on benchmark.py's 24-word
# texts. Then the bytes the cache holds (embedding_cache_bytes) and its hits and misses
# (embedding_cache_lookups_total) from /metrics, and each worker's resident memory.
# DURATION: seconds per run (default 20).
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/serve_lib.sh
results_dir cache
machine_line "$DIR/machine.txt"
run() {  # run PORT NAME: the workload against :PORT, its table and JSON under NAME
  $PY benchmark.py --url "http://localhost:$1" --label "$2" --endpoint openai --inputs 8 --concurrency 4 \
    --repeat-fraction 0.5 --duration "$DURATION" --warmup 4 --json "$DIR/$2.json" --markdown
}
workers_rss() {  # the resident memory (MiB) of each Gunicorn worker of the master whose pid is $1
  for child in $(pgrep -P "$1"); do echo "worker $child: $(($(awk '/VmRSS/ {print $2}' /proc/$child/status) / 1024)) MiB"; done
}
MODEL_NAME=sentence-transformers/all-MiniLM-L6-v2 serve 8085 "$DIR/gunicorn-off.log"
run 8085 off
echo "without the cache:"; workers_rss "${pids[-1]}"
kill "${pids[-1]}"; sleep 2
MODEL_NAME=sentence-transformers/all-MiniLM-L6-v2 VECTOR_CACHE=local serve 8086 "$DIR/gunicorn-local.log"
run 8086 local
echo "with the cache:"; workers_rss "${pids[-1]}"
curl -s localhost:8086/metrics | grep -E '^embedding_cache_(bytes|lookups_total)' | tee "$DIR/cache-metrics.txt"
