import dataclasses

import pytest
import torch

from wala.config import AutoencoderConfig, ConditionConfig, DenoiserConfig, DiffusionConfig, ScheduleConfig
from wala.diffusion import gaussian
from wala.diffusion.model import LatentDiffusion
from wala.errors import WalaError
from wala.nn import count_parameters

TINY_AE = AutoencoderConfig(width=16, groups=4, blocks=(1, 1, 1), codebook_size=32)


def tiny(arch="uvit", kind="pointcloud", **changes) -> DiffusionConfig:
    condition = ConditionConfig(kind=kind, width=32, encoder_width=32, tokens=8, points=64)
    denoiser = DenoiserConfig(
        arch=arch,
        latent_size=4,
        width=48 if arch == "dit" else 32,
        depth=2,
        heads=2,
        registers=2,
        res_width=16,
        res_blocks=1,
        groups=4,
        patch=2 if arch == "dit" else 1,
        cross=kind != "none",
        res_condition=8 if kind != "none" else 0,
        skip_ratio=4,
    )
    return DiffusionConfig(
        denoiser=dataclasses.replace(denoiser, **changes), condition=condition, autoencoder=TINY_AE, resolution=64
    )


def condition_for(kind, batch=2):
    if kind == "pointcloud":
        return torch.rand(batch, 100, 3) * 1.8 - 0.9
    if kind == "voxel":
        return (torch.rand(batch, 1, 16, 16, 16) > 0.7).float()
    return None


def _perturbed(model):
    g = torch.Generator().manual_seed(1)
    for p in model.parameters():
        p.data.add_(0.05 * torch.randn(p.shape, generator=g))
    return model.eval()


@pytest.mark.parametrize("arch", ["uvit", "dit"])
@pytest.mark.parametrize("kind", ["pointcloud", "voxel", "none"])
def test_denoisers_map_latents_to_latents_and_start_at_zero(arch, kind):
    model = LatentDiffusion(tiny(arch, kind))
    x, t = torch.randn(2, 4, 4, 4, 4), torch.tensor([3, 900])
    out = model(x, t, condition_for(kind))
    assert out.shape == x.shape
    assert torch.count_nonzero(out) == 0  # zero-initialized output layer


def test_the_released_size_denoiser_counts_954m_parameters():
    with torch.device("meta"):
        paper = LatentDiffusion(DiffusionConfig())
        narrow = LatentDiffusion(DiffusionConfig(denoiser=DenoiserConfig(width=384, heads=6)))
    assert count_parameters(paper.network.unet) == 954_005_380  # full_size_keys.json's inferred U-ViT
    assert count_parameters(paper.autoencoder) == 12_872_004
    assert count_parameters(narrow.network.unet) < count_parameters(paper.network.unet) / 7


def test_guidance_scale_one_is_the_conditional_prediction_and_zero_the_unconditional():
    model = _perturbed(LatentDiffusion(tiny()))
    x, t = torch.randn(1, 4, 4, 4, 4), torch.tensor([100])
    with torch.no_grad():
        cond, zero = model.condition_pair(condition_for("pointcloud", 1))
        assert not torch.allclose(zero, torch.zeros_like(zero))  # processed zeros: mapping + positions
        conditional = model.network.unet(x, t, cond)
        unconditional = model.network.unet(x, t, zero)
        assert not torch.allclose(conditional, unconditional)
        assert torch.allclose(gaussian.guided(model.network.unet, cond, zero, 1.0)(x, t), conditional, atol=1e-6)
        assert torch.allclose(gaussian.guided(model.network.unet, cond, zero, 0.0)(x, t), unconditional, atol=1e-6)
        strong = gaussian.guided(model.network.unet, cond, zero, 2.5)(x, t)
        assert torch.allclose(strong, unconditional + 2.5 * (conditional - unconditional), atol=1e-5)


def test_condition_dropout_is_the_processed_zero_condition():
    model = _perturbed(LatentDiffusion(tiny()))
    x, t, c = torch.randn(2, 4, 4, 4, 4), torch.tensor([100, 700]), condition_for("pointcloud")
    with torch.no_grad():
        dropped = model(x, t, c, keep=torch.tensor([True, False]))
        tokens = model.encoder(c)
        assert torch.allclose(dropped[0], model.network.unet(x, t, model.process(tokens))[0], atol=1e-6)
        assert torch.allclose(
            dropped[1], model.network.unet(x, t, model.process(torch.zeros_like(tokens)))[1], atol=1e-6
        )


def test_gradient_checkpointing_gives_the_same_gradients():
    plain = _perturbed(LatentDiffusion(tiny())).train()
    checked = LatentDiffusion(tiny(checkpointing=True)).train()
    checked.load_state_dict(plain.state_dict())
    x, t, c = torch.randn(2, 4, 4, 4, 4), torch.tensor([100, 700]), condition_for("pointcloud")
    for m in (plain, checked):
        m(x, t, c).square().mean().backward()
    for (name, a), b in zip(plain.named_parameters(), checked.parameters()):
        if a.grad is not None:
            assert torch.allclose(a.grad, b.grad, atol=1e-6), name


