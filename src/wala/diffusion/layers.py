"""Building blocks of the released WaLa denoisers, with the official parameter names: timestep
embedding, adaLN-Zero blocks, the condition projection that joins the time embedding, and the U-ViT's
conv ResBlock. The layers they share with the autoencoder and condition encoders are in wala.nn."""

from __future__ import annotations

import math

import torch
import torch.nn as nn
import torch.nn.functional as F

from wala.nn import Attention, CrossAttention, GroupNorm32, Mlp, layer_norm0


def timestep_features(t: torch.Tensor, dim: int = 256, max_period: float = 10000.0) -> torch.Tensor:
    """Sinusoidal features of (B,) integer timesteps (original 0…T−1 indices) → (B, dim), cos first."""
    half = dim // 2
    freqs = torch.exp(-math.log(max_period) * torch.arange(half, dtype=torch.float32) / half).to(t.device)
    angles = t[:, None].float() * freqs[None]
    return torch.cat([torch.cos(angles), torch.sin(angles)], dim=-1)


class TimestepEmbedder(nn.Module):
    def __init__(self, width: int, features: int = 256):
        super().__init__()
        self.features = features
        self.mlp = nn.Sequential(nn.Linear(features, width), nn.SiLU(), nn.Linear(width, width))
        nn.init.normal_(self.mlp[0].weight, std=0.02)
        nn.init.normal_(self.mlp[2].weight, std=0.02)

    def forward(self, t: torch.Tensor) -> torch.Tensor:
        return self.mlp(timestep_features(t, self.features).to(self.mlp[0].weight.dtype))


def modulate(x: torch.Tensor, shift: torch.Tensor, scale: torch.Tensor) -> torch.Tensor:
    """adaLN: (B, L, C) tokens, (B, C) shift and scale."""
    return x * (1 + scale.unsqueeze(1)) + shift.unsqueeze(1)


class DiTBlock(nn.Module):
    """adaLN-Zero block: x += g1·attn(mod(LN(x))); [cross: x += cross_attn(x, context), no norm, no
    gate]; x += g2·mlp(mod(LN(x))). The modulation starts at zero: a new block is the identity."""

    def __init__(self, width: int, heads: int, cross: bool, mlp_ratio: float = 4.0):
        super().__init__()
        self.norm1 = layer_norm0(width)
        self.attn = Attention(width, heads)
        self.norm2 = layer_norm0(width)
        self.mlp = Mlp(width, int(width * mlp_ratio))
        self.adaLN_modulation = nn.Sequential(nn.SiLU(), nn.Linear(width, 6 * width))
        nn.init.zeros_(self.adaLN_modulation[1].weight)
        nn.init.zeros_(self.adaLN_modulation[1].bias)
        self.cross_attn = CrossAttention(width, width, heads) if cross else None

    def forward(self, x: torch.Tensor, c: torch.Tensor, context: torch.Tensor | None) -> torch.Tensor:
        shift1, scale1, gate1, shift2, scale2, gate2 = self.adaLN_modulation(c).chunk(6, dim=1)
        x = x + gate1.unsqueeze(1) * self.attn(modulate(self.norm1(x), shift1, scale1))
        if self.cross_attn is not None:
            x = x + self.cross_attn(x, context)
        return x + gate2.unsqueeze(1) * self.mlp(modulate(self.norm2(x), shift2, scale2))


class GlobalProjection(nn.Module):
    """Condition tokens (B, L, Dc) → one vector (B, out): Linear–LN–SiLU–Linear–LN–SiLU per token,
    mean over tokens, Linear–SiLU–Linear. Joins the time embedding (and the ResBlocks' res-cond)."""

    def __init__(self, context_width: int, out: int, hidden: int):
        super().__init__()
        self.proj_layer = nn.Sequential(
            nn.Linear(context_width, hidden),
            nn.LayerNorm(hidden),
            nn.SiLU(),
            nn.Linear(hidden, hidden),
            nn.LayerNorm(hidden),
            nn.SiLU(),
        )
        self.mlp = nn.Sequential(nn.Linear(hidden, out), nn.SiLU(), nn.Linear(out, out))

    def forward(self, context: torch.Tensor) -> torch.Tensor:
        return self.mlp(self.proj_layer(context).mean(dim=1))


class ModulatedResBlock(nn.Module):
    """The U-ViT's conv ResBlock: GN → [+ skip] → SiLU → conv; GN scale-shifted by the time
    embedding (scale first) [× a res-cond projection]; SiLU → zero-init conv; + x. Output blocks
    take a skip from the matching input block: normalized, then gated by a squeeze-excitation
    (`learnable_skip_r`) or averaged with h."""

    def __init__(
        self,
        channels: int,
        emb_width: int,
        groups: int = 32,
        skip: bool = False,
        skip_ratio: int = 0,
        res_condition: int = 0,
    ):
        super().__init__()
        if skip:
            self.skip_norm = GroupNorm32(groups, channels)
            if skip_ratio:
                self.skip_learn_f = nn.Sequential(
                    nn.Linear(channels, channels // skip_ratio),
                    nn.ReLU(),
                    nn.Linear(channels // skip_ratio, channels),
                    nn.Sigmoid(),
                )
        self.skip, self.learned_skip = skip, bool(skip and skip_ratio)
        self.in_norm = GroupNorm32(groups, channels)
        self.in_conv = nn.Conv3d(channels, channels, 3, padding=1)
        self.emb_layers = nn.Sequential(nn.SiLU(), nn.Linear(emb_width, 2 * channels))
        self.out_layers = nn.Sequential(
            GroupNorm32(groups, channels), nn.SiLU(), nn.Dropout(0.0), nn.Conv3d(channels, channels, 3, padding=1)
        )
        nn.init.zeros_(self.out_layers[3].weight)
        nn.init.zeros_(self.out_layers[3].bias)
        if res_condition:
            self.linear_res_emb = nn.Linear(res_condition, channels)
        self.res_condition = bool(res_condition)

    def forward(
        self, x: torch.Tensor, emb: torch.Tensor, skip: torch.Tensor | None = None, res: torch.Tensor | None = None
    ) -> torch.Tensor:
        h = self.in_norm(x)
        if self.skip:
            s = self.skip_norm(skip)
            if self.learned_skip:
                h = h + self.skip_learn_f(s.mean(dim=(-3, -2, -1)))[..., None, None, None] * s
            else:
                h = (h + s) / math.sqrt(2)
        h = self.in_conv(F.silu(h))
        scale, shift = self.emb_layers(emb).to(h.dtype)[..., None, None, None].chunk(2, dim=1)
        h = self.out_layers[0](h) * (1 + scale) + shift
        if self.res_condition:
            h = h * self.linear_res_emb(res)[..., None, None, None]
        return x + self.out_layers[1:](h)
