"""Torch 3D DWT/IDWT, the wavelet tree (C0, D0, D1), importance masks and the 64×46³ packing."""

from wala.wavelet.dwt import SUBBAND_KEYS, dwt3, idwt3, wavedec3, waverec3
from wala.wavelet.packing import PACKED_CHANNELS, pack_wavelet_tree, packed_to_tsdf, unpack_wavelet_tree
from wala.wavelet.tree import WaveletTree, importance_masks, tree_to_tsdf, tsdf_to_tree

__all__ = [
    "SUBBAND_KEYS",
    "dwt3",
    "idwt3",
    "wavedec3",
    "waverec3",
    "PACKED_CHANNELS",
    "pack_wavelet_tree",
    "packed_to_tsdf",
    "unpack_wavelet_tree",
    "WaveletTree",
    "importance_masks",
    "tree_to_tsdf",
    "tsdf_to_tree",
]
