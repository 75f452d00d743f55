"""Interactive queries beside a bulk client, against a running server: the priorities table of
CONCURRENCY_ANALYSIS.md.

Three phases, each `--seconds` long:
1. idle: one client sends single-text queries one after another (a pause of `--pause` seconds
   between them); their latency percentiles;
2. bulk alone: `--bulk-connections` clients each send `--bulk-texts` texts per request, with
   `priority` `--bulk-priority` in the body (vLLM's field), back to back; texts/s;
3. both at once: the same bulk load and the same query client; query percentiles and bulk texts/s.

    python scripts/priority_mix.py --url http://localhost:8080 --seconds 30

Prints query p50/p95/p99 idle and under load, their ratio, and bulk texts/s alone and with queries.
`--mode long` sends the bulk client 32-text requests of long documents at priority 0 instead (the
fairness case: a large request never delays a small one).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sys
import time

import aiohttp

sys.path.insert(0, os.path.join(os.path.dirname(__file__), ".."))
from benchmark import make_mixed_texts, make_texts, percentile  # noqa: E402


async def queries(session: aiohttp.ClientSession, url: str, texts: list[str], until: float, pause: float) -> list[float]:
    latencies, index = [], 0
    while time.perf_counter() < until:
        body = json.dumps({"input": texts[index % len(texts)]})
        began = time.perf_counter()
        async with session.post(url, data=body, headers={"Content-Type": "application/json"}) as response:
            await response.read()
            if response.status != 200:
                raise SystemExit(f"query answered {response.status}")
        latencies.append(time.perf_counter() - began)
        index += 1
        await asyncio.sleep(pause)
    return latencies


async def bulk(session: aiohttp.ClientSession, url: str, batches: list[list[str]], until: float, priority: int) -> int:
    done, index = 0, 0
    while time.perf_counter() < until:
        body = json.dumps({"input": batches[index % len(batches)], "priority": priority})
        async with session.post(url, data=body, headers={"Content-Type": "application/json"}) as response:
            await response.read()
            if response.status != 200:
                raise SystemExit(f"bulk request answered {response.status}: {(await response.text())[:200]}")
        if time.perf_counter() <= until:
            done += len(batches[index % len(batches)])
        index += 1
    return done


async def main_async(args: argparse.Namespace) -> dict:
    url = args.url.rstrip("/") + "/v1/embeddings"
    short = make_texts(256, words=8, seed=1)
    if args.mode == "long":
        long = [t for t in make_mixed_texts(2000, median_words=200, p90_words=400, max_words=450, seed=2)]
        batches = [long[i:i + 32] for i in range(0, len(long) - 32, 32)]
    else:
        corpus = make_texts(4096, words=24, seed=3)
        batches = [corpus[i:i + args.bulk_texts] for i in range(0, len(corpus) - args.bulk_texts + 1, args.bulk_texts)]
    timeout = aiohttp.ClientTimeout(total=600)
    async with aiohttp.ClientSession(timeout=timeout, connector=aiohttp.TCPConnector(limit=0)) as session:
        await queries(session, url, short, time.perf_counter() + 2, args.pause)  # warm-up
        idle = sorted(await queries(session, url, short, time.perf_counter() + args.seconds, args.pause))
        until = time.perf_counter() + args.seconds
        alone = sum(await asyncio.gather(*(bulk(session, url, batches, until, args.bulk_priority)
                                           for _ in range(args.bulk_connections))))
        until = time.perf_counter() + args.seconds
        loaded_bulk, loaded = await asyncio.gather(
            asyncio.gather(*(bulk(session, url, batches, until, args.bulk_priority) for _ in range(args.bulk_connections))),
            queries(session, url, short, until, args.pause),
        )
    loaded = sorted(loaded)
    result = {
        "mode": args.mode,
        "idle_ms": {q: round(percentile(idle, q) * 1000, 1) for q in (50, 95, 99)},
        "loaded_ms": {q: round(percentile(loaded, q) * 1000, 1) for q in (50, 95, 99)},
        "queries": [len(idle), len(loaded)],
        "bulk_alone_texts_per_s": round(alone / args.seconds, 1),
        "bulk_with_queries_texts_per_s": round(sum(loaded_bulk) / args.seconds, 1),
    }
    result["p95_ratio"] = round(result["loaded_ms"][95] / result["idle_ms"][95], 2)
    result["bulk_ratio"] = round(result["bulk_with_queries_texts_per_s"] / max(result["bulk_alone_texts_per_s"], 1e-9), 2)
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--url", default="http://localhost:8080")
    parser.add_argument("--seconds", type=float, default=30.0)
    parser.add_argument("--pause", type=float, default=0.05, help="seconds between two queries")
    parser.add_argument("--bulk-connections", type=int, default=4)
    parser.add_argument("--bulk-texts", type=int, default=512)
    parser.add_argument("--bulk-priority", type=int, default=10)
    parser.add_argument("--mode", choices=("priority", "long"), default="priority")
    parser.add_argument("--json", default=None)
    args = parser.parse_args()
    if args.mode == "long":
        args.bulk_priority, args.bulk_connections = 0, 1
    result = asyncio.run(main_async(args))
    print(json.dumps(result, indent=2))
    if args.json:
        with open(args.json, "w") as handle:
            json.dump(result, handle, indent=2)


if __name__ == "__main__":
    main()
