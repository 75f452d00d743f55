"""Schemathesis hooks for both contract runs (in-process and the command line, which loads this
module through SCHEMATHESIS_HOOKS).

JSON Schema's `integer` takes 1474.0, the same number as 1474, and schemathesis sends such
values. Token ids written with a fraction or an exponent are refused (400 naming the id), as TEI
and OpenAI refuse them, which a JSON Schema cannot say; so a generated integral float inside a
list is sent as the integer it equals. No check is relaxed: the values sent are the same JSON
Schema values."""

from __future__ import annotations

from typing import Any

import schemathesis


def integers_as_integers(value: Any) -> Any:
    if isinstance(value, list):
        return [int(v) if isinstance(v, float) and v.is_integer() else integers_as_integers(v) for v in value]
    if isinstance(value, dict):
        return {key: integers_as_integers(item) for key, item in value.items()}
    return value


@schemathesis.hook
def map_body(context, body):
    return integers_as_integers(body)


#: vLLM's /score routes and their two lists.
SCORE_PATHS = ("/score", "/v1/score")
SCORE_LISTS = (("text_1", "text_2"), ("queries", "documents"))


@schemathesis.hook
def filter_body(context, body):
    """vLLM's `/score` pairs its lists one against many, many against one, or zipped (as long as
    each other), which a JSON Schema cannot say (the route answers other lengths with
    a 400 naming the first list, as vLLM does): bodies of other lengths are not generated."""
    if getattr(context.operation, "path", "") not in SCORE_PATHS or not isinstance(body, dict):
        return True
    for first_field, second_field in SCORE_LISTS:
        first, second = body.get(first_field), body.get(second_field)
        if isinstance(first, list) and isinstance(second, list) and 1 not in (len(first), len(second)) \
                and len(first) != len(second):
            return False
    return True
