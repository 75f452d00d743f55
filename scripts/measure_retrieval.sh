#!/usr/bin/env bash
# The retrieval throughput table of CONCURRENCY_ANALYSIS.md ("Sparse and multi-vector outputs"),
# in one run on this machine: the tiny random-weight SPLADE and BGE-M3 of the test suite
# (tests/support/tiny_retrieval.py) served by Gunicorn (defaults, DTYPE=float32 as the references
# run) on :8083; benchmark.py's `sparse` (TEI /embed_sparse) and `pooling` (vLLM /pooling,
# token_embed) endpoints at 32 texts per request, concurrency 4, on a corpus of 256 texts of 24
# words; then each reference package in process on the same corpus, batch 32:
# sentence-transformers' SparseEncoder (SPLADE) and FlagEmbedding's BGEM3FlagModel (sparse, ColBERT;
# .venv-references, `make references`). DURATION: seconds per run (default 20).
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/serve_lib.sh
REF=${REFERENCES_PYTHON:-.venv-references/bin/python}
results_dir retrieval
PYTHONPATH=tests $PY -c "
from support.tiny_retrieval import build_bge_m3, build_splade
import os
if not os.path.exists('$DIR/splade/config.json'): build_splade('$DIR/splade')
if not os.path.exists('$DIR/bge-m3/config.json'): build_bge_m3('$DIR/bge-m3')
" >/dev/null 2>&1
$PY -c "import benchmark; print('\n'.join(benchmark.make_texts(256, 24)))" > "$DIR/corpus.txt"
machine_line "$DIR/machine.txt"
MODELS="splade=$DIR/splade,bge-m3=$DIR/bge-m3" DTYPE=float32 serve 8083 "$DIR/gunicorn.log"
for run in "sparse splade" "sparse bge-m3" "pooling bge-m3"; do
  set -- $run
  $PY benchmark.py --url http://localhost:8083 --endpoint "$1" --model "$2" --inputs 32 --concurrency 4 \
    --duration "$DURATION" --warmup 4 --corpus "$DIR/corpus.txt" --json "$DIR/service-$1-$2.json" --markdown
done
$PY scripts/reference_throughput.py sentence-transformers "$DIR/splade" "$DIR/corpus.txt" --seconds "$DURATION" \
  | tee "$DIR/reference-splade.json"
$REF scripts/reference_throughput.py flagembedding "$DIR/bge-m3" "$DIR/corpus.txt" --output sparse --seconds "$DURATION" \
  | tee "$DIR/reference-bge-m3-sparse.json"
$REF scripts/reference_throughput.py flagembedding "$DIR/bge-m3" "$DIR/corpus.txt" --output colbert --seconds "$DURATION" \
  | tee "$DIR/reference-bge-m3-colbert.json"
