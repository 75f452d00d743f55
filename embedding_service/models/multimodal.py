"""Multimodal models: SigLIP 2 (NaFlex), SigLIP and CLIP; images and text in one space.

Recipes followed:
- SigLIP / SigLIP 2 text: `get_text_features` on lower-cased text padded to `max_length=64` (the
  text tower's position count) with no attention mask, as trained; never padded to the longest.
- CLIP text: `get_text_features` with the attention mask, padded to the tokenizer's 77 (CLIP's
  causal mask makes padding after EOS irrelevant); the tokenizer lower-cases itself.
- Images: `get_image_features` on the model's own image processor output (`max_num_patches` for
  NaFlex, default from the processor), from RGB images with EXIF orientation applied
  (images/decode.py).
"""

from __future__ import annotations

import sys
from typing import Any, Optional, Sequence

import numpy as np
import torch

from ..images.decode import ImageInputSize
from ..config.settings import SettingsError
from .interfaces import ImageEncoder
from .items import ImageItem, TokenIds, pad_batch
from .prompts import PromptChoice
from .text_encoder import TextEncoder
from .files import ModelFiles
from .loading import load_pretrained, pad_token_id
from ..config.model_specs import ModelSpec


#: Images per image-processor call (bounds the processor's full-size numpy copies of a request).
PROCESSOR_CHUNK = 16


def _features(output: Any) -> torch.Tensor:
    """`get_*_features` returns a tensor (transformers 4) or an output with `pooler_output` (5)."""
    return output if isinstance(output, torch.Tensor) else output.pooler_output


