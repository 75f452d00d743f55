"""The family table: which class serves a checkpoint, decided from its own `config.json`.

One ordered list, :data:`FAMILIES`. Each row names a family, its `kind` (the label users see and
may force with the `kind` model option), what it looks like (`fits`: the config's structure) and
the class that serves it, imported only when a model of that family is loaded. Detection: the
`kind` option if given, else the kind of the first row that *claims* the checkpoint; then the
first row of that kind whose structure fits. Adding a family is one module under models/ plus
one row here. No torch here. The kinds themselves are `domain.model_kinds.Kind`.
"""

from __future__ import annotations

import importlib
import logging
from dataclasses import dataclass
from typing import TYPE_CHECKING, Callable, Optional

from ..config.settings import SettingsError
from ..domain.model_kinds import KINDS
from .text_config import is_decoder, module_types
from .files import ModelFiles
from ..config.model_specs import ModelSpec

if TYPE_CHECKING:  # pragma: no cover
    from .interfaces import Model

log = logging.getLogger("embedding_service.models")

Predicate = Callable[[ModelSpec, dict, ModelFiles], bool]


def model_type(*names: str) -> Predicate:
    return lambda spec, config, files: str(config.get("model_type", "")).lower() in names


def architecture(suffix: str) -> Predicate:
    return lambda spec, config, files: any(str(a).endswith(suffix) for a in config.get("architectures") or [])


def decoder(spec: ModelSpec, config: dict, files: ModelFiles) -> bool:
    return is_decoder(config)


def named_reranker(spec: ModelSpec, config: dict, files: ModelFiles) -> bool:
    return "reranker" in spec.name.lower() or "reranker" in spec.reference.lower()


def labelled_classifier(spec: ModelSpec, config: dict, files: ModelFiles) -> bool:
    """A sequence classifier with two or more labels (`id2label`, else `num_labels`) whose name
    does not call it a reranker (a one-label cross-encoder is a reranker)."""
    if not architecture("ForSequenceClassification")(spec, config, files) or named_reranker(spec, config, files):
        return False
    labels = config.get("id2label")
    count = len(labels) if isinstance(labels, dict) and labels else int(config.get("num_labels") or 1)
    return count >= 2


def anything(spec: ModelSpec, config: dict, files: ModelFiles) -> bool:
    return True


#: BGE-M3's heads beside its weights (FlagEmbedding's layout).
SPARSE_HEAD, COLBERT_HEAD = "sparse_linear.pt", "colbert_linear.pt"


def splade(spec: ModelSpec, config: dict, files: ModelFiles) -> bool:
    """A sentence-transformers SparseEncoder whose modules end in SpladePooling."""
    return "SpladePooling" in [kind for kind, _ in module_types(files)]


def pylate(spec: ModelSpec, config: dict, files: ModelFiles) -> bool:
    """PyLate's layout: a pylate Dense module, or a query prefix and length in its config."""
    modules = files.json("modules.json")
    if isinstance(modules, list) and any("pylate" in str(m.get("type", "")) for m in modules if isinstance(m, dict)):
        return True
    st = files.json("config_sentence_transformers.json")
    return isinstance(st, dict) and "query_length" in st and "query_prefix" in st


def m3_heads(spec: ModelSpec, config: dict, files: ModelFiles) -> bool:
    """BGE-M3's sparse and ColBERT heads beside the weights."""
    return files.has(SPARSE_HEAD) and files.has(COLBERT_HEAD)


@dataclass(frozen=True)
class Family:
    """One row: `name` (shown in /info), `kind`, `description` (for errors), `fits` (the
    config's structure), `claims` (when detection picks this row's kind; default `fits`) and
    `model`, the serving class as "module:Class" (a module name starting with "." is relative
    to embedding_service.models), imported when a model of this family loads."""

    name: str
    kind: str
    description: str
    fits: Predicate
    model: str
    claims: Optional[Predicate] = None

    def load_class(self) -> type:
        module, _, attribute = self.model.partition(":")
        return getattr(importlib.import_module(module, package=__package__), attribute)


