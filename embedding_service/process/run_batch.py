"""`embedding-service run-batch`: bulk jobs offline, in OpenAI's batch-file format as
`vllm run-batch` reads it.

    embedding-service run-batch -i requests.jsonl -o results.jsonl
    embedding-service run-batch -i corpus.txt -o vectors.jsonl --model all-MiniLM-L6-v2

Each input line is `{"custom_id", "method": "POST", "url", "body"}` for an embedding, rerank,
score or sparse route (:data:`ROUTES`); each output line is `{"id", "custom_id", "response":
{"status_code", "request_id", "body"}, "error"}`, the body exactly what the route answers over
HTTP (a 4xx included, with `error` null). A line that cannot be read (not JSON, fields missing, a
route not served here) becomes a line whose `error` says why (`response` null); it never stops
the run. A plain text file (`.txt`), or a column (`--column`) of a CSV (`.csv`) or Parquet
(`.parquet`) file, is the common "embed this corpus" case: its texts go to `/v1/embeddings` in
requests of `--texts-per-request`, one output line per request (`custom_id`
"line-<first>-<last>", 1-based rows). With `-o` ending in `.parquet` the vectors are also
written as a Parquet file, a row per text (`row`, `text`, `embedding`: list<float32>), from the
resumable JSON Lines beside it (`<output>.jsonl`) once every request has run.

The models load in this process and the requests go to the service's own app without a socket
or an HTTP server: the same routes, validation and engines, so the same vectors. `--concurrency`
requests are in flight at once, which the batcher packs into forward passes.

Resumable: the lines whose `custom_id` is already in the output are skipped; the output is
written in input order and flushed line by line, so a crash (even `kill -9`) loses at most the
requests in flight, and a torn last line is cut before the run goes on. `--shard I/N` (or
`--shards N` with Kubernetes' `JOB_COMPLETION_INDEX`) takes the input lines whose number is I
modulo N: an Indexed Job runs N pods over one file, each writing its own output
(`{shard}` in `-o` is replaced by I). A progress bar (tqdm) shows the rate and the time left.
"""

from __future__ import annotations

import argparse
import csv
import json
import logging
import os
import sys
import threading
import uuid
from collections import deque
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any, Iterator, Optional, Sequence

#: The routes a batch line may name (POST): embeddings, reranking, scoring, sparse vectors.
ROUTES = frozenset({
    "/v1/embeddings", "/embeddings", "/embed", "/v1/embed", "/v2/embed", "/api/embed",
    "/rerank", "/v1/rerank", "/v2/rerank", "/score", "/v1/score",
    "/embed_sparse", "/v1/sparse_embeddings", "/pooling", "/classify", "/v1/classify", "/predict",
})


@dataclass
class Line:
    """One request to run: its `custom_id`, `url` and `body`, or the `error` that makes it one
    that cannot run."""

    custom_id: Optional[str]
    url: str = ""
    body: Any = None
    error: Optional[str] = None
    #: A corpus line's row numbers, one per text of its body.
    rows: Sequence[int] = ()


def read_batch(path: str) -> Iterator[Line]:
    """The lines of an OpenAI batch file (JSON Lines), each checked."""
    with open(path, encoding="utf-8") as handle:
        for number, raw in enumerate(handle, 1):
            if not raw.strip():
                continue
            try:
                item = json.loads(raw)
            except json.JSONDecodeError as exc:
                yield Line(None, error=f"line {number} is not JSON ({exc.msg} at character {exc.pos})")
                continue
            if not isinstance(item, dict):
                yield Line(None, error=f"line {number} is not a JSON object")
                continue
            custom_id = item.get("custom_id")
            if not isinstance(custom_id, str) or not custom_id:
                yield Line(None, error=f"line {number} has no custom_id (a non-empty string)")
            elif str(item.get("method", "POST")).upper() != "POST":
                yield Line(custom_id, error=f"method must be POST; got {str(item.get('method'))[:20]!r}")
            elif item.get("url") not in ROUTES:
                yield Line(custom_id, error=f"url {str(item.get('url'))[:80]!r} is not a batch route; one of {', '.join(sorted(ROUTES))}")
            elif not isinstance(item.get("body"), dict):
                yield Line(custom_id, error="body must be a JSON object")
            else:
                yield Line(custom_id, item["url"], item["body"])


