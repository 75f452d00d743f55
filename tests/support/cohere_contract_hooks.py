"""Schemathesis hooks for the run of Cohere's published document (tests/contracts/), loaded by
the command line through SCHEMATHESIS_HOOKS only (importing this module registers its hooks in
the importing process): the one request change that run makes, documented as the deviation `cohere-model-names`. Cohere's
document requires `model` and names Cohere's hosted models; a self-hosted server serves its own,
so a generated `model` is sent as the served model's name (what a client configured for this
service sends). Integral floats in lists go as integers, as in support/schemathesis_hooks.py."""

from __future__ import annotations

from typing import Any

import schemathesis

from support.peer_contracts import SERVED
from support.schemathesis_hooks import integers_as_integers


@schemathesis.hook
def map_body(context, body: Any) -> Any:
    body = integers_as_integers(body)
    if isinstance(body, dict) and "model" in body:
        body = {**body, "model": SERVED}
    return body