#: Detection order matters: the first row that claims a checkpoint decides its kind.
FAMILIES: tuple[Family, ...] = (
    Family("siglip2", "multimodal", "SigLIP 2", model_type("siglip2"), ".multimodal:Siglip2Model"),
    Family("siglip", "multimodal", "SigLIP", model_type("siglip"), ".multimodal:SiglipModel"),
    Family("clip", "multimodal", "CLIP", model_type("clip"), ".multimodal:ClipModel"),
    Family("classifier", "classifier", "a sequence classifier with several labels", labelled_classifier,
           ".classifier:SequenceClassifier"),
    Family("token-classifier", "token-classifier", "a token classifier (named entities, parts of speech)",
           architecture("ForTokenClassification"), ".token_classifier:TokenClassifierModel"),
    Family("cross-encoder", "rerank", "a sequence-classification cross-encoder",
           architecture("ForSequenceClassification"), ".cross_encoder:CrossEncoderReranker"),
    Family("qwen3-reranker", "rerank", "a Qwen3-Reranker-style causal LM", decoder,
           ".qwen3_reranker:Qwen3Reranker", claims=named_reranker),
    Family("splade", "sparse", "a SPLADE masked-LM (sentence-transformers SparseEncoder)", splade,
           ".splade:SpladeEncoder"),
    Family("colbert", "multi-vector", "a PyLate ColBERT model", pylate, ".colbert:PyLateColbert"),
    Family("bge-m3", "text", "BGE-M3 (dense, sparse and ColBERT heads)", m3_heads, ".bge_m3:BgeM3"),
    Family("text", "text", "a transformers encoder or decoder", anything, ".text:TextEmbedder"),
)
#: The kinds, in table order: the values of the `kind` model option.
if {family.kind for family in FAMILIES} != set(KINDS):  # every kind has a row, every row a known kind
    raise AssertionError("the family table and domain.model_kinds.Kind disagree")


def checkpoint_config(files: ModelFiles) -> dict:
    """The model's `config.json`; for a sentence-transformers model whose weights sit in a module
    folder (a Router's transformer, e.g. inference-free SPLADE), that folder's. raises
    SettingsError when there is none."""
    if files.json("config.json") is None:
        folder = next((path for kind, path in module_types(files) if kind in ("Transformer", "MLMTransformer") and path), None)
        config = files.json(f"{folder}/config.json") if folder else None
        if isinstance(config, dict):
            return config
    return files.config()


def detect_family(spec: ModelSpec, config: dict, files: ModelFiles) -> Family:
    """The row serving `spec` (see the module doc). raises SettingsError naming the model when
    its kind (forced or detected) has no row whose structure fits."""
    kind = spec.option("kind") or next(f.kind for f in FAMILIES if (f.claims or f.fits)(spec, config, files))
    rows = [f for f in FAMILIES if f.kind == kind]
    for family in rows:
        if family.fits(spec, config, files):
            return family
    found = str(config.get("model_type", "")) or "unknown"
    raise SettingsError(
        f"model {spec.name!r}: a {kind} model must be {' or '.join(f.description for f in rows)} "
        f"(its model_type is {found!r})"
    )


def load_model(spec: ModelSpec, device: str, dtype: str) -> "Model":
    """Load `spec` onto `device` with its family's class (every class takes
    `(spec, device, dtype, files, config)`).

    raises SettingsError naming the model when it cannot be found, detected or loaded.
    """
    files = ModelFiles(spec.reference, spec.name)
    config = checkpoint_config(files)
    family = detect_family(spec, config, files)
    try:
        model = family.load_class()(spec, device, dtype, files, config)
    except SettingsError:
        raise
    except Exception as exc:  # from_pretrained's many failure types
        raise SettingsError(f"model {spec.name!r} could not be loaded: {type(exc).__name__}: {exc}") from exc
    model.family = family
    return model
