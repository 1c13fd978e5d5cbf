import pytest
import torch

from wala.autoencoder import VectorQuantizer, WaveletVQVAE
from wala.config import AutoencoderConfig
from wala.errors import WalaError
from wala.nn import count_parameters

TINY = AutoencoderConfig(width=16, groups=4, blocks=(1, 1, 1), codebook_size=32)


def test_default_config_has_the_papers_parameter_count():
    count = count_parameters(WaveletVQVAE())
    assert abs(count - 12_870_000) / 12_870_000 < 0.01
    assert count == 12_872_004  # DESIGN.md's exact figure


def test_46_cube_tree_becomes_a_4x12_cube_latent_and_back():
    model = WaveletVQVAE(TINY)
    x = torch.randn(2, 64, 46, 46, 46)
    z = model.encode(x)
    assert z.shape == (2, 4, 12, 12, 12)
    assert model.decode(z, 46).shape == x.shape
    recon, q = model(x)
    assert recon.shape == x.shape and q.indices.shape == (2, 12, 12, 12)


def test_two_stages_pool_once_for_a_finer_latent():
    """A 64³ shape's 22³ tree becomes 4×11³ with two stages (4×6³ with three); the stage blocks keep the
    official names, so the third stage's are simply absent."""
    model = WaveletVQVAE(AutoencoderConfig(width=16, groups=4, blocks=(1, 1), codebook_size=32))
    x = torch.randn(1, 64, 22, 22, 22)
    assert model.sizes(22) == [22, 11] and model.latent_size(22) == 11
    assert model.encode(x).shape == (1, 4, 11, 11, 11) and model.decode(model.encode(x), 22).shape == x.shape
    names = {n.split(".")[1] for n in model.state_dict() if n.startswith("encoder.res_")}
    assert names == {"res_1", "res_2", "res_out"}
    with pytest.raises(WalaError, match="2 or 3 stages"):
        AutoencoderConfig(blocks=(1, 1, 1, 1))


def test_decode_quantizes_first():
    model = WaveletVQVAE(TINY)
    z = torch.randn(1, 4, 6, 6, 6)
    snapped = model.quantize(z).quantized
    torch.testing.assert_close(model.decode(z, 22), model.decode(snapped, 22))


def test_quantizer_passes_gradients_straight_through_and_reports_usage():
    q = VectorQuantizer(8, 4)
    z = torch.randn(2, 4, 3, 3, 3, requires_grad=True)
    out = q(z)
    out.quantized.sum().backward()
    torch.testing.assert_close(z.grad, torch.ones_like(z))
    assert out.counts.sum() == 54 and 0 < out.usage <= 1 and 1 <= out.perplexity <= 8
    # every output is a codebook row
    rows = out.quantized.detach().movedim(1, -1).reshape(-1, 4)
    assert (
        torch.cdist(rows, q.embedding.weight, compute_mode="donot_use_mm_for_euclid_dist").min(dim=1).values.max()
        < 1e-6
    )


def test_dead_codes_restart_at_encoder_outputs():
    q = VectorQuantizer(8, 4)
    z = torch.randn(1, 4, 2, 2, 2) + 10  # far from every initial code: only one code wins
    counts = q(z).counts
    assert q.restart_dead_codes(z, counts, patience=1) == (counts == 0).sum()
    rows = z.movedim(1, -1).reshape(-1, 4)
    restarted = q.embedding.weight[counts == 0]
    assert torch.cdist(restarted, rows, compute_mode="donot_use_mm_for_euclid_dist").min(dim=1).values.max() < 1e-6
    assert q(z).usage > 1 / 8
