"""`embedding-service run-batch`: OpenAI's batch-file format in and out, the same answers as the
HTTP routes, bad lines as error lines, a corpus file, shards, and a resume after `kill -9` that
neither loses nor repeats a line."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time

import numpy as np
import pytest

from conftest import app_from
from embedding_service.process.run_batch import read_batch, read_corpus, run
from support.paths import ROOT
from support.texts import MINILM


def write_lines(path, lines) -> str:
    with open(path, "w", encoding="utf-8") as handle:
        for line in lines:
            handle.write((line if isinstance(line, str) else json.dumps(line)) + "\n")
    return str(path)


def read_output(path) -> list[dict]:
    with open(path, encoding="utf-8") as handle:
        return [json.loads(raw) for raw in handle]


def request(custom_id, url, body):
    return {"custom_id": custom_id, "method": "POST", "url": url, "body": body}


@pytest.fixture(scope="module")
def batch_app(retrieval):
    return app_from({"MODELS": f"{MINILM},m3={retrieval['m3']}"})


def test_the_answers_are_the_http_routes_answers_and_bad_lines_are_error_lines(batch_app, tmp_path):
    texts = [f"text number {i} about cats and markets" for i in range(40)]
    lines = [request(f"emb-{i}", "/v1/embeddings", {"input": texts[i:i + 4]}) for i in range(0, 40, 4)]
    lines += [
        request("rerank", "/v1/rerank", {"query": "a cat", "documents": texts[:5], "top_n": 3}),
        request("score", "/score", {"text_1": "a cat", "text_2": texts[:3]}),
        request("sparse", "/embed_sparse", {"inputs": texts[:2], "model": "m3"}),
        request("refused", "/v1/embeddings", {"input": []}),
        "{not json",
        request("wrong-url", "/v1/chat/completions", {"messages": []}),
        {"custom_id": "wrong-method", "method": "GET", "url": "/v1/embeddings", "body": {}},
    ]
    source = write_lines(tmp_path / "in.jsonl", lines)
    output = str(tmp_path / "out.jsonl")
    counts = run(read_batch(source), output, batch_app, concurrency=4, progress=False)
    assert counts == {"written": len(lines), "skipped": 0, "errors": 3, "refused": 1}
    out = read_output(output)
    assert [o["custom_id"] for o in out] == [line["custom_id"] if isinstance(line, dict) else None for line in lines]
    client = batch_app.test_client()
    for line, result in zip(lines, out):
        if not isinstance(line, dict) or result["error"] is not None:
            assert result["response"] is None and result["error"]["code"] == "invalid_request"
            continue
        expected = client.post(line["url"], json=line["body"])
        assert result["response"]["status_code"] == expected.status_code and result["id"].startswith("batch_req_")
        body, want = result["response"]["body"], expected.get_json()
        if line["url"] == "/v1/embeddings" and expected.status_code == 200:
            np.testing.assert_allclose([d["embedding"] for d in body["data"]], [d["embedding"] for d in want["data"]], atol=1e-6)
            assert body["usage"] == want["usage"]
        elif line["custom_id"] == "rerank":
            assert [r["index"] for r in body["results"]] == [r["index"] for r in want["results"]]
            np.testing.assert_allclose([r["relevance_score"] for r in body["results"]],
                                       [r["relevance_score"] for r in want["results"]], atol=1e-6)
        elif line["custom_id"] == "score":
            np.testing.assert_allclose([d["score"] for d in body["data"]], [d["score"] for d in want["data"]], atol=1e-6)
        elif line["custom_id"] == "sparse":
            assert [[e["index"] for e in row] for row in body] == [[e["index"] for e in row] for row in want]
        else:
            assert body["error"]["param"] == want["error"]["param"] == "input"
    assert "not JSON" in out[-3]["error"]["message"] and "not a batch route" in out[-2]["error"]["message"]


def test_a_corpus_file_and_shards_cover_every_line_once(batch_app, tmp_path):
    corpus = write_lines(tmp_path / "corpus.txt", [f"sentence {i}" for i in range(10)] + ["", "sentence 10"])
    outputs = []
    for index in (0, 1):
        output = str(tmp_path / f"out-{index}.jsonl")
        run(read_corpus(corpus, None, 3, None), output, batch_app, concurrency=2, shard=(index, 2), progress=False)
        outputs.append(read_output(output))
    ids = [o["custom_id"] for out in outputs for o in out]
    assert sorted(ids) == sorted(["line-1-3", "line-4-6", "line-7-9", "line-10-12"]) and len(ids) == len(set(ids))
    by_id = {o["custom_id"]: o for out in outputs for o in out}
    vectors = [d["embedding"] for d in by_id["line-10-12"]["response"]["body"]["data"]]  # the blank line is skipped
    expected = batch_app.test_client().post("/v1/embeddings", json={"input": ["sentence 9", "sentence 10"]}).get_json()
    np.testing.assert_allclose(vectors, [d["embedding"] for d in expected["data"]], atol=1e-6)


@pytest.mark.slow
def test_a_run_killed_with_sigkill_resumes_without_losing_or_repeating_a_line(tmp_path):
    lines = [request(f"req-{i}", "/v1/embeddings", {"input": [f"text {i} " * 20, f"more {i} " * 30]}) for i in range(600)]
    source = write_lines(tmp_path / "in.jsonl", lines)
    output = tmp_path / "out.jsonl"
    command = [sys.executable, "-m", "embedding_service.cli", "run-batch", "-i", source, "-o", str(output),
               "--no-progress", "--concurrency", "4"]
    env = {**os.environ, "MODEL_NAME": MINILM, "DEVICE": "cpu", "LOG_LEVEL": "WARNING", "PYTHONPATH": ROOT}
    first = subprocess.Popen(command, cwd=tmp_path, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    deadline = time.monotonic() + 180
    while time.monotonic() < deadline and first.poll() is None:
        if output.exists() and len(read_batch_ids(output)) >= 80:
            break
        time.sleep(0.1)
    assert first.poll() is None, first.stderr.read().decode()[-2000:]
    first.send_signal(signal.SIGKILL)
    first.wait(timeout=30)
    with open(output, "ab") as handle:  # a torn line, as a kill mid-write leaves one
        handle.write(b'{"id": "batch_req_torn", "custom_id": "req-')
    killed_at = len(read_batch_ids(output))
    assert 80 <= killed_at < len(lines)
    second = subprocess.run(command, cwd=tmp_path, env=env, capture_output=True, text=True, timeout=600)
    assert second.returncode == 0, second.stderr[-2000:]
    assert f"{killed_at} already there" in second.stderr
    out = read_output(output)  # every line whole: the torn one was cut
    assert [o["custom_id"] for o in out] == [line["custom_id"] for line in lines]  # in order, none lost, none twice
    assert all(o["response"]["status_code"] == 200 for o in out)


def read_batch_ids(path) -> list[str]:
    ids = []
    with open(path, "rb") as handle:
        for raw in handle:
            try:
                ids.append(json.loads(raw)["custom_id"])
            except json.JSONDecodeError:
                pass
    return ids


def test_the_indexed_job_runs_run_batch_over_its_shards(monkeypatch):
    """deploy/kubernetes/run-batch-job.yaml: pod i of an Indexed Job takes shard i of `completions`."""
    import yaml

    from embedding_service.process.run_batch import shard_of

    with open(os.path.join(ROOT, "deploy", "kubernetes", "run-batch-job.yaml"), encoding="utf-8") as handle:
        job = next(doc for doc in yaml.safe_load_all(handle) if doc and doc["kind"] == "Job")
    spec = job["spec"]
    assert spec["completionMode"] == "Indexed" and spec["template"]["spec"]["restartPolicy"] == "OnFailure"
    command = spec["template"]["spec"]["containers"][0]["command"]
    assert command[:4] == ["python", "-m", "embedding_service.cli", "run-batch"]
    args = command[4:]
    shards = int(args[args.index("--shards") + 1])
    assert shards == spec["completions"] and "{shard}" in args[args.index("-o") + 1]
    for index in range(shards):
        monkeypatch.setenv("JOB_COMPLETION_INDEX", str(index))
        assert shard_of(None, shards) == (index, shards)
    with pytest.raises(SystemExit):
        monkeypatch.setenv("JOB_COMPLETION_INDEX", str(shards))
        shard_of(None, shards)


def test_a_parquet_column_becomes_a_parquet_of_vectors(batch_app, tmp_path, monkeypatch):
    import pyarrow as pa
    import pyarrow.parquet as pq

    from embedding_service.process.run_batch import main

    texts = [f"document {i} about cats" for i in range(7)]
    pq.write_table(pa.table({"id": list(range(8)), "body": texts[:3] + [""] + texts[3:]}), tmp_path / "docs.parquet")
    monkeypatch.setenv("MODEL_NAME", MINILM)
    monkeypatch.setenv("LOG_LEVEL", "WARNING")
    output = tmp_path / "vectors.parquet"
    assert main(["-i", str(tmp_path / "docs.parquet"), "--column", "body", "-o", str(output), "--no-progress",
                 "--texts-per-request", "3"]) == 0
    table = pq.read_table(output).to_pydict()
    assert table["row"] == [1, 2, 3, 5, 6, 7, 8] and table["text"] == texts  # the empty row left out
    expected = batch_app.test_client().post("/v1/embeddings", json={"input": texts}).get_json()["data"]
    np.testing.assert_allclose(table["embedding"], [row["embedding"] for row in expected], atol=1e-6)
    assert len(read_output(str(output) + ".jsonl")) == 3  # the resumable answers beside it
    with pytest.raises(SystemExit):  # a batch file's answers stay JSON Lines
        main(["-i", write_lines(tmp_path / "in.jsonl", []), "-o", str(tmp_path / "x.parquet")])
