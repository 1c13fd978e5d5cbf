"""The official dense packing of a wavelet tree: (B, 64, 46, 46, 46) for a 256³ TSDF.

Channels are [C0 (1) | D1 (56) | D0 (7)]. D1 (B, 7, 76³) is zero-padded to 92³ (= 2 × 46) and cut
into 2×2×2 blocks, one per 46³ cell; within D1 the channel index is
dx·28 + subband·4 + dy·2 + dz, i.e. the order (dx, subband, dy, dz) of the official code.
The padding side (end of each axis) is inferred, not stated: `RepresentationConfig.d1_pad_at_end`.
"""
from __future__ import annotations

import pywt
import torch
import torch.nn.functional as F

from wala.errors import WalaError
from wala.wavelet.dwt import coefficient_length
from wala.wavelet.tree import WaveletTree

PACKED_CHANNELS = 1 + 56 + 7


def pack_wavelet_tree(tree: WaveletTree, pad_at_end: bool = True) -> torch.Tensor:
    """WaveletTree (C0, D0, D1) → (B, 64, M, M, M) with M the C0 size."""
    if len(tree.details) != 2:
        raise WalaError(f"packing needs exactly D0 and D1, the tree has {len(tree.details)} detail levels")
    coarse, d0, d1 = tree.coarse, tree.details[0], tree.details[1]
    b, m = coarse.shape[0], coarse.shape[-1]
    pad = 2 * m - d1.shape[-1]
    if pad < 0:
        raise WalaError(f"D1 of size {d1.shape[-1]} does not fit 2×{m} blocks")
    d1 = F.pad(d1, (0, pad) * 3 if pad_at_end else (pad, 0) * 3)
    blocks = d1.reshape(b, 7, m, 2, m, 2, m, 2).permute(0, 3, 1, 5, 7, 2, 4, 6)  # (B, dx, s, dy, dz, X, Y, Z)
    return torch.cat([coarse.unsqueeze(1), blocks.reshape(b, 56, m, m, m), d0], dim=1)


def unpack_wavelet_tree(packed: torch.Tensor, resolution: int = 256, d1_size: int | None = None,
                        pad_at_end: bool = True) -> WaveletTree:
    """Inverse of `pack_wavelet_tree`. `d1_size` defaults to the D1 size of an N=`resolution`
    bior6.8 decomposition (76 for 256)."""
    if packed.dim() != 5 or packed.shape[1] != PACKED_CHANNELS:
        raise WalaError(f"packed wavelet tree must be (B, {PACKED_CHANNELS}, M, M, M), got {tuple(packed.shape)}")
    b, m = packed.shape[0], packed.shape[-1]
    if d1_size is None:
        d1_size = _d1_size(resolution)
    coarse, blocks, d0 = packed[:, 0], packed[:, 1:57], packed[:, 57:]
    d1 = blocks.reshape(b, 2, 7, 2, 2, m, m, m).permute(0, 2, 5, 1, 6, 3, 7, 4).reshape(b, 7, 2 * m, 2 * m, 2 * m)
    crop = slice(0, d1_size) if pad_at_end else slice(2 * m - d1_size, 2 * m)
    return WaveletTree(coarse.contiguous(), [d0.contiguous(), d1[:, :, crop, crop, crop].contiguous()], resolution)



def _d1_size(resolution: int, wavelet: str = "bior6.8") -> int:
    """D1 is the second-finest of three levels: two analysis steps from N (256 → 136 → 76)."""
    length = len(pywt.Wavelet(wavelet).dec_lo)
    return coefficient_length(coefficient_length(resolution, length), length)


def packed_size(resolution: int, wavelet: str = "bior6.8") -> int:
    """M of the packed (64, M³) tree: C0's side, three analysis steps from N (256 → 46, 64 → 22)."""
    length = len(pywt.Wavelet(wavelet).dec_lo)
    return coefficient_length(_d1_size(resolution, wavelet), length)
