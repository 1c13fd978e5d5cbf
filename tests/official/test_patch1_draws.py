"""Seeded sampling at the released patch size 1 (OFFICIAL.md §6): the official loop draws each step's noise
with `randn_like(x_t)`, in x_t's memory layout, so a seed gives other numbers once x_t turns channels-last.

The shared fixtures use patch 2, whose denoiser output is contiguous. These tests build their own
official-format models at patch 1 (the shared point-cloud model with `att_patch_size` 1, its
patch-sized weights cut to the new size, for each prediction and variance type) and compare wala's
sampler with the official sampling loop written out step by step: the global generator seeded once,
the guided batch of two, the coefficients expanded over the sample, `randn_like` of the current x_t.
"""

import numpy as np
import pytest
import torch

from wala.config import DenoiserConfig, ScheduleConfig
from wala.diffusion.gaussian import Chain
from wala.diffusion.layout import denoiser_output_strides, official_draw_strides
from wala.diffusion.model import LatentDiffusion

CHANNELS_LAST = (6912, 1, 576, 48, 4)  # OFFICIAL.md §6, measured with the official code: (1, 4, 12, 12, 12)
CONTIGUOUS = (6912, 1728, 144, 12, 1)
PREDICTIONS = {"x0": "START_X", "eps": "EPSILON"}
VARIANCES = {"fixed_small": "FIXED_SMALL", "fixed_large": "FIXED_LARGE"}


def at_patch_one(state: dict) -> dict:
    """The shared U-ViT's patch-2 weights cut to patch 1: 8× fewer patch features, 8× more positions."""
    out = dict(state)
    for key, value in state.items():
        if ".to_patch_att_embedding_input.1." in key or key.endswith("to_patch_att_embedding_output.1.bias"):
            out[key] = value[: len(value) // 8].clone()
        elif key.endswith("to_patch_att_embedding_input.2.weight"):
            out[key] = value[:, : value.shape[1] // 8].clone()
        elif key.endswith("to_patch_att_embedding_output.1.weight"):
            out[key] = value[: len(value) // 8].clone()
        elif key.endswith("unet.pos_emb"):
            tiled = value.repeat(1, 8, 1)
            out[key] = tiled + 0.01 * torch.arange(tiled.shape[1], dtype=tiled.dtype)[None, :, None].sin()
    return out


@pytest.fixture
def patch_one(official, copy_model, tmp_path):
    """(prediction, variance) → a patch-1 official-format point-cloud model folder."""

    def make(prediction: str, variance: str):
        folder, _, _ = official("pc")

        def args(values):
            values.update(
                att_patch_size=1,
                diffusion_model_mean_type=PREDICTIONS[prediction],
                diffusion_model_var_type=VARIANCES[variance],
            )
            return values

        return copy_model(folder, tmp_path / f"{prediction}-{variance}", state=at_patch_one, args=args)

    return make


def official_loop(model: LatentDiffusion, condition, steps: int, guidance: float, seed: int):
    """The official p_sample_loop for one sample, written out: → (final latent, the strides of every draw)."""
    schedule = model.config.schedule
    chain = Chain.build(schedule, steps)
    conditional, unconditional = model.condition_pair(condition)
    torch.manual_seed(seed)
    x = torch.randn(1, 4, 12, 12, 12)
    strides = [x.stride()]

    def expanded(values: np.ndarray, j: int) -> torch.Tensor:
        return torch.from_numpy(np.array(values[[j]])).float().reshape(1, 1, 1, 1, 1).expand(x.shape)

    with torch.no_grad():
        for j in reversed(range(len(chain.timesteps))):
            t = torch.tensor([chain.timesteps[j]])
            if unconditional is None:
                out = model.network.unet(x, t, conditional)
            else:
                both = model.network.unet(
                    torch.cat([x] * 2), torch.cat([t] * 2), torch.cat([unconditional, conditional])
                )
                e_u, e_c = both.chunk(2)
                out = e_u + guidance * (e_c - e_u)
            if schedule.prediction == "x0":
                x0 = out
            else:
                x0 = expanded(np.sqrt(1 / chain.abar), j) * x - expanded(np.sqrt(1 / chain.abar - 1), j) * out
            mean = expanded(chain.coef_x0, j) * x0 + expanded(chain.coef_xt, j) * x
            noise = torch.randn_like(x)
            strides.append(noise.stride())
            keep = torch.tensor([float(j != 0)]).view(-1, 1, 1, 1, 1)
            x = mean + keep * torch.exp(0.5 * expanded(chain.log_variance, j)) * noise
    return x, strides


def test_the_derived_layouts_are_the_measured_ones():
    released = DenoiserConfig()  # the 1B U-ViT: patch 1, 128 ResBlock channels
    assert denoiser_output_strides(released, 2) == CHANNELS_LAST  # guided: a batch of two
    assert denoiser_output_strides(DenoiserConfig(patch=2), 2) == CONTIGUOUS  # the shared fixtures' size
    x0 = official_draw_strides(ScheduleConfig(prediction="x0"), released, 5, guided=True)
    assert x0 == [CONTIGUOUS, CONTIGUOUS] + [CHANNELS_LAST] * 4  # x_T, step 1's draw, then channels-last
    eps = official_draw_strides(ScheduleConfig(prediction="eps"), released, 5, guided=True)
    assert eps == [CONTIGUOUS] * 6  # x0 is computed from x_t first: x_t stays contiguous


@pytest.mark.parametrize("variance", VARIANCES)
@pytest.mark.parametrize("prediction", PREDICTIONS)
def test_a_patch_one_model_draws_as_the_official_loop(patch_one, prediction, variance):
    model = LatentDiffusion.from_pretrained(patch_one(prediction, variance))
    assert model.config.denoiser.patch == 1 and model.config.schedule.prediction == prediction
    condition = torch.from_numpy(np.random.default_rng(0).uniform(-0.9, 0.9, (1, 500, 3)).astype(np.float32))
    steps, guidance, seed = 5, 3.0, 42
    expected, strides = official_loop(model, condition, steps, guidance, seed)
    derived = official_draw_strides(model.config.schedule, model.config.denoiser, steps, guided=True)
    assert derived == strides  # the layout of every draw, replayed without the network
    latent = model.sample_latents(condition, steps, guidance, seed)
    assert float((latent - expected).abs().max()) <= 1e-5
    if prediction == "x0":  # draws 3… are channels-last: contiguous draws would give another sample
        assert strides[2:] == [CHANNELS_LAST] * (steps - 1)
        model.source = "wala"  # wala's own models draw contiguous noise
        assert float((model.sample_latents(condition, steps, guidance, seed) - expected).abs().max()) > 1e-2
    else:
        assert strides == [CONTIGUOUS] * (steps + 1)
