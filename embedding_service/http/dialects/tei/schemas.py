"""Request schemas of TEI's routes (Hugging Face text-embeddings-inference's router):
`POST /similarity`, `/tokenize`, `/decode`, `/embed_all`, and TEI's rerank request as `POST /`
takes it, and `POST /embed` with `inputs` (`TEIEmbedRequest`). As everywhere, unknown fields
are refused (400 naming the field); `model` (not in TEI, which serves one model) picks a served
model, the default text model when absent.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal, Optional, Union

from pydantic import Field, StrictBool, StrictStr, field_validator

from ....domain.errors import InvalidInput
from ...schemas import (
    MODEL_KIND,
    TruncateFlag,
    Direction,
    NonEmptyList,
    NonEmptyStr,
    PositiveInt,
    QueryText,
    Strict,
    TEIInput,
    TextInput,
    TokenInput,
    check_text_list,
    text_list_check,
    strict_with,
)

class TEIInputs(Strict):
    """What TEI's text routes share: `inputs` (a string or a list of strings), `model` (not in
    TEI, which serves one model: a served name, the default text model when absent) and
    `prompt_name` (one of the model's prompts)."""

    inputs: TextInput
    model: Optional[StrictStr] = None
    prompt_name: Optional[StrictStr] = None

    _inputs = text_list_check("inputs")


class TEITruncatedInputs(TEIInputs):
    """TEI's text routes that run the model: `inputs` longer than the model's maximum are cut
    (`truncate`, on `truncation_direction`'s side) or refused."""

    truncate: TruncateFlag = True
    truncation_direction: Direction = "right"


class TEIModelInputs(TEITruncatedInputs):
    """TEI's routes that take its `Input`: texts, or token ids (`[int]` for one input, or lists of
    ids beside texts), fed as given."""

    inputs: TEIInput


class TEIEmbedRequest(TEIModelInputs):
    """`POST /embed` with `inputs` (Hugging Face TEI), plus `chunked` (a text longer than the
    window embedded in overlapping windows pooled into one vector; default: CHUNKED_EMBEDDINGS)."""

    normalize: StrictBool = True
    dimensions: Optional[PositiveInt] = None
    chunked: Optional[StrictBool] = None


#: The options TEI's similarity request takes in `parameters`, also accepted at the top level.
SIMILARITY_OPTIONS = ("truncate", "truncation_direction")


def _once(*fields: str) -> dict:
    """Each of `fields` given at the top level or in `parameters`, not in both."""
    return {
        "allOf": [
            {"not": {"required": [name, "parameters"], "properties": {"parameters": {"type": "object", "required": [name]}}}}
            for name in fields
        ]
    }


class SimilarityInputs(Strict):
    """TEI's `inputs` of a similarity request."""

    source_sentence: NonEmptyStr
    sentences: NonEmptyList

    _sentences = text_list_check("sentences", name="inputs.sentences")


class SimilarityParameters(Strict):
    """TEI's `parameters` of a similarity request (its `prompt_name` goes at the top level here)."""

    truncate: TruncateFlag = True
    truncation_direction: Direction = "right"


class TEISimilarityRequest(Strict):
    """`POST /similarity` (TEI), also `POST /` with `inputs.source_sentence`:
    `{"inputs": {"source_sentence", "sentences"}, "truncate"?, "truncation_direction"?,
    "prompt_name"?, "parameters"?: {"truncate"?, "truncation_direction"?}, "model"?}`; an option
    goes at the top level or in `parameters`, not both."""

    model_config = strict_with(_once(*SIMILARITY_OPTIONS))

    inputs: SimilarityInputs
    model: Optional[StrictStr] = None
    truncate: TruncateFlag = True
    truncation_direction: Direction = "right"
    prompt_name: Optional[StrictStr] = None
    parameters: Optional[SimilarityParameters] = None

    def options(self) -> tuple[bool, str]:
        """(truncate, truncation_direction), from the top level or `parameters`; raises
        InvalidInput (400) naming an option given in both."""
        given = self.parameters.model_fields_set if self.parameters is not None else set()
        for name in SIMILARITY_OPTIONS:
            if name in given and name in self.model_fields_set:
                raise InvalidInput(f"{name} is given twice; send it at the top level or in parameters", param=name)
        source = self.parameters if self.parameters is not None else self
        truncate = source.truncate if "truncate" in given else self.truncate
        direction = source.truncation_direction if "truncation_direction" in given else self.truncation_direction
        return truncate, direction


class TEITokenizeRequest(TEIInputs):
    """`POST /tokenize` (TEI): `{"inputs": str | [str], "add_special_tokens"?, "prompt_name"?, "model"?}`."""

    add_special_tokens: StrictBool = True


class TEIDecodeRequest(Strict):
    """`POST /decode` (TEI): `{"ids": [int] | [[int]], "skip_special_tokens"?, "model"?}`, ids
    in the model's vocabulary."""

    ids: TokenInput
    skip_special_tokens: StrictBool = True
    model: Optional[StrictStr] = None

    @field_validator("ids", mode="before")
    @classmethod
    def _ids(cls, value: Any) -> Any:
        if not isinstance(value, list):
            raise ValueError("ids must be a list of token ids or a list of lists of token ids")
        return check_text_list(value, "ids")


class TEIEmbedAllRequest(TEIModelInputs):
    """`POST /embed_all` (TEI): `{"inputs", "truncate"?, "truncation_direction"?, "prompt_name"?, "model"?}`."""


class TEIEmbedSparseRequest(TEIModelInputs):
    """`POST /embed_sparse` (TEI's `EmbedSparseRequest`): `{"inputs", "truncate"?,
    "truncation_direction"?, "prompt_name"?, "model"?}`, with a sparse model (SPLADE, BGE-M3)."""


class TEIRerankRequest(Strict):
    """TEI's rerank request, as `POST /` takes it: `{"query", "texts", "truncate"?,
    "truncation_direction"?, "raw_scores"?, "return_text"?, "model"?}` (the reranker, or the
    default scorer when absent)."""

    model_config = strict_with({MODEL_KIND: "all"})

    query: QueryText
    texts: NonEmptyList
    truncate: TruncateFlag = True
    truncation_direction: Direction = "right"
    raw_scores: StrictBool = False
    return_text: StrictBool = False
    model: Optional[StrictStr] = None

    @field_validator("texts", mode="before")
    @classmethod
    def _texts(cls, value: Any) -> Any:
        return check_text_list(value, "texts")


#: One `/predict` input: a text, or a one- or two-text list (a pair, for NLI).
Sequence_ = Union[NonEmptyStr, Annotated[list[NonEmptyStr], Field(min_length=1, max_length=2)]]


class PredictParameters(Strict):
    """The Hugging Face Inference API's text-classification parameters (what
    `huggingface_hub.InferenceClient.text_classification` sends): `function_to_apply` over the
    logits (`softmax`, `sigmoid`, or `none` for the logits) and `top_k`, the best labels kept."""

    function_to_apply: Optional[Literal["softmax", "sigmoid", "none"]] = None
    top_k: Optional[PositiveInt] = None


class TEIPredictRequest(Strict):
    """`POST /predict` (TEI): `{"inputs", "raw_scores"?, "truncate"?, "truncation_direction"?, "model"?}`;
    `inputs` is a text, a pair `[text, text]`, or a batch of texts and pairs (`[[text] | [text, text]]`),
    as TEI reads it: a list of exactly two strings is one pair."""

    inputs: Union[NonEmptyStr, Annotated[list[Sequence_], Field(min_length=1)]]
    raw_scores: StrictBool = False
    truncate: TruncateFlag = True
    truncation_direction: Direction = "right"
    model: Optional[StrictStr] = None
    parameters: Optional[PredictParameters] = None

    @field_validator("inputs", mode="before")
    @classmethod
    def _inputs(cls, value: Any) -> Any:
        return check_predict_inputs(value)


def check_predict_inputs(value: Any) -> Any:
    """`/predict`'s `inputs` refused with a message naming the place: an empty list (TEI's
    "batch is empty"), an empty text, a batch item that is neither `[text]` nor `[text, text]`."""
    if value == "":
        raise ValueError("inputs is an empty string")
    if not isinstance(value, list):
        return value
    if not value:
        raise ValueError("inputs must not be an empty list")
    for index, item in enumerate(value):
        if item == "":
            raise ValueError(f"inputs[{index}] is an empty string")
        if isinstance(item, list):
            if not 1 <= len(item) <= 2:
                raise ValueError(f"inputs[{index}] has {len(item)} texts; a batch item is [text] or [text, text]")
            empty = next((j for j, text in enumerate(item) if text == ""), None)
            if empty is not None:
                raise ValueError(f"inputs[{index}][{empty}] is an empty string")
    return value


class TEIRootPredictRequest(TEIPredictRequest):
    """TEI's predict request as `POST /` takes it besides a classifier's plain `inputs`: with the
    Inference API's `parameters` or with `raw_scores` (what tells it from an embedding request)."""

    model_config = strict_with({MODEL_KIND: "classifier", "anyOf": [{"required": ["parameters"]}, {"required": ["raw_scores"]}]})
