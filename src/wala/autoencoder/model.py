"""The wavelet VQ-VAE: (B, 64, 46, 46, 46) packed wavelet tree ⇄ (B, 4, 12, 12, 12) latent.

Conv3d ResBlocks (GroupNorm + SiLU, second conv zero-initialized) with two average-pool
downsamplings 46 → 23 → 12; the decoder mirrors them with trilinear ×2 upsampling cropped to the
encoder's sizes. `encode` gives the pre-quantization latent the diffusion model is trained on;
`decode` quantizes it first ("pre-quant decoding").
"""
from __future__ import annotations

import torch
import torch.nn as nn
import torch.nn.functional as F

from wala.autoencoder.quantizer import VectorQuantizer
from wala.config import AutoencoderConfig


def conv3(cin: int, cout: int) -> nn.Conv3d:
    return nn.Conv3d(cin, cout, kernel_size=3, padding=1)


class ResBlock(nn.Module):
    def __init__(self, width: int, groups: int):
        super().__init__()
        self.norm1 = nn.GroupNorm(groups, width)
        self.conv1 = conv3(width, width)
        self.norm2 = nn.GroupNorm(groups, width)
        self.conv2 = conv3(width, width)
        nn.init.zeros_(self.conv2.weight)  # each block starts as the identity
        nn.init.zeros_(self.conv2.bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.conv1(F.silu(self.norm1(x)))
        return x + self.conv2(F.silu(self.norm2(h)))


def _blocks(count: int, width: int, groups: int) -> nn.Sequential:
    return nn.Sequential(*(ResBlock(width, groups) for _ in range(count)))


def downsampled_sizes(size: int, levels: int) -> list[int]:
    """Spatial sizes after each AvgPool3d(3, 2, 1): 46 → [46, 23, 12]."""
    sizes = [size]
    for _ in range(levels):
        sizes.append((sizes[-1] - 1) // 2 + 1)
    return sizes


class Encoder(nn.Module):
    def __init__(self, c: AutoencoderConfig):
        super().__init__()
        self.conv_in = conv3(c.in_channels, c.width)
        self.stages = nn.ModuleList(_blocks(n, c.width, c.groups) for n in c.blocks)
        self.norm_out = nn.GroupNorm(c.groups, c.width)
        self.conv_out = conv3(c.width, c.latent_channels)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.conv_in(x)
        for i, stage in enumerate(self.stages):
            if i > 0:
                h = F.avg_pool3d(h, kernel_size=3, stride=2, padding=1)
            h = stage(h)
        return self.conv_out(F.silu(self.norm_out(h)))


class Decoder(nn.Module):
    def __init__(self, c: AutoencoderConfig):
        super().__init__()
        self.conv_in = conv3(c.latent_channels, c.width)
        self.stages = nn.ModuleList(_blocks(n, c.width, c.groups) for n in reversed(c.blocks))
        self.norm_out = nn.GroupNorm(c.groups, c.width)
        self.conv_out = conv3(c.width, c.in_channels)

    def forward(self, z: torch.Tensor, sizes: list[int]) -> torch.Tensor:
        """`sizes`: the encoder's spatial sizes, finest first (e.g. [46, 23, 12])."""
        h = self.conv_in(z)
        targets = sizes[::-1]
        for i, stage in enumerate(self.stages):
            if i > 0:
                h = F.interpolate(h, scale_factor=2, mode="trilinear", align_corners=False)
                t = targets[i]
                h = h[:, :, :t, :t, :t]  # 12 → 24 → crop to 23
            h = stage(h)
        return self.conv_out(F.silu(self.norm_out(h)))


class WaveletVQVAE(nn.Module):
    def __init__(self, config: AutoencoderConfig = AutoencoderConfig()):
        super().__init__()
        self.config = config
        self.encoder = Encoder(config)
        self.quantizer = VectorQuantizer(config.codebook_size, config.latent_channels, config.commitment)
        self.decoder = Decoder(config)

    def sizes(self, size: int) -> list[int]:
        """Spatial sizes through the encoder for a packed tree of `size`³: 46 → [46, 23, 12]."""
        return downsampled_sizes(size, len(self.config.blocks) - 1)

    def latent_size(self, size: int) -> int:
        return self.sizes(size)[-1]

    def encode(self, x: torch.Tensor) -> torch.Tensor:
        """(B, 64, M, M, M) → pre-quantization latent (B, 4, m, m, m)."""
        return self.encoder(x)

    def decode(self, z: torch.Tensor, size: int = 46, quantize: bool = True) -> torch.Tensor:
        """Latent (pre- or post-quantization) → packed tree (B, 64, size³); quantizes first unless
        `quantize` is False (a diagnostic: what the decoder makes of the continuous latent)."""
        return self.decoder(self.quantizer(z).quantized if quantize else z, self.sizes(size))

    def forward(self, x: torch.Tensor):
        """Returns (reconstruction, quantizer output) for training."""
        z = self.encoder(x)
        q = self.quantizer(z)
        return self.decoder(q.quantized, self.sizes(x.shape[-1])), q


def count_parameters(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())
