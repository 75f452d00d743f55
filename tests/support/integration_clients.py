"""The client half of the integration matrix: it runs in the client libraries' own virtualenv
(`.venv-integrations`, requirements-integrations.txt), never inside pytest, and drives each
library against a running server exactly as a user would.

    python tests/support/integration_clients.py < request.json

The request is `{"url": "http://127.0.0.1:PORT", "group": "litellm", "snippets": {name: code},
"out": "/path/results.json"}`: every case function of the group and every snippet (README code
naming `http://localhost:8080`, replaced by `url`) runs in turn, and `out` receives
`{name: result}` (stdout is left to the libraries' own chatter). A result is what the case
returned (`texts` + `vectors`, `query` + `documents` + `ranked`, ...), or `{"error": {"type",
"message", "status"}}`, or `{"missing": "..."}` when the library cannot be imported. Each case has
`CASE_SECONDS` to finish. Only the standard library is imported at module level, so the test
module imports the shared texts from here.
"""

from __future__ import annotations

import asyncio
import importlib.util
import json
import os
import signal
import sys
from typing import Any, Callable

README_BASE = "http://localhost:8080"
CASE_SECONDS = 120
MODEL = "all-MiniLM-L6-v2"
TEXTS = ["a cat sits on the mat", "a kitten rests on a rug", "the stock market fell"]
QUERY = "What is deep learning?"
DOCUMENTS = [
    "The weather is nice today.",
    "Deep learning is a subset of machine learning that uses neural networks.",
    "Stock prices fell sharply on Monday.",
]
RELEVANT = DOCUMENTS[1]
SNIPPET_NAMES = ("texts", "vectors", "query", "documents", "ranked", "scores", "names", "model", "instruction")
CASES: dict[str, dict[str, Callable[[str], dict]]] = {}


def case(group: str):
    def register(func: Callable[[str], dict]) -> Callable[[str], dict]:
        CASES.setdefault(group, {})[func.__name__] = func
        return func

    return register


def embedded(vectors: Any) -> dict:
    return {"texts": TEXTS, "vectors": vectors}


def ranked(indices: Any) -> dict:
    return {"query": QUERY, "documents": DOCUMENTS, "ranked": list(indices)}


# --- OpenAI, Cohere and Ollama SDKs -------------------------------------------------------------
@case("openai")
def openai_alias(url: str) -> dict:
    from openai import OpenAI

    client = OpenAI(base_url=f"{url}/v1", api_key="unused", timeout=60)
    result = client.embeddings.create(model="text-embedding-3-small", input=TEXTS)
    return embedded([d.embedding for d in result.data])


@case("openai")
def openai_models(url: str) -> dict:
    from openai import OpenAI

    listed = OpenAI(base_url=f"{url}/v1", api_key="unused", timeout=60).models.list()
    return {"names": [m.id for m in listed.data]}


@case("cohere")
def cohere_v1_embed(url: str) -> dict:
    import cohere

    client = cohere.Client(base_url=url, api_key="unused", timeout=60)
    return embedded(client.embed(texts=TEXTS, model=MODEL, input_type="search_document").embeddings)


@case("cohere")
def cohere_v2_embed(url: str) -> dict:
    import cohere

    client = cohere.ClientV2(base_url=url, api_key="unused", timeout=60)
    result = client.embed(texts=TEXTS, model=MODEL, input_type="search_document", embedding_types=["float"])
    return embedded(result.embeddings.float_)


@case("cohere")
def cohere_v2_async_embed(url: str) -> dict:
    import cohere

    async def embed() -> Any:
        client = cohere.AsyncClientV2(base_url=url, api_key="unused", timeout=60)
        return await client.embed(texts=TEXTS, model=MODEL, input_type="search_query", embedding_types=["float"])

    return embedded(asyncio.run(embed()).embeddings.float_)