def read_corpus(path: str, column: Optional[str], per_request: int, model: Optional[str]) -> Iterator[Line]:
    """A text file's non-empty lines, or a CSV file's `column`, as `/v1/embeddings` requests of
    `per_request` texts."""
    def texts() -> Iterator[tuple[int, str]]:
        if path.endswith(".parquet"):
            import pyarrow.parquet as pq

            names = pq.read_schema(path).names
            if column is None or column not in names:
                raise SystemExit(f"run-batch: --column must name one of the Parquet columns {names}")
            values = pq.read_table(path, columns=[column]).column(column).to_pylist()
            yield from ((number, text) for number, text in enumerate(values, 1) if text)
            return
        with open(path, encoding="utf-8", newline="") as handle:
            if path.endswith(".csv"):
                reader = csv.DictReader(handle)
                if column is None or column not in (reader.fieldnames or []):
                    raise SystemExit(f"run-batch: --column must name one of the CSV columns {reader.fieldnames}")
                for number, row in enumerate(reader, 2):
                    if row[column]:
                        yield number, row[column]
            else:
                for number, raw in enumerate(handle, 1):
                    if raw.strip():
                        yield number, raw.rstrip("\n")

    group: list[tuple[int, str]] = []
    for item in texts():
        group.append(item)
        if len(group) == per_request:
            yield _corpus_line(group, model)
            group = []
    if group:
        yield _corpus_line(group, model)


def _corpus_line(group: list[tuple[int, str]], model: Optional[str]) -> Line:
    body: dict = {"input": [text for _, text in group]}
    if model:
        body["model"] = model
    return Line(f"line-{group[0][0]}-{group[-1][0]}", "/v1/embeddings", body, rows=[number for number, _ in group])


def done_ids(path: str) -> set[str]:
    """The custom_ids already in the output; a torn last line (a crash mid-write) is cut off."""
    if not os.path.exists(path):
        return set()
    with open(path, "rb+") as handle:
        data = handle.read()
        end = data.rfind(b"\n") + 1
        if end < len(data):
            handle.truncate(end)
    found = set()
    for raw in data[:end].splitlines():
        try:
            custom_id = json.loads(raw).get("custom_id")
        except (json.JSONDecodeError, AttributeError):
            continue
        if isinstance(custom_id, str):
            found.add(custom_id)
    return found


def answer(line: Line, client: Any) -> dict:
    """The output line of `line`: the route's answer through `client`, or its error."""
    out: dict = {"id": f"batch_req_{uuid.uuid4().hex}", "custom_id": line.custom_id, "response": None, "error": None}
    if line.error is not None:
        out["error"] = {"code": "invalid_request", "message": line.error}
        return out
    resp = client.post(line.url, json=line.body)
    body = resp.get_json(silent=True)
    out["response"] = {"status_code": resp.status_code, "request_id": resp.headers.get("X-Request-ID"),
                       "body": body if body is not None else resp.get_data(as_text=True)}
    return out


def shard_of(spec: Optional[str], shards: Optional[int]) -> tuple[int, int]:
    """(index, count) from `--shard I/N`, or `--shards N` with JOB_COMPLETION_INDEX; (0, 1) for none."""
    if spec:
        index, _, count = spec.partition("/")
        i, n = int(index), int(count)
    elif shards:
        i, n = int(os.environ.get("JOB_COMPLETION_INDEX", "0")), shards
    else:
        return 0, 1
    if not 0 <= i < n:
        raise SystemExit(f"run-batch: shard {i} is not in 0..{n - 1}")
    return i, n


def run(lines: Iterator[Line], output: str, app: Any, concurrency: int = 8, shard: tuple[int, int] = (0, 1),
        progress: bool = True, total: Optional[int] = None) -> dict:
    """Run `lines` (this shard's) through `app`, appending their answers to `output` in order;
    returns counts: `written`, `skipped` (already done), `errors` (lines that could not run),
    `refused` (answered with a 4xx or 5xx)."""
    from tqdm import tqdm

    done = done_ids(output)
    counts = {"written": 0, "skipped": 0, "errors": 0, "refused": 0}
    local = threading.local()

    def call(line: Line) -> dict:
        client = getattr(local, "client", None)
        if client is None:
            client = local.client = app.test_client()
        return answer(line, client)

    index, count = shard
    bar = tqdm(total=total, unit="line", disable=not progress, file=sys.stderr, dynamic_ncols=True)
    pending: deque[Future] = deque()
    with open(output, "a", encoding="utf-8") as sink, ThreadPoolExecutor(concurrency) as pool:
        def drain(keep: int) -> None:
            while len(pending) > keep:
                result = pending.popleft().result()
                sink.write(json.dumps(result, ensure_ascii=False) + "\n")
                sink.flush()
                counts["written"] += 1
                counts["errors"] += result["error"] is not None
                counts["refused"] += result["response"] is not None and result["response"]["status_code"] >= 400
                bar.update(1)

        for number, line in enumerate(lines):
            if number % count != index:
                continue
            if line.custom_id is not None and line.custom_id in done:
                counts["skipped"] += 1
                bar.update(1)
                continue
            if line.custom_id is not None:
                done.add(line.custom_id)
            pending.append(pool.submit(call, line))
            drain(2 * concurrency)
        drain(0)
    bar.close()
    return counts


