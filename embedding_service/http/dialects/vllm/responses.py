"""vLLM's `/pooling` response: `{"id", "object": "list", "created", "model", "data": [{"index",
"object": "pooling", "data"}], "usage"}`."""

from __future__ import annotations

from typing import Literal, Optional, Union

from pydantic import BaseModel


class PoolingItem(BaseModel):
    index: int
    object: Literal["pooling"]
    #: a vector (`embed`), one vector per token (`token_embed`), or base64 of little-endian float32
    data: Union[list[float], list[list[float]], str]


class PoolingUsage(BaseModel):
    prompt_tokens: int
    total_tokens: int
    completion_tokens: int = 0
    prompt_tokens_details: Optional[dict] = None


class PoolingResponse(BaseModel):
    id: str
    object: Literal["list"]
    created: int
    model: str
    data: list[PoolingItem]
    usage: PoolingUsage
