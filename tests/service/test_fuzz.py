"""Fuzzing (production hardening): schemathesis against /openapi.json with every check on, and
hypothesis properties of the request schemas."""

from __future__ import annotations

import os
import tempfile

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings as hyp_settings, strategies as st
from hypothesis.configuration import set_hypothesis_home_dir
from schemathesis.config import SchemathesisConfig

from embedding_service.process.boot import local_app
from support.tiny_classifiers import shared_classifier, shared_token_classifier
from support.tiny_retrieval import shared_bge_m3
from embedding_service.domain.errors import InvalidInput
from embedding_service.http.errors import status_of
from embedding_service.http.dialects.cohere.schemas import RerankRequest
from embedding_service.http.dialects.openai.schemas import OpenAIEmbeddingRequest
from embedding_service.http.dialects.tei.schemas import TEIEmbedRequest
from embedding_service.http.schemas import parse
from embedding_service.config.settings import Settings
import support.schemathesis_hooks  # noqa: F401  (integral floats in lists sent as integers)

# Hypothesis' storage (example database, constants cache; schemathesis fills the cache while
# collecting) goes to a temporary directory removed when the run ends, not to a `.hypothesis/`
# folder in the work tree: a test run leaves nothing behind.
HYPOTHESIS_HOME = tempfile.TemporaryDirectory(prefix="embedding-service-hypothesis-")
set_hypothesis_home_dir(HYPOTHESIS_HOME.name)

# What the schema cannot say: token counts past a model's window with truncate false (422), and
# the request limits, answered with 413 (documented as `x-limits`, not as schema bounds: this app's
# MAX_CLIENT_BATCH_SIZE of 64 is within reach of generated lists). This deployment serves no image
# model, so its description offers no image input at all (tests/service/test_schemathesis_cli.py runs the
# command line with schemathesis' defaults and no allowance).
NEGATIVE = ["400", "401", "403", "404", "405", "406", "409", "413", "415", "422", "428", "429"]
CONFIG = {
    # No on-disk schemathesis store (`.schemathesis/`) in the work tree either.
    "cache": {"enabled": False},
    "checks": {
        "enabled": True,
        "negative_data_rejection": {"expected-statuses": NEGATIVE},
        "positive_data_acceptance": {"expected-statuses": ["2xx", "413", "422"]},
    },
    # Reproducible in CI; FUZZ_EXAMPLES=500 make test searches deeper, at random.
    "generation": {"max-examples": int(os.environ.get("FUZZ_EXAMPLES", "60")), "deterministic": "FUZZ_EXAMPLES" not in os.environ},
}


# Built at collection: schemathesis' lazy fixture loader does not run under pytest 9.
# The bundled MiniLM, a tiny BGE-M3 (the sparse and multi-vector routes answer with it), a tiny classifier and a
# tiny token classifier.
FUZZ_APP = local_app(Settings.from_mapping({
    "DEVICE": "cpu", "LOG_LEVEL": "WARNING", "MAX_CLIENT_BATCH_SIZE": "64",
    "MODELS": f"sentence-transformers/all-MiniLM-L6-v2,bge-m3={shared_bge_m3()},sentiment={shared_classifier()},"
              f"ner={shared_token_classifier()}",
}))
schema = schemathesis.openapi.from_wsgi("/openapi.json", FUZZ_APP, config=SchemathesisConfig.from_dict(CONFIG))



@pytest.mark.slow
@schema.parametrize()
def test_openapi_contract(case):
    case.call_and_validate()


# ------------------------------------------------------------------ hypothesis on the schemas
JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=20),
    lambda children: st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=10), children, max_size=4),
    max_leaves=12,
)
FIELDS = st.dictionaries(
    st.sampled_from(["input", "inputs", "model", "dimensions", "encoding_format", "query", "documents", "top_n", "x"]),
    JSON,
    max_size=5,
)


@pytest.mark.parametrize("schema_class", [OpenAIEmbeddingRequest, TEIEmbedRequest, RerankRequest])
@hyp_settings(max_examples=300, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(body=st.one_of(JSON, FIELDS))
def test_parse_accepts_or_names_the_field(schema_class, body):
    """Any JSON either parses or raises InvalidInput whose param is one of the body's fields."""
    try:
        parsed = parse(schema_class, body)
    except InvalidInput as err:
        assert status_of(err)[0] == 400 and err.message
        if isinstance(body, dict) and err.param is not None:
            assert err.param in body or err.param in schema_class.model_fields
        return
    assert isinstance(parsed, schema_class)
    # Whatever parsed is a fixed point: dumping and parsing again gives the same request.
    assert parse(schema_class, parsed.model_dump(exclude_unset=True)) == parsed


@hyp_settings(max_examples=200)
@given(texts=st.lists(st.text(min_size=1, max_size=50), min_size=1, max_size=8))
def test_valid_text_lists_always_parse(texts):
    req = parse(OpenAIEmbeddingRequest, {"input": texts})
    assert req.input == texts
    req = parse(TEIEmbedRequest, {"inputs": texts, "truncation_direction": "Left"})
    assert req.inputs == texts and req.truncation_direction == "left"


@hyp_settings(max_examples=200)
@given(ids=st.lists(st.lists(st.integers(min_value=0, max_value=10**6), min_size=1, max_size=8), min_size=1, max_size=4))
def test_token_id_inputs_parse_as_ids(ids):
    req = parse(OpenAIEmbeddingRequest, {"input": ids})
    assert req.input == ids
