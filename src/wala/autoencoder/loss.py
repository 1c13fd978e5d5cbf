"""Reconstruction losses for the wavelet VQ-VAE, computed on the unpacked tree (padding excluded).

- "adaptive" (paper): MSE(C0) + ½ Σ_{D ∈ {D0, D1}} [MSE(D at its important locations) +
  MSE(D at as many random other locations)].
- "rebalanced" (official code): the same terms, each detail level scaled by
  MSE(C0).detach() / level.detach() so every level weighs like the coarse one.
- "mse": plain MSE over the packed tensor (the ablation baseline).
"Important" is |c| > subband max / 32 of the target (wala.wavelet.importance_masks). The random
others are drawn per position with probability #important / #other, so they match in expectation.

`surface_loss` is ours, an optional extra term (`surface_weight` in `wala train-ae` configs): the MSE
of the decoded TSDF itself, on the voxels within half the truncation of the surface (the clipped
plateau decodes with ripples just under the truncation, so the whole band would count it) or on its
wrong side. The coefficient losses above never see the sign of the TSDF, which is all IoU counts; at
64³ a chair leg is a voxel or two of that band.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from wala.config import RepresentationConfig
from wala.errors import WalaError
from wala.wavelet.packing import packed_to_tsdf, unpack_wavelet_tree
from wala.wavelet.tree import importance_masks

LOSSES = ("adaptive", "rebalanced", "mse")


def _masked_mse(pred: torch.Tensor, target: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    count = mask.sum()
    if count == 0:
        return pred.new_zeros(())
    return ((pred - target).pow(2) * mask).sum() / count


def reconstruction_loss(
    pred: torch.Tensor,
    target: torch.Tensor,
    kind: str = "adaptive",
    resolution: int = 256,
    importance_ratio: float = 1 / 32,
    generator: torch.Generator | None = None,
) -> torch.Tensor:
    """pred, target: packed trees (B, 64, M, M, M). Returns a scalar."""
    if kind not in LOSSES:
        raise WalaError(f"unknown reconstruction loss '{kind}' (known: {', '.join(LOSSES)})")
    pred, target = pred.float(), target.float()
    if kind == "mse":
        return F.mse_loss(pred, target)
    p, t = unpack_wavelet_tree(pred, resolution), unpack_wavelet_tree(target, resolution)
    base = F.mse_loss(p.coarse, t.coarse)
    total = base
    # the random locations are drawn where the tensors live, by a generator seeded from the caller's
    # (CPU) one: no host-sized draw and copy per step on a GPU, and still exact on resume
    device_generator = None
    if generator is not None:
        seed = int(torch.randint(2**62, (1,), generator=generator))
        device_generator = torch.Generator(pred.device).manual_seed(seed)
    for pd, td, important in zip(p.details, t.details, importance_masks(t.details, importance_ratio)):
        other = ~important
        rate = important.sum().float() / other.sum().clamp(min=1)
        draw = torch.rand(other.shape, generator=device_generator, device=other.device)
        sampled = other & (draw < rate)
        level = 0.5 * (_masked_mse(pd, td, important) + _masked_mse(pd, td, sampled))
        if kind == "rebalanced":
            level = level * (base.detach() / level.detach().clamp(min=1e-12))
        total = total + level
    return total


def surface_loss(pred: torch.Tensor, target: torch.Tensor, resolution: int = 256) -> torch.Tensor:
    """MSE between the TSDFs the two packed trees decode to, where the target is within half the truncation
    of its surface and wherever the signs differ. A scalar; differentiable through the inverse wavelet transform."""
    with torch.autocast(pred.device.type, enabled=False):  # the transform's matrix products stay fp32 under bf16
        p, t = packed_to_tsdf(pred, resolution), packed_to_tsdf(target, resolution)
    near = (t.abs() < RepresentationConfig(resolution=resolution).truncation / 2) | ((p < 0) != (t < 0))
    return _masked_mse(p, t, near)
