"""The nested error body as tests read it."""

from __future__ import annotations

from typing import Optional


def expect_error(resp, status: int, param: Optional[str], *words: str) -> str:
    """Assert `resp` is `status` with the nested error body naming `param` and holding every
    one of `words` in its message; returns the message."""
    assert resp.status_code == status, resp.get_data(as_text=True)[:400]
    err = resp.get_json()["error"]
    assert err["param"] == param, err
    for word in words:
        assert word in err["message"], err["message"]
    return err["message"]