def write_parquet(jsonl: str, path: str, corpus: Iterator[Line]) -> int:
    """The vectors of a corpus run (its output `jsonl`, its input lines `corpus`) as a Parquet
    file at `path`: a row per text, `row` (its line or row number), `text`, `embedding`
    (list<float32>), in input order; returns the rows written. The texts of a refused request
    are left out (its output line says why)."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    answers = {}
    with open(jsonl, encoding="utf-8") as handle:
        for raw in handle:
            item = json.loads(raw)
            response = item.get("response") or {}
            if response.get("status_code") == 200:
                answers[item["custom_id"]] = [row["embedding"] for row in response["body"]["data"]]
    rows, texts, vectors = [], [], []
    for line in corpus:
        found = answers.get(line.custom_id or "")
        if found is None:
            continue
        rows.extend(line.rows)
        texts.extend(line.body["input"])
        vectors.extend(found)
    table = pa.table({"row": pa.array(rows, pa.int64()), "text": pa.array(texts, pa.string()),
                      "embedding": pa.array(vectors, pa.list_(pa.float32()))})
    pq.write_table(table, path)
    return len(rows)


def main(argv: Optional[Sequence[str]] = None) -> int:
    parser = argparse.ArgumentParser(prog="embedding-service run-batch", description=__doc__.split("\n\n")[0])
    parser.add_argument("-i", "--input", required=True,
                        help="OpenAI batch file (.jsonl), text file (.txt), CSV (.csv) or Parquet (.parquet)")
    parser.add_argument("-o", "--output", required=True, help="output batch file (JSON Lines), or for a corpus .parquet "
                        "(the vectors, beside the resumable <output>.jsonl); `{shard}` is replaced by the shard index")
    parser.add_argument("--concurrency", type=int, default=8, help="requests in flight at once (default 8)")
    parser.add_argument("--shard", metavar="I/N", help="take the lines whose number is I modulo N")
    parser.add_argument("--shards", type=int, help="N shards, this one JOB_COMPLETION_INDEX (a Kubernetes Indexed Job)")
    parser.add_argument("--model", help="corpus input: the `model` of each request")
    parser.add_argument("--column", help="CSV or Parquet input: the column holding the texts")
    parser.add_argument("--texts-per-request", type=int, default=32, help="corpus input: texts per request (default 32)")
    parser.add_argument("--no-progress", action="store_true", help="no progress bar")
    args = parser.parse_args(argv)
    shard = shard_of(args.shard, args.shards)
    output = args.output.replace("{shard}", str(shard[0]))
    corpus = args.input.endswith((".txt", ".csv", ".parquet"))
    parquet = output.endswith(".parquet")
    if parquet and not corpus:
        parser.error("a Parquet output is for a corpus input (.txt, .csv, .parquet); a batch file's answers are JSON Lines")
    if corpus:
        lines = read_corpus(args.input, args.column, args.texts_per_request, args.model)
    else:
        lines = read_batch(args.input)
    answers = output + ".jsonl" if parquet else output

    from .boot import local_app

    app = local_app()
    logging.getLogger("embedding_service.access").setLevel(logging.WARNING)  # a line per request: the output says it
    counts = run(lines, answers, app, args.concurrency, shard, progress=not args.no_progress)
    print(f"run-batch: {counts['written']} lines written to {answers} ({counts['refused']} answered with an error "
          f"status, {counts['errors']} that could not run), {counts['skipped']} already there", file=sys.stderr)
    if parquet:
        mine = (line for number, line in enumerate(read_corpus(args.input, args.column, args.texts_per_request, args.model))
                if number % shard[1] == shard[0])
        print(f"run-batch: {write_parquet(answers, output, mine)} vectors written to {output}", file=sys.stderr)
    return 0
