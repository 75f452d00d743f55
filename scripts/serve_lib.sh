# Sourced by the measure_*.sh scripts: the Python and the results folder (benchmark-results/, and
# DURATION, seconds per run, default 20), the machine line of a measurement, and Gunicorn servers
# started for it (stopped, by pid, when the script exits).
PY=.venv/bin/python
OUT=benchmark-results
DURATION=${DURATION:-20}
pids=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; }
trap cleanup EXIT

# machine_line FILE: the CPU model and core count, printed and written to FILE.
machine_line() {
  echo "CPU: $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ *//'), $(nproc) cores" | tee "$1"
}

# serve PORT LOG: Gunicorn with gunicorn.conf.py and the caller's environment (MODELS, DTYPE, ...)
# on PORT, its output in LOG; returns once /ready answers (at most 120 s).
serve() {
  PORT=$1 LOG_LEVEL=WARNING .venv/bin/gunicorn -c gunicorn.conf.py embedding_service.wsgi:app >"$2" 2>&1 &
  pids+=($!)
  for _ in $(seq 1 240); do curl -sf "localhost:$1/ready" >/dev/null && return 0; sleep 0.5; done
  echo "no answer from :$1 (see $2)" >&2
  return 1
}

# results_dir NAME: DIR=benchmark-results/NAME, made.
results_dir() { DIR=$OUT/$1; mkdir -p "$DIR"; }
