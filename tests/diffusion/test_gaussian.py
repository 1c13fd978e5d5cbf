import math

import numpy as np
import pytest
import torch

from wala.config import ScheduleConfig
from wala.diffusion import gaussian


def test_respacing_keeps_the_official_timesteps():
    assert gaussian.respaced_timesteps(1000, 5) == [0, 250, 500, 749, 999]  # Python round: 749.25 → 749
    assert gaussian.respaced_timesteps(1000, 8) == [0, 143, 285, 428, 571, 714, 856, 999]
    assert (
        gaussian.respaced_timesteps(1000, 10)[:3] == [0, 111, 222]
        and len(gaussian.respaced_timesteps(1000, 1000)) == 1000
    )
    with pytest.raises(ValueError):
        gaussian.respaced_timesteps(1000, 0)


def test_cosine_and_linear_betas():
    cosine = gaussian.betas(ScheduleConfig())
    abar = np.cumprod(1 - cosine)
    f = lambda t: math.cos((t + 0.008) / 1.008 * math.pi / 2) ** 2
    assert cosine.dtype == np.float64 and cosine.max() == 0.999
    assert abs(abar[499] - f(0.5) / f(0)) < 1e-12
    linear = gaussian.betas(ScheduleConfig(betas="linear", timesteps=500))
    assert linear[0] == pytest.approx(2e-4) and linear[-1] == pytest.approx(0.04)


def test_a_respaced_chain_keeps_the_cumulative_alphas_of_its_steps():
    config = ScheduleConfig()
    full = np.cumprod(1 - gaussian.betas(config))
    chain = gaussian.Chain.build(config, 5)
    assert np.allclose(chain.abar, full[[0, 250, 500, 749, 999]], rtol=1e-12)
    assert np.allclose(np.cumprod(1 - chain.betas), chain.abar, rtol=1e-12)
    large = gaussian.Chain.build(ScheduleConfig(variance="fixed_large"), 5)
    assert np.allclose(np.exp(large.log_variance[1:]), large.betas[1:])


@pytest.mark.parametrize("prediction", ["x0", "eps", "previous"])
def test_an_oracle_denoiser_lands_on_its_x0(prediction):
    config = ScheduleConfig(prediction=prediction, betas="linear" if prediction == "eps" else "cosine")
    x0 = torch.randn(2, 4, 3, 3, 3)
    chain = gaussian.Chain.build(config, 6)
    index = {t: j for j, t in enumerate(chain.timesteps)}

    def oracle(x, t):  # the output that implies x0 at this step
        j = torch.tensor([index[int(v)] for v in t])
        if prediction == "x0":
            return x0
        abar = torch.from_numpy(chain.abar[j.numpy()]).float().reshape(-1, 1, 1, 1, 1)
        if prediction == "eps":
            return (x - abar.sqrt() * x0) / (1 - abar).sqrt()
        a = lambda v: torch.from_numpy(v[j.numpy()]).float().reshape(-1, 1, 1, 1, 1)
        return a(chain.coef_x0) * x0 + a(chain.coef_xt) * x

    g = torch.Generator().manual_seed(0)
    out = gaussian.sample(oracle, config, 6, lambda: torch.randn(x0.shape, generator=g))
    assert torch.allclose(out, x0, atol=1e-4)


def test_the_sampler_draws_initial_noise_then_one_per_step_including_the_last():
    calls = []

    def draws():
        calls.append(1)
        return torch.zeros(1, 4, 2, 2, 2)

    gaussian.sample(lambda x, t: x, ScheduleConfig(), 5, draws)
    assert len(calls) == 6


def test_training_targets_match_their_predictions():
    config = ScheduleConfig(prediction="eps")
    x0, noise, t = torch.randn(3, 4, 2, 2, 2), torch.randn(3, 4, 2, 2, 2), torch.tensor([0, 500, 999])
    x_t = gaussian.add_noise(config, x0, t, noise)
    assert torch.equal(gaussian.training_target(config, x0, x_t, t, noise), noise)
    assert torch.equal(gaussian.training_target(ScheduleConfig(), x0, x_t, t, noise), x0)
