import numpy as np
import pytest
import pywt
import torch

from wala.wavelet.dwt import SUBBAND_KEYS, dwt3, idwt3, wavedec3, waverec3


@pytest.mark.parametrize("n", [32, 33, 40, 64])
def test_wavedec3_matches_pywavelets_in_float32(n):
    x = np.random.default_rng(n).standard_normal((n, n, n)).astype(np.float32) * 0.1
    ours = wavedec3(torch.from_numpy(x)[None], "bior6.8", 3)
    ref = pywt.wavedecn(x, "bior6.8", mode="zero", level=3)
    assert ours[0][0].shape == ref[0].shape
    np.testing.assert_allclose(ours[0][0].numpy(), ref[0], atol=1e-5)
    for level in range(1, 4):
        for band, key in enumerate(SUBBAND_KEYS):
            np.testing.assert_allclose(ours[level][0, band].numpy(), ref[level][key], atol=1e-5)


def test_sizes_at_256_are_136_76_46():
    coeffs = wavedec3(torch.zeros(1, 256, 256, 256))
    assert [c.shape[-1] for c in coeffs] == [46, 46, 76, 136]
    assert coeffs[1].shape[1] == 7


@pytest.mark.parametrize("n", [32, 33, 48])
def test_waverec3_reconstructs_perfectly_and_matches_pywavelets(n):
    x = np.random.default_rng(1).standard_normal((n, n, n)).astype(np.float32)
    coeffs = wavedec3(torch.from_numpy(x)[None])
    back = waverec3(coeffs, size=n)[0].numpy()
    np.testing.assert_allclose(back, x, atol=1e-5)
    ref = pywt.waverecn(pywt.wavedecn(x, "bior6.8", mode="zero", level=3), "bior6.8", mode="zero")
    np.testing.assert_allclose(back, ref[:n, :n, :n], atol=1e-5)


def test_batch_equals_items_one_by_one():
    x = torch.randn(3, 32, 32, 32)
    together = dwt3(x)
    for i in range(3):
        torch.testing.assert_close(together[i : i + 1], dwt3(x[i : i + 1]))


def test_transform_is_differentiable():
    x = torch.randn(1, 32, 32, 32, dtype=torch.float64, requires_grad=True)
    bands = dwt3(x)
    weights = torch.randn_like(bands)
    (bands * weights).sum().backward()
    # the analysis is linear, so the gradient is its adjoint applied to the weights
    assert x.grad is not None and x.grad.abs().sum() > 0
    assert torch.autograd.gradcheck(
        lambda t: idwt3(dwt3(t)).sum(), (torch.randn(1, 20, 20, 20, dtype=torch.float64, requires_grad=True),)
    )


def test_missing_detail_level_reads_as_zeros():
    x = torch.randn(1, 32, 32, 32)
    coeffs = wavedec3(x)
    dropped = waverec3(coeffs[:3] + [None], size=32)
    zeroed = waverec3(coeffs[:3] + [torch.zeros_like(coeffs[3])], size=32)
    torch.testing.assert_close(dropped, zeroed)
