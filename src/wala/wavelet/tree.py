"""The WaLa wavelet tree: the coarse coefficients C0 and the two coarsest detail levels D0, D1.

From a 256³ TSDF: C0 (B, 46, 46, 46), D0 (B, 7, 46, 46, 46), D1 (B, 7, 76, 76, 76); the finest
details D2 (B, 7, 136, 136, 136) are dropped and read back as zeros.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from wala.config import RepresentationConfig
from wala.wavelet.dwt import wavedec3, waverec3


@dataclass
class WaveletTree:
    coarse: torch.Tensor  # C0 (B, M, M, M)
    details: list[torch.Tensor]  # [D0 (B, 7, M, M, M), D1 (B, 7, ...)], coarsest first
    resolution: int  # N of the TSDF it came from

    def to(self, device: torch.device | str) -> WaveletTree:
        return WaveletTree(self.coarse.to(device), [d.to(device) for d in self.details], self.resolution)

    def to_arrays(self) -> dict[str, np.ndarray]:
        """The first shape as the arrays wala files store: coarse (M³), d0 (7, M³), d1 (7, M1³)."""
        return {
            "coarse": self.coarse[0].cpu().numpy(),
            "d0": self.details[0][0].cpu().numpy(),
            "d1": self.details[1][0].cpu().numpy(),
        }

    @classmethod
    def from_arrays(cls, arrays, resolution: int) -> WaveletTree:
        """Inverse of `to_arrays`: a batch of one from a mapping holding coarse, d0 and d1."""
        coarse, d0, d1 = (torch.from_numpy(np.asarray(arrays[key]))[None] for key in ("coarse", "d0", "d1"))
        return cls(coarse, [d0, d1], resolution)

    def coarse_only(self) -> WaveletTree:
        """The same tree with every detail zeroed: the C0-only baseline."""
        return WaveletTree(self.coarse, [torch.zeros_like(d) for d in self.details], self.resolution)

    def filtered(self, ratio: float = 1 / 32) -> WaveletTree:
        """The tree with unimportant detail coefficients zeroed (see `importance_masks`)."""
        masks = importance_masks(self.details, ratio)
        return WaveletTree(self.coarse, [d * m for d, m in zip(self.details, masks)], self.resolution)


def tsdf_to_tree(tsdf: torch.Tensor, config: RepresentationConfig = RepresentationConfig()) -> WaveletTree:
    """(B, N, N, N) TSDF → wavelet tree keeping `config.kept_detail_levels` detail levels."""
    coeffs = wavedec3(tsdf, config.wavelet, config.levels)
    return WaveletTree(coeffs[0], coeffs[1 : 1 + config.kept_detail_levels], tsdf.shape[-1])


def tree_to_tsdf(tree: WaveletTree, config: RepresentationConfig = RepresentationConfig()) -> torch.Tensor:
    """Wavelet tree → (B, N, N, N) TSDF, dropped detail levels taken as zeros."""
    missing = config.levels - len(tree.details)
    return waverec3([tree.coarse, *tree.details] + [None] * missing, config.wavelet, tree.resolution)


def importance_masks(details: list[torch.Tensor], ratio: float = 1 / 32) -> list[torch.Tensor]:
    """Per level, a bool mask of the "important" coefficients: |c| > ratio × max |c| of its
    subband, per shape. Shapes as the details: (B, 7, ...)."""
    masks = []
    for detail in details:
        peak = detail.abs().flatten(2).amax(dim=2)  # (B, 7)
        masks.append(detail.abs() > ratio * peak[:, :, None, None, None])
    return masks
