"""Latency of a small request while a budget-sized one runs, against a live `python -m embedding_service`.

usage: .venv/bin/python scripts/budget_latency.py REPO_DIR PORT LABEL   (e.g. `. 18431 now`)
Starts the server from REPO_DIR on 127.0.0.1:PORT (MiniLM default, default settings), runs the
scenarios, prints one JSON line per scenario and stops the server (its own pid only).
"""

import json
import os
import random
import statistics
import subprocess
import sys
import threading
import time

import requests

repo, port, label = sys.argv[1], int(sys.argv[2]), sys.argv[3]
url = f"http://127.0.0.1:{port}"
env = dict(os.environ, HOST="127.0.0.1", PORT=str(port), LOG_LEVEL="WARNING", HF_HUB_OFFLINE="1",
           PYTHONPATH=repo, TOKENIZERS_PARALLELISM="false")
server = subprocess.Popen([sys.executable, "-m", "embedding_service"], cwd=repo, env=env,
                          stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
SMALL = {"input": "a short query about cats"}
WORDS = ["the", "market", "fell", "sharply", "today", "while", "neural", "networks", "learn", "representations"]


def english(rng, length):
    return " ".join(rng.choice(WORDS) for _ in range(length // 4))[:length]


def small():
    started = time.perf_counter()
    resp = requests.post(f"{url}/v1/embeddings", json=SMALL, timeout=300)
    return time.perf_counter() - started, resp.status_code


def scenario(name, body, window=None):
    """Send `body` in a thread; meanwhile small requests one after another until it answers (or
    `window` seconds pass); report the big request's status, time and server timings and the
    small requests' latencies."""
    result = {}

    def big():
        started = time.perf_counter()
        try:
            resp = requests.post(f"{url}/v1/embeddings", json=body, timeout=window or 300)
            result.update(status=resp.status_code, seconds=round(time.perf_counter() - started, 3),
                          tokenization_ms=resp.headers.get("X-Tokenization-Time"),
                          queue_ms=resp.headers.get("X-Queue-Time"), inference_ms=resp.headers.get("X-Inference-Time"),
                          error=(resp.json().get("error") if resp.status_code != 200 else None))
        except requests.Timeout:
            result.update(status="still running", seconds=round(time.perf_counter() - started, 3))

    thread = threading.Thread(target=big)
    began = time.perf_counter()
    thread.start()
    time.sleep(0.05)
    latencies = []
    while thread.is_alive() and time.perf_counter() - began < (window or 300):
        seconds, status = small()
        latencies.append(round(seconds, 3))
        assert status == 200, status
    thread.join()
    if isinstance(result.get("error"), dict):
        result["error"] = result["error"]["message"][:160]
    print(json.dumps({
        "server": label, "scenario": name, **result, "small_requests": len(latencies),
        "small_max_s": max(latencies) if latencies else None,
        "small_median_s": statistics.median(latencies) if latencies else None,
        "small_first_s": latencies[:3],
    }), flush=True)


try:
    deadline = time.time() + 180
    while time.time() < deadline:
        try:
            if requests.get(f"{url}/ready", timeout=2).status_code == 200:
                break
        except requests.RequestException:
            pass
        time.sleep(0.5)
    else:
        raise SystemExit("server did not become ready")
    for _ in range(3):
        small()
    alone = sorted(small()[0] for _ in range(10))
    print(json.dumps({"server": label, "scenario": "small alone", "median_s": round(statistics.median(alone), 4),
                      "max_s": round(alone[-1], 4)}), flush=True)
    rng = random.Random(0)
    instruction = "Represent this sentence for searching relevant passages: "  # 58 characters
    # L: 10 texts of 200,000 characters as the model sees them (instruction included): 2,000,000.
    long_body = {"input": [english(rng, 200_000 - len(instruction)) for _ in range(10)], "instruction": instruction}
    for run in (1, 2):
        scenario(f"L{run}: 10 x 200k chars + instruction (= MAX_INPUT_CHARS, sum = MAX_REQUEST_CHARS)", long_body)
    # A: instruction amplification: 64 one-character inputs, a 150,000-character instruction.
    scenario("A: 64 x 'a' + 150k-char instruction (9.6M chars as seen)", {"input": ["a"] * 64, "instruction": "x" * 150_000})
    # M: MAX_CLIENT_BATCH_SIZE inputs summing to MAX_REQUEST_CHARS with the instruction (observed 30 s).
    each = 2_000_000 // 2048 - len(instruction)
    scenario("M: 2048 x 918 chars + instruction (sum = MAX_REQUEST_CHARS), first 30 s",
             {"input": [english(rng, each) for _ in range(2048)], "instruction": instruction}, window=30)
finally:
    server.terminate()
    try:
        server.wait(20)
    except subprocess.TimeoutExpired:
        server.kill()
