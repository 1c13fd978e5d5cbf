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
