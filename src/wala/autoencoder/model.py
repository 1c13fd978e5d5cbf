"""The wavelet VQ-VAE of the released WaLa models: (B, 64, 46, 46, 46) packed wavelet tree ⇄
(B, 4, 12, 12, 12) latent.

Module and parameter names are the official ones (`encoder.res_1.in_norm`, `quantize.embedding`,
…), so a released checkpoint loads by name. Encoder: conv → ResBlocks at 46³ → AvgPool3d(3, 2, 1)
→ 23³ → ResBlocks → pool → 12³ → ResBlocks + `res_out` → GN, SiLU, conv to e_dim. Decoder: conv →
`res_in` → ResBlocks at 12³ → trilinear ×2 cropped to the encoder's size (24 → 23) → … → 46³ → GN,
SiLU, conv to 64. `blocks` (ResBlocks per stage) is 2 in the released model; ours may use fewer,
and fewer stages: two stages pool once, for a 23³ latent (11³ from the 22³ tree of a 64³ shape).
There is no latent scaling: the denoiser samples the pre-quantization latent directly.
"""

from __future__ import annotations

import torch
import torch.nn as nn
import torch.nn.functional as F

from wala.autoencoder.quantizer import VectorQuantizer
from wala.config import AutoencoderConfig
from wala.nn import ResBlock, conv3, output_conv


def _stage_names(stage: int, count: int) -> list[str]:
    """Official block names of a stage: res_2, res_2_1, res_2_2, …"""
    return [f"res_{stage}" + (f"_{j}" if j else "") for j in range(count)]


class Encoder(nn.Module):
    def __init__(self, c: AutoencoderConfig):
        super().__init__()
        self.stages = [_stage_names(s, n) for s, n in zip((1, 2, 3), c.blocks)]
        self.in_conv = conv3(c.in_channels, c.width)
        for names in self.stages:
            for name in names:
                self.add_module(name, ResBlock(c.width, groups=c.groups))
        self.res_out = ResBlock(c.width, groups=c.groups)
        self.out_conv = output_conv(c.width, c.latent_channels, c.groups)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.in_conv(x)
        for i, names in enumerate(self.stages):
            if i:
                h = F.avg_pool3d(h, kernel_size=3, stride=2, padding=1)
            for name in names:
                h = getattr(self, name)(h)
        return self.out_conv(self.res_out(h))


class Decoder(nn.Module):
    def __init__(self, c: AutoencoderConfig):
        super().__init__()
        self.stages = [_stage_names(s, n) for s, n in zip((1, 2, 3), c.blocks)]
        self.in_conv = conv3(c.latent_channels, c.width)
        self.res_in = ResBlock(c.width, groups=c.groups)
        for names in self.stages:
            for name in names:
                self.add_module(name, ResBlock(c.width, groups=c.groups))
        self.out_conv = output_conv(c.width, c.in_channels, c.groups)

    def forward(self, z: torch.Tensor, sizes: list[int]) -> torch.Tensor:
        """`sizes`: the encoder's spatial sizes, coarsest first (e.g. [12, 23, 46])."""
        h = self.res_in(self.in_conv(z))
        for i, names in enumerate(self.stages):
            if i:
                h = F.interpolate(h, scale_factor=2, mode="trilinear", align_corners=False)
                t = sizes[i]
                h = h[:, :, :t, :t, :t]  # 12 → 24 → crop the last index to 23
            for name in names:
                h = getattr(self, name)(h)
        return self.out_conv(h)


class WaveletVQVAE(nn.Module):
    config_class = AutoencoderConfig  # what the loaders (wala.hub.generators) build it from
    checkpoint_kind = "autoencoder"  # the kind of its training checkpoints

    def __init__(self, config: AutoencoderConfig = AutoencoderConfig()):
        super().__init__()
        self.config = config
        self.encoder = Encoder(config)
        self.quantize = VectorQuantizer(config.codebook_size, config.latent_channels, config.commitment)
        self.decoder = Decoder(config)

    def sizes(self, size: int) -> list[int]:
        """Spatial sizes through the encoder for a packed tree of `size`³: 46 → [46, 23, 12]."""
        return self.config.sizes(size)

    def latent_size(self, size: int) -> int:
        return self.sizes(size)[-1]

    def encode(self, x: torch.Tensor) -> torch.Tensor:
        """(B, 64, M, M, M) → pre-quantization latent (B, 4, m, m, m)."""
        return self.encoder(x)

    def decode(self, z: torch.Tensor, size: int = 46, quantize: bool = True) -> torch.Tensor:
        """Latent (pre- or post-quantization) → packed tree (B, 64, size³); quantizes first unless
        `quantize` is False (a diagnostic: what the decoder makes of the continuous latent)."""
        return self.decoder(self.quantize(z).quantized if quantize else z, self.sizes(size)[::-1])

    @classmethod
    def from_pretrained(cls, path, device: str | torch.device = "cpu") -> WaveletVQVAE:
        """A train-ae checkpoint (EMA weights), or the autoencoder inside any generator wala reads."""
        from wala.hub.generators import load_autoencoder

        return load_autoencoder(path, cls).to(device)

    def forward(self, x: torch.Tensor):
        """Returns (reconstruction, quantizer output) for training."""
        q = self.quantize(self.encoder(x))
        return self.decoder(q.quantized, self.sizes(x.shape[-1])[::-1]), q
