import pytest

from wala.config import load_config
from wala.errors import WalaError
from wala.train.autoencoder import AutoencoderTrainConfig


def test_numbers_written_without_a_dot_are_numbers(tmp_path):
    path = tmp_path / "run.yaml"
    path.write_text("train:\n  lr: 1e-4\n  steps: 20\n")  # YAML 1.1 reads 1e-4 as a string
    config = load_config(AutoencoderTrainConfig, path, ["train.min_lr=1e-6", "train.ema_decay=1"])
    assert config.train.lr == 1e-4 and isinstance(config.train.lr, float)
    assert config.train.min_lr == 1e-6 and config.train.ema_decay == 1.0 and config.train.steps == 20


@pytest.mark.parametrize(
    "override, message",
    [
        ("train.lr=fast", "TrainConfig.lr must be a number, got 'fast'"),
        ("train.steps=1e3", "TrainConfig.steps must be an integer, got '1e3'"),
        ("train.steps=2.5", "TrainConfig.steps must be an integer, got 2.5"),
        ("train.batch_size=true", "TrainConfig.batch_size must be an integer, got True"),
    ],
)
def test_wrong_typed_numbers_are_named(override, message):
    with pytest.raises(WalaError, match=message.replace(".", r"\.")):
        load_config(AutoencoderTrainConfig, None, [override])


@pytest.mark.parametrize("name, latent", [("ae64", 6), ("ae64_fine", 11)])
def test_the_builtin_autoencoder_configs_make_their_latent_sizes(name, latent):
    """The built-ins' VQ-VAE (three stages) and the finer one (two): 64³ shapes, 22³ trees."""
    from wala.wavelet.packing import packed_size

    model = load_config(AutoencoderTrainConfig, f"configs/builtin/{name}.yaml").model
    assert model.sizes(packed_size(64)) == [22, 11, 6][: len(model.blocks)] and model.sizes(22)[-1] == latent