@case("cohere")
def cohere_v2_embedding_types(url: str) -> dict:
    import cohere

    client = cohere.ClientV2(base_url=url, api_key="unused", timeout=60)
    kinds = ["float", "int8", "uint8", "binary", "ubinary"]
    result = client.embed(texts=TEXTS, model=MODEL, input_type="search_document", embedding_types=kinds)
    return {**embedded(result.embeddings.float_), "types": {k: getattr(result.embeddings, k) for k in kinds[1:]}}


@case("cohere")
def cohere_v1_rerank(url: str) -> dict:
    import cohere

    client = cohere.Client(base_url=url, api_key="unused", timeout=60)
    return ranked(r.index for r in client.rerank(query=QUERY, documents=DOCUMENTS, top_n=3).results)


@case("cohere")
def cohere_v2_rerank(url: str) -> dict:
    import cohere

    client = cohere.ClientV2(base_url=url, api_key="unused", timeout=60)
    return ranked(r.index for r in client.rerank(model=MODEL, query=QUERY, documents=DOCUMENTS).results)


@case("ollama")
def ollama_tagged_name(url: str) -> dict:
    import ollama

    return embedded(ollama.Client(host=url, timeout=60).embed(model=f"{MODEL}:latest", input=TEXTS).embeddings)


@case("ollama")
def ollama_catalogue(url: str) -> dict:
    import ollama

    client = ollama.Client(host=url, timeout=60)
    shown = client.show(MODEL)
    return {
        "names": [m.model for m in client.list().models],
        "running": [m.model for m in client.ps().models],
        "show": {"details": shown.details.model_dump() if shown.details else None, "modelinfo": shown.modelinfo},
    }


# --- huggingface_hub (run by both virtualenvs: 1.x here, the service's 2.x) --------------------
@case("huggingface_hub")
def hub_feature_extraction(url: str) -> dict:
    from huggingface_hub import InferenceClient

    client = InferenceClient(model=url, timeout=60)
    return embedded([client.feature_extraction(text)[0] for text in TEXTS])


@case("huggingface_hub")
def hub_sentence_similarity(url: str) -> dict:
    from huggingface_hub import InferenceClient

    scores = InferenceClient(model=url, timeout=60).sentence_similarity(TEXTS[0], other_sentences=TEXTS[1:])
    return {"texts": TEXTS, "scores": scores}


@case("huggingface_hub")
def hub_text_classification(url: str) -> dict:
    """TEI's `/predict` as the model URL (the server's classifier): the client keeps the first
    entry of TEI's one-input answer, the best label."""
    from huggingface_hub import InferenceClient

    out = InferenceClient(model=f"{url}/predict", timeout=60).text_classification(TEXTS[0])
    first = out[0] if isinstance(out, list) else out
    return {"text": TEXTS[0], "labels": [{"label": first.label, "score": first.score}]}


@case("huggingface_hub")
def hub_async_feature_extraction(url: str) -> dict:
    from huggingface_hub import AsyncInferenceClient

    async def embed() -> list:
        client = AsyncInferenceClient(model=url, timeout=60)
        return await asyncio.gather(*(client.feature_extraction(text) for text in TEXTS))

    return embedded([array[0] for array in asyncio.run(embed())])


# --- LangChain ---------------------------------------------------------------------------------
@case("langchain")
def langchain_openai_default_token_ids(url: str) -> dict:
    """The default `check_embedding_ctx_length=True`: tiktoken ids are sent instead of the text."""
    import tiktoken
    from langchain_openai import OpenAIEmbeddings

    embeddings = OpenAIEmbeddings(model=MODEL, base_url=f"{url}/v1", api_key="unused", timeout=60)
    cl100k = tiktoken.get_encoding("cl100k_base")
    out: dict = {"text": TEXTS[0], "ids": cl100k.encode(TEXTS[0]), "large_text": TEXTS[1], "large_ids": cl100k.encode(TEXTS[1])}
    out["token_vector"] = embeddings.embed_documents([TEXTS[0]])[0]
    try:
        embeddings.embed_documents([TEXTS[1]])
        out["large_outcome"] = {"status": 200}
    except Exception as exc:  # the server's refusal, as the client reports it
        out["large_outcome"] = failure(exc)
    return out