def test_a_tiny_model_overfits_four_latents_and_samples_them_back_by_condition():
    torch.manual_seed(0)
    config = dataclasses.replace(
        tiny(width=64, heads=4),
        schedule=ScheduleConfig(),
        condition=dataclasses.replace(tiny().condition, width=64, encoder_width=64, drop=0.0),
    )
    model = LatentDiffusion(config)
    latents = torch.randn(4, 4, 4, 4, 4)
    clouds = torch.stack(
        [
            torch.rand(100, 3) * 0.4 + torch.tensor(o)
            for o in ([-0.9, -0.9, -0.9], [0.5, 0.5, -0.9], [0.5, -0.9, 0.5], [-0.9, 0.5, 0.5])
        ]
    )
    optimizer = torch.optim.Adam(model.trainable_parameters(), lr=1e-3)
    g = torch.Generator().manual_seed(0)
    for _ in range(300):
        loss = gaussian.diffusion_loss(model, config.schedule, latents, clouds, g)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    model.eval()
    out = torch.cat([model.sample_latents(clouds[i : i + 1], steps=10, seed=i) for i in range(4)])
    errors = ((out[:, None] - latents[None]) ** 2).mean(dim=(2, 3, 4, 5))  # (sample, latent)
    assert torch.equal(errors.argmin(dim=1), torch.arange(4))  # each condition brings back its own latent
    assert errors.diagonal().max() < 0.3  # latents have variance 1


@pytest.mark.parametrize("arch", ["uvit", "dit"])
def test_the_aligned_context_starts_at_zero_and_puts_each_condition_cell_at_its_place(arch):
    plain = _perturbed(LatentDiffusion(tiny(arch, "voxel")))
    aligned = LatentDiffusion(tiny(arch, "voxel", aligned_context=True))
    missing = aligned.load_state_dict(plain.state_dict(), strict=False).missing_keys
    assert missing == ["network.unet.context_grid.weight", "network.unet.context_grid.bias"]
    x, t, grid = torch.randn(1, 4, 4, 4, 4), torch.tensor([500]), condition_for("voxel", 1)
    with torch.no_grad():
        assert torch.equal(aligned.eval()(x, t, grid), plain(x, t, grid))  # a trained model may grow it
    # what the projection adds to the latent token at (i, j, k) comes from the condition tokens around
    # the same place: a condition token changed in one corner reaches the near latent tokens most
    unet = aligned.network.unet
    torch.nn.init.normal_(unet.context_grid.weight)
    tokens = torch.zeros(1, 512, 32)
    moved = tokens.clone()
    moved[0, 0] = 1.0  # condition cell (0, 0, 0) of the 8³ grid
    n = 4 // unet.config.patch
    added = unet._placed(torch.zeros(1, n**3, unet.config.width), moved, n) - unet._placed(
        torch.zeros(1, n**3, unet.config.width), tokens, n
    )
    reach = added.norm(dim=-1).reshape(n, n, n)
    assert reach[0, 0, 0] > 0 and reach[0, 0, 0] == reach.max() and reach[-1, -1, -1] == 0


@pytest.mark.parametrize("g, n", [(8, 6), (8, 4), (8, 11), (8, 8), (5, 12)])
def test_the_aligned_context_resamples_as_adaptive_pooling_and_trilinear_interpolation(g, n):
    import torch.nn.functional as F

    from wala.diffusion.denoisers import resampling

    grid = torch.randn(2, 3, g, g, g)
    m = resampling(g, n)
    ours = torch.einsum("bcxyz,ix,jy,kz->bcijk", grid, m, m, m)
    if g >= n:
        theirs = F.adaptive_avg_pool3d(grid, n)
    else:
        theirs = F.interpolate(grid, size=(n, n, n), mode="trilinear", align_corners=False)
    assert torch.allclose(ours, theirs, atol=1e-5)


def test_the_aligned_context_needs_condition_tokens_on_a_grid():
    with pytest.raises(WalaError, match="needs condition tokens on a grid.*this model has a pointcloud condition"):
        LatentDiffusion(tiny("uvit", "pointcloud", aligned_context=True))  # 8 = 2³ tokens, but not placed
    with pytest.raises(WalaError, match="this model has no condition"):
        LatentDiffusion(tiny("uvit", "none", aligned_context=True))
    grid = dataclasses.replace(
        tiny("uvit", "pointcloud", aligned_context=True).condition, encoder="grid", voxel_hidden=8
    )
    model = LatentDiffusion(dataclasses.replace(tiny("uvit", "pointcloud", aligned_context=True), condition=grid))
    assert model(torch.randn(2, 4, 4, 4, 4), torch.tensor([3, 900]), condition_for("pointcloud")).shape == (
        2,
        4,
        4,
        4,
        4,
    )
