"""How to run a text model, from its own files (which family serves it: families.py).

Sources, in order of precedence: explicit options (`MODELS` entry), sentence-transformers files
(`modules.json`, `<pooling>/config.json` in the legacy `pooling_mode_*` or the newer `pooling_mode`
form, `sentence_bert_config.json`, `config_sentence_transformers.json`), then `config.json`
(architectures, model_type) and the tokenizer config. Contradictions raise SettingsError naming the
model and the setting. No torch here.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import Optional

from ..config.settings import SettingsError
from .files import ModelFiles
from ..config.model_specs import POOLINGS, ModelSpec

log = logging.getLogger("embedding_service.models")

DECODER_TYPES = {"qwen2", "qwen3", "mistral", "llama", "gemma", "gemma2", "gemma3_text", "phi3"}
#: Position ids of these start after the padding index, so max_position_embeddings overstates by 2.
PADDING_OFFSET_TYPES = {"roberta", "xlm-roberta", "camembert", "mpnet"}
#: Qwen3-Embedding's query template (its model card): no space after `Query:`.
QWEN3_INSTRUCTION_TEMPLATE = "Instruct: {instruction}\nQuery:"
#: Legacy sentence-transformers pooling flags -> pooling mode.
LEGACY_POOLING_FLAGS = {
    "pooling_mode_cls_token": "cls",
    "pooling_mode_mean_tokens": "mean",
    "pooling_mode_max_tokens": "max",
    "pooling_mode_mean_sqrt_len_tokens": "mean_sqrt_len_tokens",
    "pooling_mode_weightedmean_tokens": "weightedmean",
    "pooling_mode_lasttoken": "lasttoken",
}
SUPPORTED_MODULES = ("Transformer", "Pooling", "Normalize")


def is_decoder(config: dict) -> bool:
    model_type = str(config.get("model_type", "")).lower()
    architectures = [str(a) for a in config.get("architectures") or []]
    return model_type in DECODER_TYPES or any(a.endswith("ForCausalLM") for a in architectures)


@dataclass
class TextConfig:
    """How to run one text model (the maximum length is settled once the tokenizer is loaded)."""

    pooling: str
    transformer_path: str = ""
    max_length_option: Optional[int] = None
    max_seq_length: Optional[int] = None
    lowercase: bool = False
    prompts: dict = field(default_factory=dict)
    default_prompt_name: Optional[str] = None
    instruction_template: Optional[str] = None
    padding_side: Optional[str] = None


def _pooling_from_config(name: str, cfg: dict) -> str:
    if "pooling_mode" in cfg:
        modes = cfg["pooling_mode"]
        modes = [modes] if isinstance(modes, str) else list(modes)
    else:
        modes = [mode for flag, mode in LEGACY_POOLING_FLAGS.items() if cfg.get(flag)]
    if cfg.get("include_prompt") is False:
        raise SettingsError(f"model {name!r}: pooling with include_prompt=false is not supported")
    if len(modes) != 1:
        raise SettingsError(
            f"model {name!r}: the pooling config names {len(modes)} modes ({', '.join(modes) or 'none'}); "
            "exactly one is supported; set the pooling option to choose"
        )
    if modes[0] not in POOLINGS:
        raise SettingsError(
            f"model {name!r}: pooling mode {modes[0]!r} is not supported; supported: {', '.join(POOLINGS)}"
        )
    return modes[0]


def module_types(files: ModelFiles) -> list[tuple[str, str]]:
    """(class name, folder) of each module in the model's `modules.json`, in order; empty without
    one. A sentence-transformers `Router` stands for the modules of its default route (see
    :func:`router_routes`)."""
    modules = files.json("modules.json")
    if not isinstance(modules, list):
        return []
    found = []
    for module in modules:
        if not isinstance(module, dict):
            continue
        kind, path = str(module.get("type", "")).rsplit(".", 1)[-1], str(module.get("path", "")).strip("/")
        if kind == "Router":
            routes, default = router_routes(files, path)
            found.extend(routes.get(default, []))
        else:
            found.append((kind, path))
    return found


def router_folder(files: ModelFiles) -> Optional[str]:
    """The folder of the model's sentence-transformers Router module ("" at the top), None without one."""
    modules = files.json("modules.json")
    for module in modules if isinstance(modules, list) else ():
        if isinstance(module, dict) and str(module.get("type", "")).rsplit(".", 1)[-1] == "Router":
            return str(module.get("path", "")).strip("/")
    return None


def router_routes(files: ModelFiles, folder: str = "") -> tuple[dict[str, list[tuple[str, str]]], str]:
    """A sentence-transformers Router's routes (`router_config.json`): route name -> (class name,
    folder) of its modules, and the default route (`document` unless the config names another)."""
    config = files.json(f"{folder}/router_config.json" if folder else "router_config.json")
    config = config if isinstance(config, dict) else {}
    types = config.get("types") or {}
    routes = {
        str(route): [(str(types.get(key, "")).rsplit(".", 1)[-1], f"{folder}/{key}".strip("/")) for key in keys]
        for route, keys in (config.get("structure") or {}).items() if isinstance(keys, list)
    }
    default = str((config.get("parameters") or {}).get("default_route") or "document")
    return routes, default


