"""Layers shared by the autoencoder, the denoisers and the condition encoders, with the official
parameter names: float32 GroupNorm, 3×3×3 convs and ResBlocks, the GN–SiLU–conv output head, timm-style
attention and cross-attention (per-head LayerNorm on q and k), the GELU MLP and the plain pre-norm
transformer block. Nothing here knows which model it is in."""

from __future__ import annotations

import torch
import torch.nn as nn
import torch.nn.functional as F


class GroupNorm32(nn.GroupNorm):
    """GroupNorm computed in float32 whatever the input dtype (bf16 statistics drift)."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        weight, bias = (None, None) if self.weight is None else (self.weight.float(), self.bias.float())
        return F.group_norm(x.float(), self.num_groups, weight, bias, self.eps).to(x.dtype)


def conv3(cin: int, cout: int) -> nn.Conv3d:
    return nn.Conv3d(cin, cout, kernel_size=3, padding=1)


class ResBlock(nn.Module):
    """h = conv(SiLU(GN(x))); h = conv(SiLU(GN(h))); x + h. The second conv starts at zero (the
    block starts as the identity); a change of width goes through a 3×3×3 skip conv."""

    def __init__(self, cin: int, cout: int | None = None, groups: int = 32):
        super().__init__()
        cout = cout or cin
        self.in_norm = GroupNorm32(groups, cin)
        self.in_conv = conv3(cin, cout)
        self.out_layers = nn.Sequential(GroupNorm32(groups, cout), nn.SiLU(), nn.Dropout(0.0), conv3(cout, cout))
        nn.init.zeros_(self.out_layers[3].weight)
        nn.init.zeros_(self.out_layers[3].bias)
        self.skip_connection = conv3(cin, cout) if cin != cout else nn.Identity()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.in_conv(F.silu(self.in_norm(x)))
        return self.skip_connection(x) + self.out_layers(h)


def output_conv(width: int, out: int, groups: int) -> nn.Sequential:
    """GN, SiLU, 3×3×3 conv: the head that ends an encoder or decoder."""
    return nn.Sequential(GroupNorm32(groups, width), nn.SiLU(), conv3(width, out))


def split_heads(x: torch.Tensor, heads: int) -> torch.Tensor:
    B, L, C = x.shape
    return x.reshape(B, L, heads, C // heads).transpose(1, 2)  # (B, heads, L, C/heads)


class Attention(nn.Module):
    """Self-attention as timm's `Attention(qkv_bias, qk_norm=True)`: qkv (3C, C), q/k LayerNorm per head."""

    def __init__(self, width: int, heads: int, qkv_bias: bool = True):
        super().__init__()
        self.heads = heads
        self.qkv = nn.Linear(width, 3 * width, bias=qkv_bias)
        self.q_norm = nn.LayerNorm(width // heads)
        self.k_norm = nn.LayerNorm(width // heads)
        self.proj = nn.Linear(width, width)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        B, L, C = x.shape
        q, k, v = self.qkv(x).reshape(B, L, 3, self.heads, C // self.heads).permute(2, 0, 3, 1, 4)
        h = F.scaled_dot_product_attention(self.q_norm(q), self.k_norm(k), v)
        return self.proj(h.transpose(1, 2).reshape(B, L, C))


class CrossAttention(nn.Module):
    """Queries from x (B, L, C), keys and values from a context (B, Lc, Cc): q (C, C), kv (2C, Cc)
    split as [k | v], q/k LayerNorm per head. Also the point encoder's set-attention pooling."""

    def __init__(self, width: int, context_width: int, heads: int, qkv_bias: bool = True):
        super().__init__()
        self.heads = heads
        self.q = nn.Linear(width, width, bias=qkv_bias)
        self.kv = nn.Linear(context_width, 2 * width, bias=qkv_bias)
        self.q_norm = nn.LayerNorm(width // heads)
        self.k_norm = nn.LayerNorm(width // heads)
        self.proj = nn.Linear(width, width)

    def forward(self, x: torch.Tensor, context: torch.Tensor) -> torch.Tensor:
        B, L, C = x.shape
        q = split_heads(self.q(x), self.heads)
        k, v = self.kv(context).reshape(B, context.shape[1], 2, self.heads, C // self.heads).permute(2, 0, 3, 1, 4)
        h = F.scaled_dot_product_attention(self.q_norm(q), self.k_norm(k), v)
        return self.proj(h.transpose(1, 2).reshape(B, L, C))


class Mlp(nn.Module):
    def __init__(self, width: int, hidden: int, out: int | None = None):
        super().__init__()
        self.fc1 = nn.Linear(width, hidden)
        self.act = nn.GELU(approximate="tanh")
        self.fc2 = nn.Linear(hidden, out or width)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc2(self.act(self.fc1(x)))


def layer_norm0(width: int) -> nn.LayerNorm:
    """LayerNorm without affine parameters (adaLN blocks modulate it instead)."""
    return nn.LayerNorm(width, elementwise_affine=False, eps=1e-6)


class PlainBlock(nn.Module):
    """Pre-LayerNorm transformer block without modulation (the point encoder's `t_blocks`)."""

    def __init__(self, width: int, heads: int, mlp_ratio: float = 4.0):
        super().__init__()
        self.norm1 = layer_norm0(width)
        self.attn = Attention(width, heads, qkv_bias=False)
        self.norm2 = layer_norm0(width)
        self.mlp = Mlp(width, int(width * mlp_ratio))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x + self.attn(self.norm1(x))
        return x + self.mlp(self.norm2(x))


def count_parameters(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())
