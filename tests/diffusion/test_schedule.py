import math

import pytest
import torch

from wala.diffusion.sampling import sample
from wala.diffusion.schedule import add_noise, cosine_alphas_cumprod, ddim_step, ddpm_step, respaced_timesteps


def test_cosine_schedule_runs_from_clean_to_pure_noise():
    abar = cosine_alphas_cumprod(1000)
    assert abar.shape == (1000,)
    assert torch.all(abar[1:] < abar[:-1])
    assert abar[0] > 0.9999 and abar[-1] < 1e-4
    betas = 1 - abar[1:] / abar[:-1]
    assert betas.max() <= 0.999 + 1e-12
    # the cosine form: ᾱ at the middle is cos²(π/4 · (0.5 + s)/(1 + s)) / cos²(π/2 · s/(1 + s))
    s = 0.008
    expected = math.cos((0.5 + s) / (1 + s) * math.pi / 2) ** 2 / math.cos(s / (1 + s) * math.pi / 2) ** 2
    assert abar[499] == pytest.approx(expected, rel=1e-6)


def test_respacing_spreads_steps_over_the_whole_chain():
    ts = respaced_timesteps(1000, 8)
    assert ts.tolist()[0] == 0 and ts.tolist()[-1] == 999 and len(ts) == 8
    assert torch.all(ts[1:] > ts[:-1])
    assert torch.equal(respaced_timesteps(1000, 1000), torch.arange(1000))
    with pytest.raises(ValueError):
        respaced_timesteps(1000, 0)


def test_an_ancestral_step_with_the_true_x0_keeps_the_forward_marginal():
    # x_t ~ q(x_t | x0); one step to ᾱ_prev must give x_prev ~ q(x_prev | x0) = N(√ᾱ_prev x0, 1 − ᾱ_prev)
    g = torch.Generator().manual_seed(0)
    abar = cosine_alphas_cumprod(1000)
    a_t, a_prev = float(abar[700]), float(abar[300])
    x0 = torch.full((200_000,), 0.7, dtype=torch.float64)
    x_t = add_noise(x0, torch.full((len(x0),), 700), torch.randn(len(x0), generator=g, dtype=torch.float64), abar)
    x_prev = ddpm_step(x_t, x0, a_t, a_prev, torch.randn(len(x0), generator=g, dtype=torch.float64))
    assert float(x_prev.mean()) == pytest.approx(math.sqrt(a_prev) * 0.7, abs=5e-3)
    assert float(x_prev.var()) == pytest.approx(1 - a_prev, rel=1e-2)


def test_ddim_with_the_true_x0_and_noise_lands_on_the_same_noise_path():
    abar = cosine_alphas_cumprod(1000)
    x0, eps = torch.randn(64, dtype=torch.float64), torch.randn(64, dtype=torch.float64)
    a_t, a_prev = float(abar[800]), float(abar[100])
    x_t = math.sqrt(a_t) * x0 + math.sqrt(1 - a_t) * eps
    assert torch.allclose(ddim_step(x_t, x0, a_t, a_prev), math.sqrt(a_prev) * x0 + math.sqrt(1 - a_prev) * eps)


@pytest.mark.parametrize("method", ["ddpm", "ddim"])
def test_sampling_with_an_oracle_denoiser_returns_its_x0_and_is_seeded(method):
    target = torch.randn(2, 4, 3, 3, 3)
    abar = cosine_alphas_cumprod(1000)
    seen = []

    def oracle(x, t):
        seen.append(int(t[0]))
        return target + 0.01 * x  # depends on x_t, so the path matters

    runs = [sample(oracle, torch.randn(2, 4, 3, 3, 3, generator=torch.Generator().manual_seed(s)), abar, 5, method,
                   torch.Generator().manual_seed(s)) for s in (1, 1, 2)]
    assert seen[:5] == [999, 749, 500, 250, 0]
    assert torch.equal(runs[0], runs[1])
    assert not torch.equal(runs[0], runs[2])
    assert torch.allclose(runs[0], target, atol=0.05)