@case("langchain")
def langchain_ollama_validated(url: str) -> dict:
    from langchain_ollama import OllamaEmbeddings

    embeddings = OllamaEmbeddings(model=MODEL, base_url=url, validate_model_on_init=True)
    return embedded(embeddings.embed_documents(TEXTS))


@case("langchain")
def langchain_huggingface_endpoint(url: str) -> dict:
    from langchain_huggingface import HuggingFaceEndpointEmbeddings

    embeddings = HuggingFaceEndpointEmbeddings(model=url)
    return embedded(embeddings.embed_documents(TEXTS[:2]) + [embeddings.embed_query(TEXTS[2])])


# --- LlamaIndex --------------------------------------------------------------------------------
@case("llama_index")
def llama_openai_like(url: str) -> dict:
    from llama_index.embeddings.openai_like import OpenAILikeEmbedding

    model = OpenAILikeEmbedding(model_name=MODEL, api_base=f"{url}/v1", api_key="unused")
    return embedded(model.get_text_embedding_batch(TEXTS))


@case("llama_index")
def llama_text_embeddings_inference(url: str) -> dict:
    from llama_index.embeddings.text_embeddings_inference import TextEmbeddingsInference

    model = TextEmbeddingsInference(model_name=MODEL, base_url=url)
    return embedded(model.get_text_embedding_batch(TEXTS[:2]) + [model.get_query_embedding(TEXTS[2])])


@case("llama_index")
def llama_text_embeddings_inference_async(url: str) -> dict:
    from llama_index.embeddings.text_embeddings_inference import TextEmbeddingsInference

    model = TextEmbeddingsInference(model_name=MODEL, base_url=url)
    return embedded(asyncio.run(model.aget_text_embedding_batch(TEXTS)))


@case("llama_index")
def llama_ollama(url: str) -> dict:
    from llama_index.embeddings.ollama import OllamaEmbedding

    model = OllamaEmbedding(model_name=MODEL, base_url=url)
    return embedded(model.get_text_embedding_batch(TEXTS))


# --- Haystack ----------------------------------------------------------------------------------
@case("haystack")
def haystack_document_embedder(url: str) -> dict:
    from haystack import Document
    from haystack.components.embedders import OpenAIDocumentEmbedder
    from haystack.utils import Secret

    embedder = OpenAIDocumentEmbedder(api_key=Secret.from_token("unused"), model=MODEL, api_base_url=f"{url}/v1")
    documents = embedder.run(documents=[Document(content=t) for t in TEXTS])["documents"]
    return embedded([d.embedding for d in documents])


# --- LiteLLM -----------------------------------------------------------------------------------
def litellm_embedding(model: str, api_base: str) -> dict:
    import litellm

    result = litellm.embedding(model=model, input=TEXTS, api_base=api_base, api_key="unused", timeout=60)
    return embedded([d["embedding"] for d in result.data])


@case("litellm")
def litellm_openai(url: str) -> dict:
    return litellm_embedding(f"openai/{MODEL}", f"{url}/v1")


@case("litellm")
def litellm_hosted_vllm(url: str) -> dict:
    return litellm_embedding(f"hosted_vllm/{MODEL}", f"{url}/v1")


@case("litellm")
def litellm_infinity(url: str) -> dict:
    return litellm_embedding(f"infinity/{MODEL}", url)


@case("litellm")
def litellm_ollama(url: str) -> dict:
    return litellm_embedding(f"ollama/{MODEL}", url)


@case("litellm")
def litellm_cohere(url: str) -> dict:
    return litellm_embedding(f"cohere/{MODEL}", f"{url}/v2/embed")


@case("litellm")
def litellm_rerank_cohere(url: str) -> dict:
    import litellm

    result = litellm.rerank(model=f"cohere/{MODEL}", query=QUERY, documents=DOCUMENTS, api_base=url, api_key="unused")
    return ranked(r["index"] for r in result.results)


