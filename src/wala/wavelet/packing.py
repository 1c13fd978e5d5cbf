"""The official dense packing of a wavelet tree: (B, 64, 46, 46, 46) for a 256³ TSDF.

Channels are [C0 (1) | D1 (56) | D0 (7)], as the released WaLa models read and write them:
- sub-bands within a level in the official order hll, lhl, hhl, llh, hlh, lhh, hhh (letters for
  axes 0, 1, 2), i.e. PyWavelets keys daa, ada, dda, aad, dad, add, ddd (`OFFICIAL_BANDS`);
- D0 (46³) as channels 57 + b;
- D1 (76³) zero-padded by (92 − 76) / 2 = 8 on both sides of each axis to 92³ = 2 × 46, then cut
  into 2×2×2 blocks, one per 46³ cell: channel 1 + 28·dx + 4·b + 2·dy + dz holds padded position
  (2X + dx, 2Y + dy, 2Z + dz).
Checked against the official unpacking in tests/test_official_parity.py (wavelet_mesh fixture).
Other resolutions use the same layout with the padding split evenly (the extra sample at the end).
"""

from __future__ import annotations

import pywt
import torch
import torch.nn.functional as F

from wala.config import RepresentationConfig
from wala.errors import WalaError
from wala.wavelet.dwt import SUBBAND_KEYS, coefficient_length
from wala.wavelet.tree import WaveletTree, tree_to_tsdf

PACKED_CHANNELS = 1 + 56 + 7
OFFICIAL_BANDS = ("daa", "ada", "dda", "aad", "dad", "add", "ddd")
_TO_OFFICIAL = [SUBBAND_KEYS.index(key) for key in OFFICIAL_BANDS]  # our band index per official one
_FROM_OFFICIAL = [OFFICIAL_BANDS.index(key) for key in SUBBAND_KEYS]


def _d1_padding(m: int, d1: int) -> tuple[int, int]:
    pad = 2 * m - d1
    if pad < 0:
        raise WalaError(f"D1 of size {d1} does not fit 2×{m} blocks")
    return pad // 2, pad - pad // 2


def pack_wavelet_tree(tree: WaveletTree) -> torch.Tensor:
    """WaveletTree (C0, D0, D1) → (B, 64, M, M, M) with M the C0 size."""
    if len(tree.details) != 2:
        raise WalaError(f"packing needs exactly D0 and D1, the tree has {len(tree.details)} detail levels")
    coarse, d0, d1 = tree.coarse, tree.details[0][:, _TO_OFFICIAL], tree.details[1][:, _TO_OFFICIAL]
    b, m = coarse.shape[0], coarse.shape[-1]
    before, after = _d1_padding(m, d1.shape[-1])
    d1 = F.pad(d1, (before, after) * 3)
    blocks = d1.reshape(b, 7, m, 2, m, 2, m, 2).permute(0, 3, 1, 5, 7, 2, 4, 6)  # (B, dx, band, dy, dz, X, Y, Z)
    return torch.cat([coarse.unsqueeze(1), blocks.reshape(b, 56, m, m, m), d0], dim=1)


def unpack_wavelet_tree(packed: torch.Tensor, resolution: int = 256, d1_size: int | None = None) -> WaveletTree:
    """Inverse of `pack_wavelet_tree`. `d1_size` defaults to the D1 size of an N=`resolution`
    bior6.8 decomposition (76 for 256)."""
    if packed.dim() != 5 or packed.shape[1] != PACKED_CHANNELS:
        raise WalaError(f"packed wavelet tree must be (B, {PACKED_CHANNELS}, M, M, M), got {tuple(packed.shape)}")
    b, m = packed.shape[0], packed.shape[-1]
    if d1_size is None:
        d1_size = _d1_size(resolution)
    coarse, blocks, d0 = packed[:, 0], packed[:, 1:57], packed[:, 57:]
    d1 = blocks.reshape(b, 2, 7, 2, 2, m, m, m).permute(0, 2, 5, 1, 6, 3, 7, 4).reshape(b, 7, 2 * m, 2 * m, 2 * m)
    before, _ = _d1_padding(m, d1_size)
    crop = slice(before, before + d1_size)
    d1 = d1[:, _FROM_OFFICIAL, crop, crop, crop]
    return WaveletTree(coarse.contiguous(), [d0[:, _FROM_OFFICIAL].contiguous(), d1.contiguous()], resolution)


def packed_to_tsdf(packed: torch.Tensor, resolution: int = 256) -> torch.Tensor:
    """(B, 64, M, M, M) packed trees → (B, N, N, N) float32 TSDFs at N = `resolution` (D2 read as zeros)."""
    return tree_to_tsdf(unpack_wavelet_tree(packed.float(), resolution), RepresentationConfig(resolution=resolution))


def _d1_size(resolution: int, wavelet: str = "bior6.8") -> int:
    """D1 is the second-finest of three levels: two analysis steps from N (256 → 136 → 76)."""
    length = len(pywt.Wavelet(wavelet).dec_lo)
    return coefficient_length(coefficient_length(resolution, length), length)


def packed_size(resolution: int, wavelet: str = "bior6.8") -> int:
    """M of the packed (64, M³) tree: C0's side, three analysis steps from N (256 → 46, 64 → 22)."""
    length = len(pywt.Wavelet(wavelet).dec_lo)
    return coefficient_length(_d1_size(resolution, wavelet), length)
