import pytest
import torch

from wala.autoencoder import reconstruction_loss, surface_loss
from wala.config import RepresentationConfig
from wala.errors import WalaError
from wala.sdf.grid import grid_points
from wala.sdf.shapes import sphere
from wala.wavelet import WaveletTree, importance_masks, pack_wavelet_tree, tsdf_to_tree

CONFIG = RepresentationConfig(resolution=64)


def _pair():
    target_tree = tsdf_to_tree(torch.randn(2, 64, 64, 64).clamp(-0.1, 0.1), CONFIG)
    target = pack_wavelet_tree(target_tree)
    pred = target + 0.01 * torch.randn_like(target)
    return pred, target, target_tree


def test_mse_is_plain_mse_over_the_packed_tensor():
    pred, target, _ = _pair()
    assert reconstruction_loss(pred, target, "mse", 64) == pytest.approx(((pred - target) ** 2).mean().item())


def test_adaptive_loss_counts_important_coefficients_fully():
    pred, target, tree = _pair()
    # an error only at important D0 locations: the loss sees it at full weight, halved
    masks = importance_masks(tree.details)
    bumped = WaveletTree(tree.coarse, [tree.details[0] + 0.1 * masks[0], tree.details[1]], 64)
    loss = reconstruction_loss(
        pack_wavelet_tree(bumped), target, "adaptive", 64, generator=torch.Generator().manual_seed(0)
    )
    assert loss.item() == pytest.approx(0.5 * 0.01, rel=1e-4)
    # the same error spread over unimportant locations is seen only through the random sample
    assert reconstruction_loss(pred, target, "adaptive", 64, generator=torch.Generator().manual_seed(0)) > 0


def test_rebalanced_loss_weighs_each_level_like_the_coarse_one():
    pred, target, _ = _pair()
    g = torch.Generator().manual_seed(0)
    base = ((pred[:, 0] - target[:, 0]) ** 2).mean().item()
    assert reconstruction_loss(pred, target, "rebalanced", 64, generator=g).item() == pytest.approx(3 * base, rel=1e-5)


def test_losses_have_gradients_and_unknown_kinds_are_refused():
    pred, target, _ = _pair()
    pred.requires_grad_(True)
    for kind in ("adaptive", "rebalanced", "mse"):
        pred.grad = None
        reconstruction_loss(pred, target, kind, 64, generator=torch.Generator().manual_seed(1)).backward()
        assert pred.grad.abs().sum() > 0
    with pytest.raises(WalaError, match="unknown reconstruction loss"):
        reconstruction_loss(pred, target, "l1", 64)


def _bumped_sphere(center):
    """Packed trees of a 64³ sphere TSDF (radius 0.6) and of the same TSDF with a small negative bump
    (−0.05, σ 2 voxels) at `center`."""
    points = grid_points(64)
    tsdf = sphere(points, (0, 0, 0), 0.6).clamp(-0.1, 0.1)
    bump = -0.05 * torch.exp(-((points - torch.tensor(center)) ** 2).sum(-1) / (2 * (2 / 32) ** 2))
    return [pack_wavelet_tree(tsdf_to_tree(t[None], CONFIG)) for t in (tsdf + bump, tsdf)]


def test_surface_loss_sees_errors_at_the_surface_not_deep_inside():
    pred, target = _bumped_sphere((0.0, 0.0, 0.0))
    assert surface_loss(target, target, 64).item() == 0
    deep = surface_loss(pred, target, 64).item()  # 0.6 from the surface, keeping the sign
    pred, target = _bumped_sphere((0.6, 0.0, 0.0))
    at_surface = surface_loss(pred, target, 64)  # moves the surface
    assert at_surface > 1e-6 and deep < 0.01 * at_surface.item()
    pred.requires_grad_(True)
    surface_loss(pred, target, 64).backward()
    assert pred.grad.abs().sum() > 0
