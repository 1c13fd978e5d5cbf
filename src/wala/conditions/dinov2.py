"""Images → condition tokens: the DINOv2 ViT the released image, sketch and depth models carry
(OFFICIAL.md §4.2), with the official parameter names (`clip_model.dinov2.*`).

A 224² image is cut into 16×16 patches of 14 px; a class token and 4 register tokens join them; the
position table is the 518-px model's 37×37 one, resized bicubically by the scale factor (16 + 0.1)/37
(not to size 16: the 0.1 offset changes the numbers); pre-LN blocks with LayerScale; the final norm's
patch tokens (B, 256, width) are the condition. ViT-L/14: width 1024, 24 blocks, 16 heads, GELU MLP;
ViT-g/14: 1536, 40, 24, SwiGLU. Weights come from the checkpoint, never from a hub.

Our own module rather than timm's `vit_*_reg4_dinov2`: timm names the registers `reg_token`, has no
`mask_token`, stores positions without the class slot and resizes them by target size (no offset),
so neither keys nor numbers match; it would also bring torchvision, a second binary tied to torch.
"""

from __future__ import annotations

import torch
import torch.nn as nn
import torch.nn.functional as F

from wala.config import ConditionConfig

IMAGE_SIZE = 224  # what the released models are fed (n_px)
PATCH = 14
GRID = IMAGE_SIZE // PATCH  # 16 → 256 patch tokens
TABLE_GRID = 37  # the position table of the 518-px pretraining size
REGISTERS = 4
OFFSET = 0.1  # DINOv2's interpolate_offset

# clip_model_type → (width, depth, heads, ffn)
VIT_SIZES = {
    "dino-l-14": (1024, 24, 16, "mlp"),
    "dino-l-14_reg": (1024, 24, 16, "mlp"),
    "dino-g-14": (1536, 40, 24, "swiglu"),
}


class LayerScale(nn.Module):
    def __init__(self, width: int):
        super().__init__()
        self.gamma = nn.Parameter(torch.ones(width))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x * self.gamma


class SelfAttention(nn.Module):
    """Plain multi-head self-attention: qkv (3C, C) with bias, no q/k norm."""

    def __init__(self, width: int, heads: int):
        super().__init__()
        self.heads = heads
        self.qkv = nn.Linear(width, 3 * width)
        self.proj = nn.Linear(width, width)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        B, L, C = x.shape
        q, k, v = self.qkv(x).reshape(B, L, 3, self.heads, C // self.heads).permute(2, 0, 3, 1, 4)
        return self.proj(F.scaled_dot_product_attention(q, k, v).transpose(1, 2).reshape(B, L, C))


class GeluMlp(nn.Module):
    def __init__(self, width: int):
        super().__init__()
        self.fc1 = nn.Linear(width, 4 * width)
        self.fc2 = nn.Linear(4 * width, width)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc2(F.gelu(self.fc1(x)))


class SwiGLU(nn.Module):
    """ViT-g's feed-forward: w12 → [a | b], silu(a)·b, w3. Hidden 2/3 of 4×width, rounded up to 8."""

    def __init__(self, width: int):
        super().__init__()
        hidden = (int(4 * width * 2 / 3) + 7) // 8 * 8
        self.w12 = nn.Linear(width, 2 * hidden)
        self.w3 = nn.Linear(hidden, width)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        a, b = self.w12(x).chunk(2, dim=-1)
        return self.w3(F.silu(a) * b)


class VitBlock(nn.Module):
    def __init__(self, width: int, heads: int, ffn: str):
        super().__init__()
        self.norm1 = nn.LayerNorm(width, eps=1e-6)
        self.attn = SelfAttention(width, heads)
        self.ls1 = LayerScale(width)
        self.norm2 = nn.LayerNorm(width, eps=1e-6)
        self.mlp = SwiGLU(width) if ffn == "swiglu" else GeluMlp(width)
        self.ls2 = LayerScale(width)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x + self.ls1(self.attn(self.norm1(x)))
        return x + self.ls2(self.mlp(self.norm2(x)))


class PatchEmbed(nn.Module):
    def __init__(self, width: int):
        super().__init__()
        self.proj = nn.Conv2d(3, width, PATCH, stride=PATCH)

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        return self.proj(images).flatten(2).transpose(1, 2)  # (B, 256, width), row-major patches


class DinoV2(nn.Module):
    def __init__(self, width: int, depth: int, heads: int, ffn: str = "mlp"):
        super().__init__()
        self.patch_embed = PatchEmbed(width)
        self.cls_token = nn.Parameter(torch.zeros(1, 1, width))
        self.pos_embed = nn.Parameter(torch.zeros(1, 1 + TABLE_GRID**2, width))
        self.register_tokens = nn.Parameter(torch.zeros(1, REGISTERS, width))
        self.mask_token = nn.Parameter(torch.zeros(1, width))  # pretraining only; kept for the keys
        self.blocks = nn.ModuleList(VitBlock(width, heads, ffn) for _ in range(depth))
        self.norm = nn.LayerNorm(width, eps=1e-6)
        for p in (self.cls_token, self.pos_embed, self.register_tokens):
            nn.init.trunc_normal_(p, std=0.02)

    def positions(self) -> torch.Tensor:
        """(1, 1 + 256, width): the class entry and the 37² patch table resized to 16² (float32)."""
        table = self.pos_embed.float()
        patches = table[:, 1:].reshape(1, TABLE_GRID, TABLE_GRID, -1).permute(0, 3, 1, 2)
        scale = (GRID + OFFSET) / TABLE_GRID
        patches = F.interpolate(patches, scale_factor=(scale, scale), mode="bicubic", align_corners=False)
        return torch.cat([table[:, :1], patches.permute(0, 2, 3, 1).reshape(1, GRID * GRID, -1)], dim=1)

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        """(B, 3, 224, 224) images in [−1, 1] → (B, 256, width) normalized patch tokens."""
        x = self.patch_embed(images)
        x = torch.cat([self.cls_token.expand(len(x), -1, -1), x], dim=1)
        x = x + self.positions().to(x.dtype)
        x = torch.cat([x[:, :1], self.register_tokens.expand(len(x), -1, -1), x[:, 1:]], dim=1)
        for block in self.blocks:
            x = block(x)
        return self.norm(x)[:, 1 + REGISTERS :]


class ImageEncoder(nn.Module):
    """`clip_model`: (B, 3, 224, 224) → (B, 256, D), or (B, V, 3, 224, 224) → (B, V, 256, D) per view."""

    def __init__(self, c: ConditionConfig):
        super().__init__()
        self.dinov2 = DinoV2(c.width, c.vit_depth, c.vit_heads, c.vit_ffn)

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        if images.dim() == 5:
            B, V = images.shape[:2]
            return self.dinov2(images.flatten(0, 1)).unflatten(0, (B, V))
        return self.dinov2(images)
