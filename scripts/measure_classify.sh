#!/usr/bin/env bash
# The classification and scoring throughput of CONCURRENCY_ANALYSIS.md ("Classification and
# scoring"), in one run on this machine: the bundled all-MiniLM-L6-v2 and the test suite's tiny
# three-label classifier (tests/support/tiny_classifiers.py) served by Gunicorn with its defaults
# on :8084; benchmark.py's `score` (vLLM /score: one text against 32, MiniLM cosine) and `predict`
# (TEI /predict: 32 texts) endpoints, concurrency 4, on benchmark.py's 24-word texts, with the
# in-process baseline (MiniLM's batch-32 `encode`) beside the /score run. DURATION: seconds per run
# (default 20).
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/serve_lib.sh
results_dir classify
PYTHONPATH=tests $PY -c "
from support.tiny_classifiers import build_classifier
import os
if not os.path.exists('$DIR/sentiment/config.json'): build_classifier('$DIR/sentiment')
" >/dev/null 2>&1
machine_line "$DIR/machine.txt"
MODELS="sentence-transformers/all-MiniLM-L6-v2,sentiment=$DIR/sentiment" serve 8084 "$DIR/gunicorn.log"
$PY benchmark.py --url http://localhost:8084 --endpoint score --model all-MiniLM-L6-v2 --inputs 32 --concurrency 4 \
  --duration "$DURATION" --warmup 4 --baseline --json "$DIR/score-minilm.json" --markdown
$PY benchmark.py --url http://localhost:8084 --endpoint predict --model sentiment --inputs 32 --concurrency 4 \
  --duration "$DURATION" --warmup 4 --json "$DIR/predict-sentiment.json" --markdown
