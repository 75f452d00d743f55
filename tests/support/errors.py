"""Error bodies as tests read them, in every dialect's shape: the nested body (OpenAI's, the
service's own, vLLM's), TEI's `{"error", "error_type"}`, Cohere's `{"id", "message"}` and
Ollama's `{"error": str}`."""

from __future__ import annotations

from typing import Optional

#: The key set of each dialect's error body.
SHAPES = {
    "nested": {"error"},
    "tei": {"error", "error_type"},
    "cohere": {"id", "message"},
}


def body_of(resp) -> dict:
    """The JSON body of a Flask test response or a `requests` response."""
    return resp.get_json() if hasattr(resp, "get_json") else resp.json()


def error_style(body: dict) -> str:
    """Which dialect's shape `body` has: "nested", "flat" (Ollama's), "tei" or "cohere"; raises
    AssertionError for any other shape."""
    keys = set(body)
    if keys == {"error"}:
        return "nested" if isinstance(body["error"], dict) else "flat"
    for style, shape in SHAPES.items():
        if keys == shape:
            return style
    raise AssertionError(f"not an error body of any dialect: {body}")


def error_message(resp) -> str:
    """The message of an error response, whatever its dialect's shape."""
    body = body_of(resp)
    style = error_style(body)
    if style == "nested":
        return body["error"]["message"]
    if style == "cohere":
        return body["message"]
    return body["error"]


def expect_error(resp, status: int, param: Optional[str], *words: str, style: Optional[str] = None) -> str:
    """Assert `resp` is `status` with an error body (of `style` when given) naming `param` (the
    nested body's `param`; in the other shapes, which have no such slot, the message names it)
    and holding every one of `words` in its message; returns the message."""
    status_code = getattr(resp, "status_code", None)
    text = resp.get_data(as_text=True) if hasattr(resp, "get_data") else resp.text
    assert status_code == status, text[:400]
    body = body_of(resp)
    found = error_style(body)
    assert style is None or found == style, (style, body)
    message = error_message(resp)
    if found == "nested":
        assert body["error"]["param"] == param, body
    elif param is not None:
        assert param in message, (param, message)
    for word in words:
        assert word in message, message
    return message
