"""The image codec: an image ↔ exactly 32 discrete codes (SEED-style tokenizer + pixel decoder)."""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from PIL import Image
from safetensors.torch import save_file
from torch import nn

from tmt.errors import TmtError
from tmt.files import check_format, format_header, load_safetensors
from tmt.image.config import ImageCodecConfig, tiny
from tmt.image.decoder import PixelDecoder
from tmt.image.io import ImageSource, image_to_tensor, load_image, tensor_to_image
from tmt.image.modules import (
    CausalQFormer,
    ConvEncoder,
    PatchEncoder,
    ScalarQuantizer,
    VectorQuantizer,
)
from tmt.modality import Modality

CONFIG_FILE = "config.json"
KIND = "tmt-image-codec"
WEIGHTS_FILE = "model.safetensors"


@dataclass
class CodecOutput:
    """What one training forward pass returns."""

    reconstruction: torch.Tensor
    """(B, 3, H, W) decoded pixels, roughly in [-1, 1]."""
    ids: torch.Tensor
    """(B, Q) code ids."""
    vq_loss: torch.Tensor
    """Codebook + β·commitment loss (scalar)."""
    latents: torch.Tensor
    """(B, Q, code_dim) normalised encoder outputs before quantisation (for dead-code restarts)."""
    codes: torch.Tensor
    """(B, Q, code_dim) quantised code vectors (straight-through: gradients reach the encoder)."""


