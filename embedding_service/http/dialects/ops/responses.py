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
    model_config = ConfigDict(extra="allow")
    model_id: str
    model_dtype: str
    model_type: str
    max_input_length: int
    max_batch_size: int
    max_client_batch_size: int
    models: list[dict[str, Any]]
