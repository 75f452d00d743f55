"""The largest request a route's declared budget admits, and bodies built from its example
(http/budgets.py): shared by the URL-map walk and the memory test at the default budgets."""

from __future__ import annotations

import copy
import json
from typing import Any

from embedding_service.http.budgets import ITEMS, ONE_ITEM, Budget

#: Characters the example's other fields (a query with its prompt, a source sentence) may add to a request.
SLACK = 160


def fill(example: Any, items: list) -> Any:
    """The example body with `items` where ITEMS is and `items[0]` where ONE_ITEM is."""
    if example == ITEMS:
        return items
    if example == ONE_ITEM:
        return items[0]
    if isinstance(example, dict):
        return {key: fill(value, items) for key, value in example.items()}
    return copy.deepcopy(example)


def path_of(rule) -> str:
    """A URL for a rule, its variables filled with "x"."""
    return "/".join("x" if part.startswith("<") else part for part in rule.rule.split("/")) or "/"


def item_count(budget: Budget, max_items: int) -> int:
    return 1 if ONE_ITEM in json.dumps(budget.example) else max_items - budget.extra_items


def body_of(budget: Budget, count: int, size: int, model: str) -> dict:
    item = [7] * size if budget.item == "ids" else "ab " * (size // 3) + "a" * (size % 3)
    return dict(fill(budget.example, [item] * count), model=model)


def largest(budget: Budget, settings, engines, model: str) -> tuple[dict, int, int]:
    """`(body, items, characters or ids per item)`: the largest request the declared budgets admit
    under `settings`: MAX_CLIENT_BATCH_SIZE items (one for a one-item route) sharing
    MAX_REQUEST_CHARS (less SLACK), each at most MAX_INPUT_CHARS, the largest size whose output
    bound (the route's own) stays within its setting."""
    count = item_count(budget, settings.max_client_batch_size)

    def fits(count: int, size: int) -> bool:
        if budget.output is None:
            return True
        return budget.output.bound(body_of(budget, count, size, model), engines) <= getattr(settings, budget.output.setting)

    def largest_at_most(high: int, ok) -> int:
        low = 1
        while low < high:
            middle = (low + high + 1) // 2
            low, high = (middle, high) if ok(middle) else (low, middle - 1)
        return low

    if not fits(count, 1):  # an output that grows with the inputs, not their size (SPLADE's vocabulary)
        count = largest_at_most(count, lambda n: fits(n, 1))
    top = min(settings.max_input_chars, (settings.max_request_chars - SLACK) // count)
    size = largest_at_most(top, lambda size: fits(count, size))
    return body_of(budget, count, size, model), count, size