class ImageCodec(nn.Module):
    """Image ↔ ``num_queries`` (32) ids in ``[0, codebook_size)``.

    ``load``/``save``/``encode``/``encode_batch``/``decode`` implement :class:`tmt.modality.Codec`;
    ``encode_ids``/``decode_batch`` are the batched tensor forms ((B, 32) ids). ``forward`` is the training pass on pixel tensors in [-1, 1].
    """

    modality = Modality.IMAGE

    def __init__(
        self, config: ImageCodecConfig | None = None, device: str | torch.device | None = None
    ) -> None:
        super().__init__()
        self.config = config or tiny()
        self.encoder: PatchEncoder | ConvEncoder = (
            ConvEncoder(self.config) if self.config.encoder == "cnn" else PatchEncoder(self.config)
        )
        self.qformer = CausalQFormer(self.config)
        self.to_code = nn.Linear(
            self.config.qformer_dim, self.config.code_dim
        )  # SEED's low-dim projection
        self.quantizer: VectorQuantizer | ScalarQuantizer = (
            ScalarQuantizer(self.config)
            if self.config.quantizer == "fsq"
            else VectorQuantizer(self.config)
        )
        self.decoder = PixelDecoder(self.config)
        if device is not None:
            self.to(device)

    # -- properties ---------------------------------------------------------------------------
    @property
    def vocab_size(self) -> int:
        return self.config.codebook_size

    @property
    def image_size(self) -> int:
        return self.config.image_size

    @property
    def num_tokens(self) -> int:
        return self.config.num_queries

    @property
    def device(self) -> torch.device:
        return self.to_code.weight.device

    # -- tensor-level API ---------------------------------------------------------------------
    def quantize(
        self, pixels: torch.Tensor, features: torch.Tensor | None = None
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
        """pixels (B, 3, H, W) → (straight-through codes (B, Q, D), ids (B, Q), VQ loss, latents).
        ``features``: the CNN trunk's feature maps of ``pixels``, if already computed."""
        patches = self.encoder(pixels) if features is None else self.encoder(pixels, features)
        z = self.to_code(self.qformer(patches)).float()  # (B, Q, code_dim)
        with torch.autocast(pixels.device.type, enabled=False):  # code choice in float32
            codes, ids, loss = self.quantizer(z)
        latents = z if self.config.quantizer == "fsq" else nn.functional.normalize(z, dim=-1)
        return codes, ids, loss, latents

    def forward(self, pixels: torch.Tensor, features: torch.Tensor | None = None) -> CodecOutput:
        codes, ids, vq_loss, latents = self.quantize(pixels, features)
        return CodecOutput(self.decoder(codes), ids, vq_loss, latents, codes)

    def render(self, ids: torch.Tensor) -> torch.Tensor:
        """ids (B, Q) → pixels (B, 3, H, W) clipped to [-1, 1]."""
        return self.decoder(self.quantizer.lookup(ids)).clamp(-1.0, 1.0)

    # -- Codec protocol -----------------------------------------------------------------------
    def preprocess(self, raw: ImageSource) -> torch.Tensor:
        """Any image source → (3, S, S) float tensor in [-1, 1]."""
        return image_to_tensor(load_image(raw, self.image_size))

    @property
    def native_size(self) -> int:
        """The side (pixels) of the square images the codec reads and writes."""
        return self.image_size

    def encode_batch(self, images: Sequence[ImageSource]) -> list[torch.Tensor]:
        """Images (paths, bytes or PIL images) → one LongTensor (32,) of ids each, on the CPU."""
        return list(self.encode_ids(images).unbind())

    @torch.inference_mode()
    def encode_ids(self, images: Sequence[ImageSource], batch_size: int = 64) -> torch.Tensor:
        """Images (paths, bytes or PIL images) → LongTensor (B, 32) of ids, on the CPU."""
        if len(images) == 0:
            return torch.empty(0, self.num_tokens, dtype=torch.long)
        was_training = self.training
        self.eval()
        out = []
        for start in range(0, len(images), batch_size):
            pixels = torch.stack([self.preprocess(x) for x in images[start : start + batch_size]])
            out.append(self.quantize(pixels.to(self.device))[1].cpu())
        self.train(was_training)
        return torch.cat(out)

    def encode(self, raw: ImageSource) -> torch.Tensor:
        """One image (path, bytes or PIL image) → LongTensor (32,) of ids in [0, vocab_size)."""
        return self.encode_ids([raw])[0]

    def _check_ids(self, ids: Any) -> torch.Tensor:
        ids = torch.as_tensor(ids)
        if ids.dtype.is_floating_point or ids.dtype == torch.bool:
            raise TmtError(f"image ids must be integers, got {ids.dtype}")
        if ids.dim() != 2 or ids.shape[1] != self.num_tokens:
            raise TmtError(
                f"an image is exactly {self.num_tokens} codes, got ids of shape {tuple(ids.shape)}"
            )
        if ids.numel() and (int(ids.min()) < 0 or int(ids.max()) >= self.vocab_size):
            raise TmtError(
                f"image ids must lie in [0, {self.vocab_size}), got [{int(ids.min())}, {int(ids.max())}]"
            )
        return ids.long()

    @torch.inference_mode()
    def decode_batch(self, ids: torch.Tensor, batch_size: int = 64) -> list[Image.Image]:
        """LongTensor (B, 32) → B RGB PIL images of ``image_size`` × ``image_size``."""
        ids = self._check_ids(ids)
        was_training = self.training
        self.eval()
        images: list[Image.Image] = []
        for start in range(0, ids.shape[0], batch_size):
            pixels = self.render(ids[start : start + batch_size].to(self.device))
            images.extend(tensor_to_image(p) for p in pixels)
        self.train(was_training)
        return images

    def decode(self, ids: torch.Tensor) -> Image.Image:
        """LongTensor (32,) → one RGB PIL image."""
        ids = torch.as_tensor(ids)
        if ids.dim() != 1:
            raise TmtError(
                f"decode takes one image's {self.num_tokens} ids (1-D), got shape {tuple(ids.shape)}"
            )
        return self.decode_batch(ids.unsqueeze(0))[0]

    # -- persistence --------------------------------------------------------------------------
    def save(self, directory: str | Path, dtype: torch.dtype = torch.float16) -> None:
        """Write ``config.json`` and ``model.safetensors`` (fp16 by default) into ``directory``."""
        directory = Path(directory)
        directory.mkdir(parents=True, exist_ok=True)
        config = {**format_header(KIND), "codec": "image", **self.config.to_dict()}
        (directory / CONFIG_FILE).write_text(json.dumps(config, indent=2) + "\n")
        state = {k: v.detach().to("cpu", dtype).contiguous() for k, v in self.state_dict().items()}
        save_file(state, str(directory / WEIGHTS_FILE), metadata={"format": "pt"})

    @classmethod
    def load(cls, directory: str | Path, device: str | torch.device = "cpu") -> ImageCodec:
        """Rebuild a codec saved by :meth:`save` (weights back in fp32), in eval mode."""
        directory = Path(directory)
        config_path, weights_path = directory / CONFIG_FILE, directory / WEIGHTS_FILE
        if not config_path.is_file() or not weights_path.is_file():
            raise TmtError(
                f"{directory} is not an image codec (needs {CONFIG_FILE} and {WEIGHTS_FILE})"
            )
        try:
            data = json.loads(config_path.read_text())
        except json.JSONDecodeError as error:
            raise TmtError(f"{config_path} is not valid JSON ({error})") from None
        data = check_format(config_path, data, KIND)
        if data.pop("codec", "image") != "image":
            raise TmtError(f"{directory} holds a {data.get('codec')!r} codec, not an image codec")
        codec = cls(ImageCodecConfig.from_dict(data))
        state = {k: v.float() for k, v in load_safetensors(weights_path).items()}
        try:
            missing, unexpected = codec.load_state_dict(state, strict=False)
        except RuntimeError:  # a tensor of the wrong shape
            raise TmtError(
                f"{weights_path} does not match its config (tensor shapes differ)"
            ) from None
        if missing or unexpected:
            raise TmtError(
                f"{weights_path} does not match its config (missing {len(missing)}, unexpected {len(unexpected)} tensors)"
            )
        return codec.to(device).eval()
