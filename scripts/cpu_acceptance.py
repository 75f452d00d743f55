"""The CPU acceptance ratios, read off one run of scripts/measure_cpu.sh (its last step).

    .venv/bin/python scripts/cpu_acceptance.py benchmark-results

Every ratio compares figures of the same run on the same machine: the servers' throughput and
latency from `benchmark.py` (labels `gunicorn`: the default settings; `gunicorn-float32` or
`gunicorn-bfloat16`: the other precision; `infinity-float32`, `infinity-bfloat16`), the
in-process baselines measured by the same `benchmark.py` run (`--baseline`: sentence-transformers
`encode`, float32 and bf16 autocast), and the quality figures of scripts/precision_quality.py.
"""

from __future__ import annotations

import glob
import json
import os
import statistics
import sys
from typing import Optional


def load(path: str) -> dict:
    with open(path) as handle:
        return json.load(handle)


def result(run: dict, label: str, concurrency: int, inputs: int = 1) -> Optional[dict]:
    return next((r for r in run["results"] if r["label"] == label and r["concurrency"] == concurrency
                 and r["inputs"] == inputs), None)


def main(folder: str) -> int:
    machine = open(os.path.join(folder, "machine.txt")).read()
    print(machine.strip())
    default = machine.split("default DTYPE=auto serves: ", 1)[1].split(";", 1)[0].strip()
    other = "float32" if default == "bfloat16" else "bfloat16"
    label = {default: "gunicorn", other: f"gunicorn-{other}"}  # precision -> the server serving it
    sweep, many = load(os.path.join(folder, "cpu-1text.json")), load(os.path.join(folder, "cpu-32texts.json"))
    peers = [load(path) for path in sorted(glob.glob(os.path.join(folder, "cpu-peers-*.json")))]
    base, base32 = sweep["baseline"], many["baseline"]
    rows: list[tuple[str, str, str, Optional[bool]]] = []

    def check(criterion: str, measured: str, passed: Optional[bool]) -> None:
        rows.append((criterion, measured, "holds" if passed else ("n/a" if passed is None else "fails"), passed))

    def ratios_to(peer: str, server: str) -> list[float]:
        out = []
        for run in peers:
            ours, theirs = result(run, server, 32), result(run, peer, 32)
            if ours and theirs and theirs["items_per_s"]:
                out.append(ours["items_per_s"] / theirs["items_per_s"])
        return out

    def throughput(server: str, tag: str, need: float, precision: str) -> None:
        c32 = result(sweep, server, 32)
        ratio = c32["items_per_s"] / base["batch32_texts_per_s"]
        measured = f"{c32['items_per_s']:.1f} / {base['batch32_texts_per_s']:.1f} = {ratio:.2f}"
        roof = ceiling(precision)
        if roof:
            measured += (f" (the model alone in {precision}, no HTTP, two processes: {roof:.1f} = "
                         f"{roof / base['batch32_texts_per_s']:.2f}; the server reaches {c32['items_per_s'] / roof:.0%} of it)")
        check(f"{tag}: c=32, 1 text ≥ {need} × in-process float32 `encode` batch-32", measured, ratio >= need)

    def ceiling(precision: str) -> Optional[float]:
        """items/s of the two model-only processes of measure_cpu.sh together, if it ran them."""
        total = 0.0
        for part in "ab":
            path = os.path.join(folder, f"ceiling-{precision}-{part}.txt")
            if not os.path.exists(path):
                return None
            total += float(open(path).read().split(":")[-1].split()[0])
        return total

    def latency_and_bulk(server: str, tag: str) -> None:
        c1 = result(sweep, server, 1)
        reference = base["single_p50_ms"]
        check(f"{tag}: c=1 p50 ≤ in-process single-text p50 (float32 `encode`) + 2 ms",
              f"{c1['p50_ms']:.2f} ms vs {reference:.2f} + 2 = {reference + 2:.2f} ms (bf16 autocast in process: "
              f"{base['bf16_single_p50_ms']:.2f} ms)", c1["p50_ms"] <= reference + 2)
        bulk = result(many, server, 4, 32)
        if bulk:
            ratio = bulk["items_per_s"] / base32["batch32_texts_per_s"]
            check(f"{tag}: 32 texts per request, c=4 ≥ 1.0 × in-process float32 `encode`",
                  f"{bulk['items_per_s']:.1f} / {base32['batch32_texts_per_s']:.1f} = {ratio:.2f}", ratio >= 1.0)

    def against(peer_precision: str, server: str, tag: str) -> None:
        ratios = ratios_to(f"infinity-{peer_precision}", server)
        criterion = f"{tag}: c=32 ≥ 1.5 × Infinity {peer_precision}"
        if not ratios:
            check(criterion, "Infinity not run (INFINITY_VENV unset)", None)
            return
        check(criterion, f"{min(ratios):.2f}–{max(ratios):.2f} over {len(ratios)} runs (mean "
              f"{statistics.mean(ratios):.2f})", min(ratios) >= 1.5)

    tag = f"default settings (`gunicorn`, {default})"
    throughput("gunicorn", tag, 1.0, default)
    latency_and_bulk("gunicorn", tag)
    against("float32", "gunicorn", tag)
    tag = f"`DTYPE=bfloat16` (`{label['bfloat16']}`)"
    throughput(label["bfloat16"], tag, 2.0, "bfloat16")
    against("bfloat16", label["bfloat16"], tag)
    tag = f"`DTYPE=float32` (`{label['float32']}`: the default where the CPU has no native bf16)"
    throughput(label["float32"], tag, 1.0, "float32")
    latency_and_bulk(label["float32"], tag)
    against("float32", label["float32"], tag)
    quality = os.path.join(folder, "quality.json")
    if os.path.exists(quality):
        figures = load(quality)["precisions"]["bfloat16"]
        check("`DTYPE=bfloat16`: min cosine to float32 ≥ 0.9999 over the fixed text set",
              f"{figures['min_cosine']:.6f} ({load(quality)['texts']} texts, served as {figures['served_as']})",
              figures["min_cosine"] >= 0.9999)
    print()
    print(f"In-process baselines (sweep run, {base['torch_threads']} torch threads): `encode` batch-32 "
          f"{base['batch32_texts_per_s']:.1f} texts/s float32, {base['bf16_batch32_texts_per_s']:.1f} bf16 autocast; "
          f"single text p50 {base['single_p50_ms']:.2f} ms float32, {base['bf16_single_p50_ms']:.2f} ms bf16.")
    print()
    print("| criterion | measured | verdict |")
    print("| --- | --- | --- |")
    for criterion, measured, verdict, _ in rows:
        print(f"| {criterion} | {measured} | {verdict} |")
    memory = os.path.join(folder, "memory.txt")
    if os.path.exists(memory):
        print()
        print(open(memory).read().strip())
    return 0 if all(passed is not False for *_, passed in rows) else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1] if len(sys.argv) > 1 else "benchmark-results"))
