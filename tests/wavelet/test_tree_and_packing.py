import pytest
import torch

from wala.config import RepresentationConfig
from wala.errors import WalaError
from wala.wavelet import (
    PACKED_CHANNELS,
    importance_masks,
    pack_wavelet_tree,
    tree_to_tsdf,
    tsdf_to_tree,
    unpack_wavelet_tree,
)


@pytest.fixture(scope="module")
def tree256():
    return tsdf_to_tree(torch.randn(2, 256, 256, 256) * 0.05)


def test_tree_keeps_c0_d0_d1_at_official_sizes(tree256):
    assert tree256.coarse.shape == (2, 46, 46, 46)
    assert [tuple(d.shape) for d in tree256.details] == [(2, 7, 46, 46, 46), (2, 7, 76, 76, 76)]


def test_pack_gives_64_channels_at_46_and_unpack_inverts_it(tree256):
    packed = pack_wavelet_tree(tree256)
    assert packed.shape == (2, PACKED_CHANNELS, 46, 46, 46) and PACKED_CHANNELS == 64
    back = unpack_wavelet_tree(packed, 256)
    torch.testing.assert_close(back.coarse, tree256.coarse, rtol=0, atol=0)
    for a, b in zip(back.details, tree256.details):
        torch.testing.assert_close(a, b, rtol=0, atol=0)
    torch.testing.assert_close(pack_wavelet_tree(back), packed, rtol=0, atol=0)


def test_channel_layout_is_the_official_one(tree256):
    packed = pack_wavelet_tree(tree256)
    d0, d1 = tree256.details
    official = [3, 1, 5, 0, 4, 2, 6]  # official band b (daa, ada, dda, aad, dad, add, ddd) → our SUBBAND_KEYS index
    torch.testing.assert_close(packed[:, 0], tree256.coarse)
    torch.testing.assert_close(packed[:, 57:], d0[:, official])
    for dx, b, dy, dz, i, j, k in [(0, 0, 0, 0, 4, 4, 4), (1, 3, 0, 1, 5, 7, 9), (1, 6, 1, 1, 37, 12, 20)]:
        # D1 padded by 8 on each side to 92: packed position 2X + dx holds D1 index 2X + dx − 8
        value = d1[1, official[b], 2 * i + dx - 8, 2 * j + dy - 8, 2 * k + dz - 8]
        assert packed[1, 1 + dx * 28 + b * 4 + dy * 2 + dz, i, j, k] == value
    assert packed[:, 1:57, :4].abs().max() == 0 and packed[:, 1:57, -4:].abs().max() == 0  # the padding


def test_unpack_rejects_wrong_shapes():
    with pytest.raises(WalaError, match="64"):
        unpack_wavelet_tree(torch.zeros(1, 63, 46, 46, 46))


def test_importance_masks_use_subband_max_over_32():
    detail = torch.zeros(1, 7, 4, 4, 4)
    detail[0, 2, 0, 0, 0] = 3.2
    detail[0, 2, 1, 1, 1] = 0.11  # above 3.2 / 32 = 0.1
    detail[0, 2, 2, 2, 2] = -0.09  # below
    detail[0, 5, 3, 3, 3] = 1e-6  # alone in its subband: its own max
    (mask,) = importance_masks([detail])
    assert mask[0, 2].sum() == 2 and mask[0, 2, 1, 1, 1] and not mask[0, 2, 2, 2, 2]
    assert mask[0, 5].sum() == 1 and mask.sum() == 3


def test_coarse_only_and_filtered_trees_differ_from_full():
    x = torch.randn(1, 64, 64, 64) * 0.05
    config = RepresentationConfig(resolution=64)
    tree = tsdf_to_tree(x, config)
    full = tree_to_tsdf(tree, config)
    coarse = tree_to_tsdf(tree.coarse_only(), config)
    filtered = tree_to_tsdf(tree.filtered(), config)
    err = lambda y: (y - x).pow(2).mean().item()
    assert err(full) < err(filtered) < err(coarse)