def text_config(
    spec: ModelSpec, files: ModelFiles, config: dict, modules: tuple[str, ...] = SUPPORTED_MODULES,
    pooling_default: Optional[str] = None,
) -> TextConfig:
    """Pooling, prompts, lower-casing, maximum length and template for a text model. `modules`:
    the sentence-transformers modules the family serves (any other fails at start-up; the
    family reads its own, e.g. SpladePooling); `pooling_default`: the pooling of a family that
    does not pool (no warning then)."""
    name = spec.name
    pooling: Optional[str] = None
    transformer_path = ""
    for kind, path in module_types(files):
        if kind not in modules:
            raise SettingsError(
                f"model {name!r}: sentence-transformers module {kind!r} is not supported "
                f"(supported: {', '.join(modules)})"
            )
        if kind in ("Transformer", "MLMTransformer"):
            transformer_path = path
        elif kind == "Pooling" and not spec.option("pooling"):
            cfg = files.json(f"{path}/config.json" if path else "config.json")
            if not isinstance(cfg, dict):
                raise SettingsError(f"model {name!r}: pooling module {path!r} has no config.json")
            pooling = _pooling_from_config(name, cfg)
    if spec.option("pooling"):
        pooling = spec.option("pooling")
    if pooling is None and pooling_default:
        pooling = pooling_default
    if pooling is None:
        pooling = "lasttoken" if is_decoder(config) else "mean"
        log.warning("model %s has no pooling config; using %s pooling", name, pooling)

    sbert = files.json(f"{transformer_path}/sentence_bert_config.json" if transformer_path else "sentence_bert_config.json")
    if sbert is None and transformer_path:
        sbert = files.json("sentence_bert_config.json")
    sbert = sbert if isinstance(sbert, dict) else {}
    st_config = files.json("config_sentence_transformers.json")
    st_config = st_config if isinstance(st_config, dict) else {}
    prompts = st_config.get("prompts") or {}
    if not isinstance(prompts, dict) or not all(isinstance(v, str) for v in prompts.values()):
        raise SettingsError(f"model {name!r}: prompts in config_sentence_transformers.json must map names to strings")
    default_prompt = st_config.get("default_prompt_name")
    if default_prompt is not None and default_prompt not in prompts:
        raise SettingsError(f"model {name!r}: default_prompt_name {default_prompt!r} is not one of its prompts")

    template = spec.option("instruction_template")
    if template is None:
        query = str(prompts.get("query", ""))
        if str(config.get("model_type", "")).lower() == "qwen3" or (
            query.startswith("Instruct: ") and "\nQuery:" in query
        ):
            template = QWEN3_INSTRUCTION_TEMPLATE
    if template is not None and "{instruction}" not in template:
        raise SettingsError(f"model {name!r}: instruction_template must contain {{instruction}}")

    return TextConfig(
        pooling=pooling,
        transformer_path=transformer_path,
        max_length_option=spec.option("max_length"),
        max_seq_length=sbert.get("max_seq_length") if isinstance(sbert.get("max_seq_length"), int) else None,
        lowercase=spec.option("lowercase", bool(sbert.get("do_lower_case", False))),
        prompts=dict(prompts),
        default_prompt_name=default_prompt,
        instruction_template=template,
        padding_side=spec.option("padding_side"),
    )


def position_limit(config: dict) -> Optional[int]:
    """Longest input the position embeddings allow, or None when the config does not say."""
    limit = config.get("max_position_embeddings")
    if not isinstance(limit, int) or limit <= 0:
        return None
    if str(config.get("model_type", "")).lower() in PADDING_OFFSET_TYPES:
        limit -= 2
    return limit


def resolve_max_length(
    name: str, option: Optional[int], seq_length: Optional[int], tokenizer_max: Optional[int], config: dict
) -> int:
    """Tokens per input: the `max_length` option, else `max_seq_length` (sentence-transformers),
    else the tokenizer's `model_max_length`, else the position embeddings; never above those.

    raises SettingsError when the `max_length` option exceeds the position embeddings.
    """
    limit = position_limit(config)
    if tokenizer_max is not None and tokenizer_max >= 1_000_000:  # transformers' "no limit" sentinel
        tokenizer_max = None
    if option and limit is not None and option > limit:
        raise SettingsError(f"model {name!r}: max_length {option} exceeds its {limit} position embeddings")
    chosen = option or seq_length or tokenizer_max or limit or 512
    return int(min(chosen, limit) if limit is not None else chosen)


def files_max_length(spec: ModelSpec, files: ModelFiles, tokenizer, config: dict) -> int:
    """resolve_max_length for models without sentence-transformers pooling (rerankers): the
    `max_length` option, `sentence_bert_config.json`'s `max_seq_length`, the tokenizer, positions."""
    sbert = files.json("sentence_bert_config.json")
    seq_length = sbert.get("max_seq_length") if isinstance(sbert, dict) else None
    return resolve_max_length(
        spec.name, spec.option("max_length"), seq_length if isinstance(seq_length, int) else None,
        getattr(tokenizer, "model_max_length", None), config,
    )
