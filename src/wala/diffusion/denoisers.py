"""The latent denoisers, both predicting x0 from (x_t, t, condition tokens).

U-ViT (the paper's): conv_in → ResBlocks → tokens (one per latent cell, no further downsampling)
→ adaLN-Zero attention blocks with cross-attention → back to the grid → ResBlocks fed a skip from
the first ResBlocks → zero-init conv_out. DiT (the ablation baseline): patchify the latent
directly, the same attention blocks, a linear unpatchify.
"""
from __future__ import annotations

import torch
import torch.nn as nn
import torch.nn.functional as F
from torch.utils.checkpoint import checkpoint

from wala.config import DiffusionConfig
from wala.diffusion.layers import FinalLayer, ModulatedResBlock, TimestepEmbedding, TransformerBlock


class _Denoiser(nn.Module):
    """What both share: timestep + pooled-condition embedding and the attention stack."""

    def __init__(self, c: DiffusionConfig, tokens: int):
        super().__init__()
        self.config = c
        cross = c.condition.kind != "none"
        self.time = TimestepEmbedding(c.width)
        self.pooled = nn.Linear(c.width, c.width) if cross else None
        self.position = nn.Parameter(torch.randn(tokens, c.width) * 0.02)
        self.blocks = nn.ModuleList(TransformerBlock(c.width, c.heads, c.mlp_ratio, cross) for _ in range(c.depth))

    def embed(self, t: torch.Tensor, context: torch.Tensor | None) -> torch.Tensor:
        emb = self.time(t)
        if self.pooled is not None and context is not None:
            emb = emb + self.pooled(context.mean(dim=1))
        return emb

    def attend(self, tokens: torch.Tensor, emb: torch.Tensor, context: torch.Tensor | None) -> torch.Tensor:
        tokens = tokens + self.position
        for block in self.blocks:
            if self.config.checkpointing and self.training:
                tokens = checkpoint(block, tokens, emb, context, use_reentrant=False)
            else:
                tokens = block(tokens, emb, context)
        return tokens


class UViT(_Denoiser):
    def __init__(self, c: DiffusionConfig):
        super().__init__(c, c.latent_size ** 3)
        r = c.res_width
        self.conv_in = nn.Conv3d(c.latent_channels, r, 3, padding=1)
        self.down = nn.ModuleList(ModulatedResBlock(r, c.width, c.groups) for _ in range(c.res_blocks))
        self.norm_in = nn.LayerNorm(r)
        self.proj_in = nn.Linear(r, c.width)
        self.final = FinalLayer(c.width, r, zero=False)
        self.merge = nn.Conv3d(2 * r, r, 1)
        self.up = nn.ModuleList(ModulatedResBlock(r, c.width, c.groups) for _ in range(c.res_blocks))
        self.norm_out = nn.GroupNorm(min(c.groups, r), r)
        self.conv_out = nn.Conv3d(r, c.latent_channels, 3, padding=1)
        nn.init.zeros_(self.conv_out.weight)
        nn.init.zeros_(self.conv_out.bias)

    def forward(self, x: torch.Tensor, t: torch.Tensor, context: torch.Tensor | None = None) -> torch.Tensor:
        """(B, 4, m, m, m) x_t, (B,) t, (B, L, D) condition tokens or None → x0 (B, 4, m, m, m)."""
        emb = self.embed(t, context)
        h = self.conv_in(x)
        for block in self.down:
            h = block(h, emb)
        skip = h
        B, R, m = h.shape[0], h.shape[1], h.shape[-1]
        tokens = self.proj_in(self.norm_in(h.flatten(2).transpose(1, 2)))  # (B, m³, C)
        tokens = self.final(self.attend(tokens, emb, context), emb)        # (B, m³, R)
        h = self.merge(torch.cat([tokens.transpose(1, 2).reshape(B, R, m, m, m), skip], dim=1))
        for block in self.up:
            h = block(h, emb)
        return self.conv_out(F.silu(self.norm_out(h)))


class DiT(_Denoiser):
    def __init__(self, c: DiffusionConfig, patch: int = 1):
        if c.latent_size % patch:
            raise ValueError(f"latent size {c.latent_size} is not a multiple of the patch {patch}")
        super().__init__(c, (c.latent_size // patch) ** 3)
        self.patch = patch
        self.patchify = nn.Conv3d(c.latent_channels, c.width, patch, stride=patch)
        self.final = FinalLayer(c.width, c.latent_channels * patch ** 3)

    def forward(self, x: torch.Tensor, t: torch.Tensor, context: torch.Tensor | None = None) -> torch.Tensor:
        emb = self.embed(t, context)
        B, p, n = x.shape[0], self.patch, x.shape[-1] // self.patch
        tokens = self.patchify(x).flatten(2).transpose(1, 2)               # (B, n³, C)
        out = self.final(self.attend(tokens, emb, context), emb)           # (B, n³, 4·p³)
        out = out.reshape(B, n, n, n, -1, p, p, p).permute(0, 4, 1, 5, 2, 6, 3, 7)
        return out.reshape(B, -1, n * p, n * p, n * p)
