"""The released WaLa denoisers, predicting (per the schedule's parametrization) from (x_t, t,
processed condition tokens), with the official parameter names.

U-ViT (`Latent_UVIT`): conv_in → ResBlocks (outputs kept) → p³ patches (LN + Linear) + position
table + registers at the end → adaLN-Zero blocks (cross-attention to the condition) → registers
dropped → LN + Linear back to patches → ResBlocks fed the kept outputs LIFO → GN, SiLU, conv.
DiT (`latent_dit`): conv patch embedding + fixed 3-D sin-cos table → the same blocks → adaLN final
layer → unpatchify. Both: time embedding (+ a global projection of the condition, which drives
every adaLN; the ResBlocks get the time embedding alone), context MLP before cross-attention.
"""

from __future__ import annotations

import functools

import numpy as np
import torch
import torch.nn as nn
from torch.utils.checkpoint import checkpoint

from wala.config import DenoiserConfig
from wala.diffusion.layers import DiTBlock, GlobalProjection, ModulatedResBlock, TimestepEmbedder, modulate
from wala.nn import output_conv


def sincos_table_3d(width: int, size: int) -> np.ndarray:
    """(size³, width) fixed position table of the official DiT: thirds for (axis 1, axis 0, axis 2)
    positions of the token grid, each [sin | cos] of position × 10000^(−k/(width/6))."""
    if width % 6:
        raise ValueError(f"a 3-D sin-cos table needs a width divisible by 6, got {width}")
    a, b, c = np.meshgrid(*[np.arange(size, dtype=np.float32)] * 3, indexing="ij")
    omega = 1.0 / 10000 ** (np.arange(width // 6, dtype=np.float64) / (width / 6))

    def one(pos):
        out = pos.reshape(-1).astype(np.float64)[:, None] * omega[None]
        return np.concatenate([np.sin(out), np.cos(out)], axis=1)

    return np.concatenate([one(b), one(a), one(c)], axis=1)


def fixed_position_table(width: int, size: int) -> torch.Tensor:
    """(1, size³, width) `sincos_table_3d` as float32; on the meta device (a model built to be loaded)
    only its shape: the table is loaded with the weights, and computing it first would cost size³ × width
    of real memory for a model that does not exist yet."""
    if torch.empty(0).device.type == "meta":
        return torch.empty(1, size**3, width)
    return torch.from_numpy(sincos_table_3d(width, size)).float()[None]


def resampling(g: int, n: int) -> torch.Tensor:
    """(n, g) weights taking g cells to n along one axis over the same extent: the mean of the cells
    each covers when g ≥ n (adaptive average pooling's), else linear interpolation between cell centres
    (trilinear interpolation's, corners not aligned). As a matrix it exports to ONNX, where adaptive
    pooling does not."""
    return torch.from_numpy(_resampling_weights(g, n))


# called by every denoiser step, with a few (g, n) pairs per model. The array is cached, not a tensor:
# a tensor made while torch.export traces is a fake one, useless to a later eager call. Read only.
@functools.cache
def _resampling_weights(g: int, n: int) -> np.ndarray:
    m = np.zeros((n, g), dtype=np.float32)
    for i in range(n):
        if g >= n:
            start, end = i * g // n, -(-(i + 1) * g // n)
            m[i, start:end] = 1 / (end - start)
        else:
            x = max((i + 0.5) * g / n - 0.5, 0.0)
            low = min(int(x), g - 1)
            m[i, low] += 1 - (x - low)
            m[i, min(low + 1, g - 1)] += x - low
    return m


class _Denoiser(nn.Module):
    """What both share: time embedding, condition projections, the block stack, registers."""

    def _init_shared(self, c: DenoiserConfig, context_width: int | None):
        self.config = c
        self.t_embedder = TimestepEmbedder(c.width)
        if context_width is not None and c.res_condition:
            self.res_cond_proj_layer = GlobalProjection(context_width, c.res_condition, c.width)
        self.conditional = context_width is not None
        if self.conditional:
            self.context_mlp = (
                nn.Sequential(nn.Linear(context_width, c.width), nn.SiLU(), nn.Linear(c.width, c.width))
                if c.cross
                else nn.Identity()
            )
            if c.time_condition:
                self.global_proj = GlobalProjection(context_width, c.width, c.width)
            if c.aligned_context:
                self.context_grid = nn.Linear(context_width, c.width)
                nn.init.zeros_(self.context_grid.weight)
                nn.init.zeros_(self.context_grid.bias)

    def _embeddings(self, t: torch.Tensor, context: torch.Tensor | None):
        """(time embedding, adaLN input, context for cross-attention, res-cond vector)."""
        time = self.t_embedder(t)
        if not self.conditional:
            return time, time, None, None
        res = self.res_cond_proj_layer(context) if hasattr(self, "res_cond_proj_layer") else None
        ada = time + self.global_proj(context) if hasattr(self, "global_proj") else time
        return time, ada, self.context_mlp(context), res

    def _placed(self, tokens: torch.Tensor, context: torch.Tensor | None, n: int) -> torch.Tensor:
        """`aligned_context` (ours): condition tokens that form a g³ grid over the shape's cube, x-major
        as the voxel encoder gives them, resampled to the n³ latent tokens and added through
        a projection that starts at zero. Each latent token then sees the condition where it is, which
        cross-attention has to learn: small models trained briefly learn the family and not its proportions."""
        if not hasattr(self, "context_grid"):
            return tokens
        b, length, width = context.shape
        g = round(length ** (1 / 3))
        if g**3 != length:
            raise ValueError(f"aligned_context needs condition tokens on a cube, got {length}")
        m = resampling(g, n).to(context)
        grid = torch.einsum("bxyzc,ix,jy,kz->bijkc", context.reshape(b, g, g, g, width), m, m, m)
        return tokens + self.context_grid(grid.reshape(b, n**3, width))

    def _attend(self, tokens: torch.Tensor, ada: torch.Tensor, context: torch.Tensor | None) -> torch.Tensor:
        registers = self.config.registers
        if registers:
            tokens = torch.cat([tokens, self.register_emb.expand(len(tokens), -1, -1).to(tokens.dtype)], dim=1)
        for block in self.blocks:
            if self.config.checkpointing and self.training:
                tokens = checkpoint(block, tokens, ada, context, use_reentrant=False)
            else:
                tokens = block(tokens, ada, context)
        return tokens[:, :-registers] if registers else tokens

    def _make_blocks(self, c: DenoiserConfig, tokens: int):
        if c.registers:
            self.register_emb = nn.Parameter(nn.init.trunc_normal_(torch.zeros(1, c.registers, c.width), 0.0, 0.01))
        self.blocks = nn.ModuleList(
            DiTBlock(c.width, c.heads, cross=c.cross and self.conditional) for _ in range(c.depth)
        )


class LatentUViT(_Denoiser):
    def __init__(self, c: DenoiserConfig, context_width: int | None):
        super().__init__()
        self._init_shared(c, context_width)
        m, p, n = c.res_width, c.patch, c.latent_size // c.patch
        res = c.res_condition if self.conditional else 0
        self.conv_in = nn.Conv3d(c.latent_channels, m, 3, padding=1)
        self.input_blocks = nn.ModuleList(
            ModulatedResBlock(m, c.width, c.groups, res_condition=res) for _ in range(c.res_blocks)
        )
        # index 0 of each Sequential is the (parameter-free) rearrange of the official code
        self.to_patch_att_embedding_input = nn.Sequential(
            nn.Identity(), nn.LayerNorm(p**3 * m), nn.Linear(p**3 * m, c.width)
        )
        if c.fixed_position:
            self.pos_emb = nn.Parameter(fixed_position_table(c.width, n), requires_grad=False)
        else:
            self.pos_emb = nn.Parameter(nn.init.trunc_normal_(torch.zeros(1, n**3, c.width), 0.0, 0.01))
        self._make_blocks(c, n**3)
        self.to_patch_att_embedding_output = nn.Sequential(nn.LayerNorm(c.width), nn.Linear(c.width, p**3 * m))
        self.output_blocks = nn.ModuleList(
            ModulatedResBlock(m, c.width, c.groups, skip=True, skip_ratio=c.skip_ratio, res_condition=res)
            for _ in range(c.res_blocks)
        )
        self.out = output_conv(m, c.latent_channels, c.groups)
        nn.init.zeros_(self.out[2].weight)
        nn.init.zeros_(self.out[2].bias)

    def forward(self, x: torch.Tensor, t: torch.Tensor, context: torch.Tensor | None = None) -> torch.Tensor:
        """(B, e, G, G, G) x_t, (B,) original timestep indices, (B, L, Dc) processed condition."""
        time, ada, local, res = self._embeddings(t, context)
        h = self.conv_in(x)
        kept = []
        for block in self.input_blocks:
            h = block(h, time, res=res)
            kept.append(h)
        B, M, G = h.shape[0], h.shape[1], h.shape[-1]
        p, n = self.config.patch, G // self.config.patch
        # (B, M, n·p, n·p, n·p) → (B, n³ tokens in (h, w, l) order, p³·M features in (p1, p2, p3, c) order)
        tokens = h.reshape(B, M, n, p, n, p, n, p).permute(0, 2, 4, 6, 3, 5, 7, 1).reshape(B, n**3, p**3 * M)
        tokens = self._placed(self.to_patch_att_embedding_input(tokens) + self.pos_emb, context, n)
        tokens = self.to_patch_att_embedding_output(self._attend(tokens, ada, local))
        h = tokens.reshape(B, n, n, n, p, p, p, M).permute(0, 7, 1, 4, 2, 5, 3, 6).reshape(B, M, G, G, G)
        for block in self.output_blocks:
            h = block(h, time, skip=kept.pop(), res=res)
        return self.out(h)


class FinalLayer(nn.Module):
    def __init__(self, width: int, out: int):
        super().__init__()
        self.norm_final = nn.LayerNorm(width, elementwise_affine=False, eps=1e-6)
        self.linear = nn.Linear(width, out)
        self.adaLN_modulation = nn.Sequential(nn.SiLU(), nn.Linear(width, 2 * width))
        for layer in (self.linear, self.adaLN_modulation[1]):
            nn.init.zeros_(layer.weight)
            nn.init.zeros_(layer.bias)

    def forward(self, x: torch.Tensor, c: torch.Tensor) -> torch.Tensor:
        shift, scale = self.adaLN_modulation(c).chunk(2, dim=1)
        return self.linear(modulate(self.norm_final(x), shift, scale))


class PatchEmbed(nn.Module):
    def __init__(self, channels: int, width: int, patch: int):
        super().__init__()
        self.proj = nn.Conv3d(channels, width, patch, stride=patch)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.proj(x).flatten(2).transpose(1, 2)  # (B, n³, width), tokens in (h, w, l) order


class DiT(_Denoiser):
    def __init__(self, c: DenoiserConfig, context_width: int | None):
        super().__init__()
        n = c.latent_size // c.patch
        self.x_embedder = PatchEmbed(c.latent_channels, c.width, c.patch)
        self._init_shared(c, context_width)
        self.pos_embed = nn.Parameter(fixed_position_table(c.width, n), requires_grad=False)
        self._make_blocks(c, n**3)
        self.final_layer = FinalLayer(c.width, c.patch**3 * c.latent_channels)

    def forward(self, x: torch.Tensor, t: torch.Tensor, context: torch.Tensor | None = None) -> torch.Tensor:
        _, ada, local, _ = self._embeddings(t, context)
        B, p, e = x.shape[0], self.config.patch, self.config.latent_channels
        n = x.shape[-1] // p
        tokens = self._placed(self.x_embedder(x) + self.pos_embed, context, n)
        tokens = self.final_layer(self._attend(tokens, ada, local), ada)
        out = tokens.reshape(B, n, n, n, p, p, p, e).permute(0, 7, 1, 4, 2, 5, 3, 6)  # features (p1, p2, p3, c)
        return out.reshape(B, e, n * p, n * p, n * p)


DENOISERS = {"uvit": LatentUViT, "dit": DiT}