class MultimodalModel(TextEncoder, ImageEncoder):
    """Image and text towers of one contrastive model. `forward` takes a batch of TokenIds (text)
    or of ImageItems (images), never both, and returns (batch, dimension) float32 features.

    Subclasses (one per family) say how the family's text recipe runs: `lowercase` (lower-case
    the text first), `use_text_mask` (pass the attention mask to the text tower) and `naflex`
    (the image processor takes `max_num_patches`).
    """

    lowercase = True
    use_text_mask = False
    naflex = False

    def __init__(self, spec: ModelSpec, device: str, dtype: str, files: ModelFiles, config: dict):
        super().__init__(spec, device)
        from transformers import AutoImageProcessor

        if spec.option("lowercase") is not None:
            self.lowercase = spec.option("lowercase")
        processor_options = {}
        if spec.option("max_num_patches"):
            if not self.naflex:
                raise SettingsError(f"model {spec.name!r}: max_num_patches applies to SigLIP 2 (NaFlex) models only")
            processor_options["max_num_patches"] = spec.option("max_num_patches")
        tokenizer, self.model, self.dtype = load_pretrained(spec, device, dtype, "AutoModel")
        self.set_tokenizer(tokenizer)
        self.image_processor = AutoImageProcessor.from_pretrained(spec.reference, **processor_options)
        self.max_num_patches = getattr(self.image_processor, "max_num_patches", None)
        positions = int(self.model.config.text_config.max_position_embeddings)
        self.max_length = min(spec.option("max_length") or positions, positions)
        self.pad_length = self.max_length  # always padded to the full length, as trained
        self.padding_side = spec.option("padding_side") or tokenizer.padding_side
        self.pad_id = pad_token_id(tokenizer)
        self.vocab_rows = self.model.text_model.embeddings.token_embedding.num_embeddings
        # The model's own image-text score: sigmoid(cos * exp(logit_scale) + logit_bias) (SigLIP).
        self.logit_scale = float(self.model.logit_scale.detach().float().exp())
        bias = getattr(self.model, "logit_bias", None)
        self.logit_bias = float(bias.detach().float().reshape(-1)[0]) if bias is not None else 0.0
        self.similarity_scale = (self.logit_scale, self.logit_bias)
        self.dimension = int(self.forward(self.prepare_texts(["a"], PromptChoice(), True, "right")).shape[1])

    def info(self) -> dict:
        data = super().info()
        data.update(
            text_padding=f"max_length={self.pad_length}",
            padding_side=self.padding_side,
            text_attention_mask=self.use_text_mask,
            lowercase=self.lowercase,
            max_num_patches=self.max_num_patches,
        )
        return data

    # ---------------------------------------------------------------- images
    def prepare_images(self, images: Sequence[Any]) -> list[ImageItem]:
        """Run the model's image processor on RGB PIL images; one ImageItem per image. The
        processor runs on PROCESSOR_CHUNK images at a time (it converts every image it is given to
        a full-size numpy array first; each image's output does not depend on the others)."""
        items = []
        for start in range(0, len(images), PROCESSOR_CHUNK):
            chunk = list(images[start:start + PROCESSOR_CHUNK])
            batch = self.image_processor(images=chunk, return_tensors="np")  # no torch off the compute thread
            keys = [k for k in ("pixel_values", "pixel_attention_mask", "spatial_shapes") if k in batch]
            for index in range(len(chunk)):
                tensors = {key: batch[key][index] for key in keys}
                if "pixel_attention_mask" in tensors:
                    patches = int(tensors["pixel_attention_mask"].sum())
                else:
                    patches = int(np.prod(tensors["pixel_values"].shape[-2:])) // max(1, self._patch_area())
                items.append(ImageItem(tensors, max(1, patches)))
        return items

    @property
    def image_input_size(self) -> Optional[ImageInputSize]:
        """What the image processor resizes an image to (from its configuration): NaFlex's size
        for `max_num_patches` (the processor's own function), a shortest edge (CLIP) or a fixed
        height x width (SigLIP); the image's own size when the processor does not resize; None
        when it resizes some other way. The image loader shrinks large images toward it, never
        below images.decode.MARGIN (3) times that size."""
        processor = self.image_processor
        if not self.naflex and not getattr(processor, "do_resize", True):
            return ImageInputSize(lambda w, h: (w, h))
        patch, patches = getattr(processor, "patch_size", None), getattr(processor, "max_num_patches", None)
        if self.naflex and patch and patches:
            fit = getattr(sys.modules.get(type(processor).__module__), "get_image_size_for_max_num_patches", None)
            if fit is not None:
                return ImageInputSize(lambda w, h: tuple(reversed(fit(h, w, int(patch), int(patches)))))
        size = getattr(processor, "size", None)

        def field(name: str) -> Optional[int]:
            value = size.get(name) if isinstance(size, dict) else getattr(size, name, None)
            return int(value) if value else None

        if field("shortest_edge") and not field("longest_edge"):
            return ImageInputSize.shortest_edge(field("shortest_edge"))
        if field("height") and field("width"):
            return ImageInputSize.fixed(field("width"), field("height"))
        return None

    def _patch_area(self) -> int:
        patch = getattr(self.model.config.vision_config, "patch_size", 1)
        return int(patch) * int(patch)

    # ---------------------------------------------------------------- forward
    def forward(self, items: Sequence[Any]) -> np.ndarray:
        with torch.inference_mode():
            if isinstance(items[0], TokenIds):
                features = self._text_forward(items)
            else:
                features = self._image_forward(items)
        return features.to("cpu", torch.float32).numpy()

    def _text_forward(self, items: Sequence[TokenIds]) -> torch.Tensor:
        ids, mask = pad_batch([item.ids for item in items], self.pad_id, self.padding_side == "left", self.pad_length)
        kwargs = {"input_ids": torch.from_numpy(ids).to(self.device)}
        if self.use_text_mask:
            kwargs["attention_mask"] = torch.from_numpy(mask).to(self.device)
        return _features(self.model.get_text_features(**kwargs))

    def _image_forward(self, items: Sequence[ImageItem]) -> torch.Tensor:
        kwargs = {}
        for key in items[0].tensors:
            stacked = torch.from_numpy(np.stack([item.tensors[key] for item in items])).to(self.device)
            kwargs[key] = stacked.to(self.dtype) if key == "pixel_values" else stacked
        return _features(self.model.get_image_features(**kwargs))

    def warmup(self) -> None:
        from PIL import Image

        with self.lock:
            self.forward(self.prepare_texts(["warm-up"], PromptChoice(), True, "right"))
            self.forward(self.prepare_images([Image.new("RGB", (32, 32), (127, 127, 127))]))



class Siglip2Model(MultimodalModel):
    """SigLIP 2 (NaFlex or fixed resolution): lower-cased text, no text attention mask."""

    naflex = True


class SiglipModel(MultimodalModel):
    """SigLIP: lower-cased text, no text attention mask."""


class ClipModel(MultimodalModel):
    """CLIP: its tokenizer lower-cases itself; the text tower gets the attention mask."""

    lowercase = False
    use_text_mask = True
