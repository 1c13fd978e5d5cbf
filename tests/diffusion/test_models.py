import dataclasses

import pytest
import torch
import torch.nn.functional as F

from wala.config import ConditionConfig, DiffusionConfig
from wala.diffusion import LatentDiffusion, combine_guidance, guided, sample
from wala.diffusion.schedule import add_noise


def tiny(arch="uvit", kind="pointcloud", **changes) -> DiffusionConfig:
    condition = ConditionConfig(kind=kind, points=64, tokens=8, voxel_channels=8)
    return DiffusionConfig(arch=arch, latent_size=4, width=32, depth=2, heads=2, res_width=16, res_blocks=1,
                           groups=4, condition=condition, **changes)


def condition_for(kind, batch=2):
    if kind == "pointcloud":
        return torch.rand(batch, 100, 3) * 1.8 - 0.9
    if kind == "voxel":
        return (torch.rand(batch, 16, 16, 16) > 0.7).float()
    return None


def count(model) -> int:
    return sum(p.numel() for p in model.parameters())


@pytest.mark.parametrize("arch", ["uvit", "dit"])
@pytest.mark.parametrize("kind", ["pointcloud", "voxel", "none"])
def test_denoisers_map_latents_to_latents_and_start_at_zero(arch, kind):
    model = LatentDiffusion(tiny(arch, kind))
    x, t = torch.randn(2, 4, 4, 4, 4), torch.tensor([3, 900])
    out = model(x, t, condition_for(kind))
    assert out.shape == x.shape
    assert torch.count_nonzero(out) == 0  # zero-initialized output layer: a new model predicts x0 = 0


def test_the_paper_size_denoiser_counts_956m_parameters():
    with torch.device("meta"):
        paper = LatentDiffusion(DiffusionConfig(condition=ConditionConfig(kind="pointcloud")))
        dit = LatentDiffusion(DiffusionConfig(arch="dit", condition=ConditionConfig(kind="pointcloud")))
        narrow = LatentDiffusion(DiffusionConfig(width=384, heads=6, condition=ConditionConfig(kind="pointcloud")))
    assert abs(count(paper.denoiser) - 956e6) / 956e6 < 0.02
    assert abs(count(dit.denoiser) - 956e6) / 956e6 < 0.02
    assert count(narrow.denoiser) < count(paper.denoiser) / 7  # attention weights scale with width²


def test_same_seed_same_model_and_prediction():
    torch.manual_seed(3)
    a = LatentDiffusion(tiny())
    torch.manual_seed(3)
    b = LatentDiffusion(tiny())
    for p in list(a.parameters()) + list(b.parameters()):  # leave the zero init so outputs are non-trivial
        p.data.add_(0.05 * torch.randn(p.shape, generator=torch.Generator().manual_seed(p.numel())))
    x, t, c = torch.randn(2, 4, 4, 4, 4), torch.tensor([10, 500]), condition_for("pointcloud")
    assert torch.equal(a(x, t, c), b(x, t, c))


def _perturbed(model):
    g = torch.Generator().manual_seed(1)
    for p in model.parameters():
        p.data.add_(0.05 * torch.randn(p.shape, generator=g))
    return model.eval()


def test_guidance_scale_one_is_the_conditional_prediction_and_zero_the_unconditional():
    model = _perturbed(LatentDiffusion(tiny()))
    x, t = torch.randn(2, 4, 4, 4, 4), torch.tensor([100, 700])
    tokens = model.encode_condition(condition_for("pointcloud"))
    with torch.no_grad():
        conditional = model.denoiser(x, t, tokens)
        unconditional = model.denoiser(x, t, torch.zeros_like(tokens))
        assert not torch.allclose(conditional, unconditional)
        assert torch.allclose(guided(model.denoiser, tokens, 1.0)(x, t), conditional)
        assert torch.allclose(guided(model.denoiser, tokens, 0.0)(x, t), unconditional, atol=1e-6)
        assert torch.allclose(combine_guidance(conditional, unconditional, 1.0), conditional)
        strong = guided(model.denoiser, tokens, 2.5)(x, t)
        assert torch.allclose(strong, unconditional + 2.5 * (conditional - unconditional), atol=1e-5)


def test_condition_dropout_is_the_zero_condition():
    model = _perturbed(LatentDiffusion(tiny()))
    x, t, c = torch.randn(2, 4, 4, 4, 4), torch.tensor([100, 700]), condition_for("pointcloud")
    with torch.no_grad():
        dropped = model(x, t, c, keep=torch.tensor([True, False]))
        tokens = model.encode_condition(c)
        assert torch.allclose(dropped[0], model.denoiser(x, t, tokens)[0])
        assert torch.allclose(dropped[1], model.denoiser(x, t, torch.zeros_like(tokens))[1])


def test_gradient_checkpointing_gives_the_same_gradients():
    torch.manual_seed(0)
    plain = _perturbed(LatentDiffusion(tiny())).train()
    checked = LatentDiffusion(dataclasses.replace(tiny(), checkpointing=True)).train()
    checked.load_state_dict(plain.state_dict())
    x, t, c = torch.randn(2, 4, 4, 4, 4), torch.tensor([100, 700]), condition_for("pointcloud")
    for m in (plain, checked):
        m(x, t, c).square().mean().backward()
    for (name, a), b in zip(plain.named_parameters(), checked.parameters()):
        assert torch.allclose(a.grad, b.grad, atol=1e-6), name


def test_a_tiny_model_overfits_four_latents_and_samples_them_back_by_condition():
    torch.manual_seed(0)
    model = LatentDiffusion(dataclasses.replace(tiny(), width=64, depth=2, heads=4))
    latents = torch.randn(4, 4, 4, 4, 4)
    clouds = torch.stack([torch.rand(100, 3) * 0.4 + torch.tensor(o) for o in
                          ([-0.9, -0.9, -0.9], [0.5, -0.9, -0.9], [-0.9, 0.5, -0.9], [-0.9, -0.9, 0.5])])
    optimizer = torch.optim.Adam(model.parameters(), lr=3e-3)
    g = torch.Generator().manual_seed(0)
    for _ in range(200):
        t = torch.randint(1000, (4,), generator=g)
        x_t = add_noise(latents, t, torch.randn(latents.shape, generator=g), model.alphas_cumprod)
        loss = F.mse_loss(model(x_t, t, clouds), latents)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    model.eval()
    with torch.no_grad():
        tokens = model.encode_condition(clouds)
        out = sample(guided(model.denoiser, tokens, 1.0), torch.randn(4, 4, 4, 4, 4, generator=g),
                     model.alphas_cumprod, 10, "ddpm", g)
    errors = ((out[:, None] - latents[None]) ** 2).mean(dim=(2, 3, 4, 5))  # (sample, latent)
    assert torch.equal(errors.argmin(dim=1), torch.arange(4))  # each condition brings back its own latent
    assert errors.diagonal().max() < 0.2  # latents have variance 1
