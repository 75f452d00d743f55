"""Prompts, as sentence-transformers applies them: what a request asked for
(:class:`PromptChoice`), a model's prompt rules (:class:`PromptRules`) and the prefix they give
(:func:`prompt_prefix`, once per request: :class:`ResolvedPrompt`)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Optional

from ..domain.errors import InvalidInput


@dataclass(frozen=True)
class PromptChoice:
    """What the request asked for: a named prompt, an input type, or a free instruction."""

    prompt_name: Optional[str] = None
    input_type: Optional[str] = None
    instruction: Optional[str] = None


@dataclass(frozen=True)
class ResolvedPrompt:
    """A PromptChoice resolved against one model, once per request: the `prefix` put before each
    text and, for limit messages, what it is (`note`: "prompt included", "instruction included",
    or "" without a prefix)."""

    prefix: str = ""
    note: str = ""


@dataclass(frozen=True)
class PromptRules:
    """A text model's prompts: `prompts` by name, the `default_prompt_name` used when a request
    names none, the `instruction_template` of instruction-tuned models (`{instruction}` is
    replaced), and whether inputs are `lowercase`d."""

    prompts: dict = field(default_factory=dict)
    default_prompt_name: Optional[str] = None
    instruction_template: Optional[str] = None
    lowercase: bool = False


def prompt_prefix(choice: PromptChoice, rules: "PromptRules", model_name: str) -> str:
    """The prefix for this request, from `prompt_name`, `instruction` or `input_type`.

    Follows sentence-transformers: the named prompt is prepended; with no choice the model's
    `default_prompt_name` applies. For instruction models the instruction fills
    `instruction_template`; for others it is prepended as given. `input_type` selects the
    prompt of that name when the model has one. raises InvalidInput (400) naming the field.
    """
    if choice.prompt_name is not None:
        if choice.instruction is not None:
            raise InvalidInput("send either prompt_name or instruction, not both", param="prompt_name")
        if choice.prompt_name not in rules.prompts:
            known = ", ".join(sorted(rules.prompts)) or "none"
            raise InvalidInput(
                f"model {model_name!r} has no prompt named {choice.prompt_name!r}; its prompts: {known}",
                param="prompt_name",
            )
        return rules.prompts[choice.prompt_name]
    if choice.instruction is not None:
        if choice.input_type == "document":
            raise InvalidInput("an instruction applies to queries; drop it for input_type document", param="instruction")
        if rules.instruction_template:
            return rules.instruction_template.replace("{instruction}", choice.instruction)
        return choice.instruction
    if choice.input_type is not None:
        return rules.prompts.get(choice.input_type, "")
    if rules.default_prompt_name:
        return rules.prompts[rules.default_prompt_name]
    return ""
