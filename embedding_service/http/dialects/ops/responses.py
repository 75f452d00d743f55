"""The operational routes' response bodies: `/health`, `/ready`, `/` and `/info`."""

from __future__ import annotations

from typing import Any, Literal, Optional

from pydantic import BaseModel, ConfigDict


class Health(BaseModel):
    model_config = ConfigDict(extra="allow")
    status: Literal["ok"]
    model: Optional[str]
    device: str
    cuda_available: bool
    pid: int
    phase: str


class Ready(BaseModel):
    model_config = ConfigDict(extra="allow")
    status: str
    pid: int
    models: list[str]


class Index(BaseModel):
    service: str
    version: str
    models: list[str]
    routes: list[str]


class Info(BaseModel):
    """TEI's `Info` (every field TEI requires: `model_type` as `{"embedding": {"pooling"}}`,
    `{"classifier": {"id2label"}}` or `{"reranker": {"id2label"}}`) for the default model or the
    one `?model=` names, and the service's own fields beside them."""

    model_config = ConfigDict(extra="allow")
    model_id: str
    model_sha: Optional[str] = None
    model_dtype: str
    model_type: dict[str, dict[str, Any]]
    served_model_name: Optional[str] = None
    max_concurrent_requests: int
    max_input_length: int
    max_batch_tokens: int
    max_batch_requests: Optional[int] = None
    max_client_batch_size: int
    auto_truncate: bool
    tokenization_workers: int
    version: str
    sha: Optional[str] = None
    docker_label: Optional[str] = None
    kind: str
    max_batch_size: int
    models: list[dict[str, Any]]