@case("litellm")
def litellm_rerank_huggingface(url: str) -> dict:
    """TEI's rerank shape: `texts`, `truncation_direction`, `raw_scores`, `return_text`."""
    import litellm

    result = litellm.rerank(model=f"huggingface/{MODEL}", query=QUERY, documents=DOCUMENTS, api_base=url, api_key="unused")
    return ranked(r["index"] for r in result.results)


# --- Chroma ------------------------------------------------------------------------------------
@case("chromadb")
def chroma_ollama(url: str) -> dict:
    from chromadb.utils.embedding_functions import OllamaEmbeddingFunction

    return embedded(OllamaEmbeddingFunction(url=url, model_name=MODEL)(TEXTS))


@case("chromadb")
def chroma_tei_bare_host(url: str) -> dict:
    from chromadb.utils.embedding_functions import HuggingFaceEmbeddingServer

    return embedded(HuggingFaceEmbeddingServer(url=url)(TEXTS))


@case("chromadb")
def chroma_tei_embed_route(url: str) -> dict:
    from chromadb.utils.embedding_functions import HuggingFaceEmbeddingServer

    return embedded(HuggingFaceEmbeddingServer(url=f"{url}/embed")(TEXTS))


# --- the runner --------------------------------------------------------------------------------
def status_of(exc: BaseException) -> Any:
    """The HTTP status an SDK exception carries, whichever attribute the library uses."""
    for holder in (exc, getattr(exc, "response", None)):
        for attribute in ("status_code", "status"):
            value = getattr(holder, attribute, None)
            if isinstance(value, int):
                return value
    return None


def failure(exc: BaseException) -> dict:
    return {"type": type(exc).__name__, "message": str(exc)[:1500], "status": status_of(exc)}


def jsonable(value: Any) -> Any:
    if hasattr(value, "tolist"):  # numpy arrays and scalars
        return value.tolist()
    if isinstance(value, dict):
        return {str(k): jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [jsonable(v) for v in value]
    if value is None or isinstance(value, (str, int, float, bool)):
        return value
    return repr(value)


def run_snippet(code: str, url: str) -> dict:
    """Run a README snippet with the server's address in place of README's; its named variables."""
    namespace: dict = {"__name__": "__snippet__"}
    exec(compile(code.replace(README_BASE, url), "<README snippet>", "exec"), namespace)
    return {k: namespace[k] for k in SNIPPET_NAMES if k in namespace}


def run_one(func: Callable[[], dict]) -> dict:
    def timed_out(signum, frame):
        raise TimeoutError(f"no answer within {CASE_SECONDS} s")

    previous = signal.signal(signal.SIGALRM, timed_out)
    signal.alarm(CASE_SECONDS)
    try:
        return jsonable(func())
    except ModuleNotFoundError as exc:
        return {"missing": f"{exc.name} cannot be imported: {exc}"}
    except Exception as exc:  # reported to the test, which fails with it
        return {"error": failure(exc)}
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, previous)


def offline_tiktoken() -> None:
    """tiktoken downloads its BPE files on first use; litellm ships cl100k_base's, so use that copy."""
    spec = importlib.util.find_spec("litellm")
    if spec and spec.submodule_search_locations and "TIKTOKEN_CACHE_DIR" not in os.environ:
        folder = os.path.join(list(spec.submodule_search_locations)[0], "litellm_core_utils", "tokenizers")
        os.environ["TIKTOKEN_CACHE_DIR"] = folder


def main() -> None:
    offline_tiktoken()
    request = json.load(sys.stdin)
    url, results = request["url"], {}
    for name, code in request.get("snippets", {}).items():
        results[name] = run_one(lambda: run_snippet(code, url))
    for name, func in CASES.get(request["group"], {}).items():
        results[name] = run_one(lambda: func(url))
    with open(request["out"], "w") as handle:
        json.dump(results, handle)


if __name__ == "__main__":
    main()
