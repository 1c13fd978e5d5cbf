"""Crafted model files, as an attacker would write them: each is refused in one line before anything
in it runs or anything large is allocated, and a training-stack pickle still loads."""

import collections
import json
import subprocess
import sys
import types
import zipfile

import pytest
import torch

from wala.cli import main
from wala.diffusion.model import LatentDiffusion
from wala.errors import WalaError
from wala.hub.generators import config_from_args
from wala.io.pickled import read_torch_pickle


def refused(folder, capsys, message: str) -> str:
    """`wala generate` on the folder exits 2 with one line holding `message`."""
    assert main(["generate", str(folder), "--unconditional", "-o", str(folder / "out")]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and message in err, err
    assert not (folder / "out").exists()
    return err


def rewrite_data_pickle(checkpoint, data: bytes) -> None:
    """The archive with its data.pkl replaced by `data` (the storages kept)."""
    with zipfile.ZipFile(checkpoint) as archive:
        records = {info.filename: archive.read(info) for info in archive.infolist()}
    top = next(iter(records)).split("/")[0]
    records[f"{top}/data.pkl"] = data
    with zipfile.ZipFile(checkpoint, "w", zipfile.ZIP_STORED) as archive:
        for name, payload in records.items():
            archive.writestr(name, payload)


class WritesAFile(torch.nn.Module):
    """A TorchScript module whose state is restored by code: it writes 8 bytes into the file it names
    (kept in an attribute, or TorchScript would drop the write as dead code)."""

    written: torch.Tensor

    def __init__(self, path: str):
        super().__init__()
        self.path, self.written = path, torch.zeros(1)

    def forward(self, x):
        return x

    @torch.jit.export
    def __getstate__(self):
        return (self.path, self.training)

    @torch.jit.export
    def __setstate__(self, state: tuple[str, bool]):
        self.path, self.training = state[0], state[1]
        self.written = torch.from_file(state[0], shared=True, size=8, dtype=torch.uint8).fill_(65)


@pytest.mark.filterwarnings("ignore::DeprecationWarning")  # torch.jit.script and save, to build the attack
def test_a_torchscript_archive_is_refused_by_name_and_its_code_never_runs(official, copy_model, tmp_path, capsys):
    marker = tmp_path / "written"
    folder = copy_model(official("un")[0], tmp_path / "script")
    torch.jit.save(torch.jit.script(WritesAFile(str(marker))), folder / "checkpoint.ckpt")
    refused(folder, capsys, "is a TorchScript archive, not a checkpoint: refused, nothing was run")
    assert not marker.exists()
    # the file is live: torch.load without wala's checks hands it to torch.jit.load, which writes the file
    subprocess.run(
        [sys.executable, "-c", f"import torch; torch.load({str(folder / 'checkpoint.ckpt')!r}, weights_only=False)"],
        capture_output=True,
        timeout=120,
    )
    assert marker.exists()


def test_a_build_on_an_allowed_class_changes_nothing(official, copy_model, tmp_path, capsys):
    folder = copy_model(official("un")[0], tmp_path / "build")
    most_common = collections.Counter.most_common
    # GLOBAL collections.Counter; {"most_common": 1}; BUILD — plain pickle would set the class attribute
    rewrite_data_pickle(
        folder / "checkpoint.ckpt", b"\x80\x02ccollections\nCounter\n}X\x0b\x00\x00\x00most_commonK\x01sb."
    )
    refused(folder, capsys, "the pickle does what no checkpoint does (Can only build Tensor, Parameter, OrderedDict")
    assert collections.Counter.most_common is most_common


def test_a_pickle_that_calls_a_function_is_refused_by_its_name(official, copy_model, tmp_path, capsys):
    folder = copy_model(official("un")[0], tmp_path / "call")
    rewrite_data_pickle(folder / "checkpoint.ckpt", b"\x80\x02cbuiltins\nexec\nX\x0b\x00\x00\x00import os\n\x85R.")
    refused(folder, capsys, "would run code (builtins.exec); refused, nothing was run")


def test_a_zero_stride_view_declaring_terabytes_is_refused_without_allocating(
    official, copy_model, tmp_path, capsys, fresh_python
):
    def extra(state):
        state["network.extra"] = torch.zeros(1).expand(2**30, 2**10)  # 4 TiB declared over 4 stored bytes
        return state

    folder = copy_model(official("un")[0], tmp_path / "broadcast", state=extra)
    refused(folder, capsys, "network.extra (1073741824, 1024) repeats its elements (stride (0, 0))")
    code = (
        f"from wala.diffusion.model import LatentDiffusion\ntry: LatentDiffusion.from_pretrained({str(folder)!r})\n"
        "except Exception as e: assert 'repeats its elements' in str(e), e"
    )
    assert fresh_python(code)[1] < 2048


class StridedView:
    """Pickles as a tensor of the given size and strides over a small storage (torch's own rebuild)."""

    def __init__(self, size, stride, stored: int):
        self.size, self.stride, self.storage = size, stride, torch.zeros(stored).untyped_storage()

    def __reduce__(self):
        typed = torch.storage.TypedStorage(wrap_storage=self.storage, dtype=torch.float32, _internal=True)
        return torch._utils._rebuild_tensor_v2, (typed, 0, self.size, self.stride, False, collections.OrderedDict())


def test_views_past_their_storage_or_overlapping_far_beyond_the_file_are_refused(
    official, copy_model, tmp_path, capsys
):
    past = copy_model(official("un")[0], tmp_path / "past", state=lambda s: {**s, "x": StridedView((1000,), (1,), 4)})
    refused(past, capsys, "a tensor reaches past its storage")
    # each row starts one element after the last: 4 GiB declared over 4 MiB stored
    overlap = copy_model(
        official("un")[0],
        tmp_path / "overlap",
        state=lambda s: {**s, "x": StridedView((2**20, 2**10), (1, 1), 2**20 + 2**10)},
    )
    refused(overlap, capsys, "MiB stored (overlapping views); refused")


def test_archive_entries_outside_it_compressed_or_legacy_formats_are_refused(official, copy_model, tmp_path, capsys):
    traversal = copy_model(official("un")[0], tmp_path / "traversal")
    with zipfile.ZipFile(traversal / "checkpoint.ckpt", "a") as archive:
        archive.writestr("../../evil.py", b"print('hi')")
    refused(traversal, capsys, "points outside the archive")
    bomb = copy_model(official("un")[0], tmp_path / "bomb")
    with zipfile.ZipFile(bomb / "checkpoint.ckpt", "a", zipfile.ZIP_DEFLATED) as archive:
        top = archive.namelist()[0].split("/")[0]
        archive.writestr(f"{top}/data/999", bytes(64 * 2**20))
    refused(bomb, capsys, "is compressed (torch.save stores records uncompressed)")
    legacy = copy_model(official("un")[0], tmp_path / "legacy")
    checkpoint = torch.load(legacy / "checkpoint.ckpt", weights_only=True)
    torch.save(checkpoint, legacy / "checkpoint.ckpt", _use_new_zipfile_serialization=False)
    refused(legacy, capsys, "not a torch.save zip archive")


def test_a_nested_pickle_stays_bytes_and_never_runs(official, copy_model, tmp_path):
    import pickle

    marker = tmp_path / "ran"

    class Runs:
        def __reduce__(self):
            return exec, (f"open({str(marker)!r}, 'w')",)

    folder = copy_model(official("un")[0], tmp_path / "nested")
    checkpoint = torch.load(folder / "checkpoint.ckpt", weights_only=True)
    checkpoint["hyper_parameters"] = {"blob": pickle.dumps(Runs())}
    torch.save(checkpoint, folder / "checkpoint.ckpt")
    assert LatentDiffusion.from_pretrained(folder).kind.name == "none" and not marker.exists()


def test_a_tensor_of_another_dtype_is_refused_before_it_is_copied(official, copy_model, tmp_path):
    def doubled(state):
        key = next(k for k in state if k.startswith("network.") and state[k].is_floating_point())
        state[key] = state[key].double()
        return state

    folder = copy_model(official("un")[0], tmp_path / "double", state=doubled)
    with pytest.raises(WalaError, match="is torch.float64, the model holds torch.float32"):
        LatentDiffusion.from_pretrained(folder)


@pytest.mark.parametrize(
    "key, value, message",
    [
        ("diffusion_step", 10**9, "diffusion_step is 1000000000; it must be an integer in 1…10000"),
        ("att_hidden_size", 10**9, "att_hidden_size is 1000000000; it must be an integer in 1…16384"),
        ("transformer_num_heads", "16", "transformer_num_heads is '16'; it must be an integer in 1…512"),
        ("unet_num_res_blocks", [1] * 1000, "unet_num_res_blocks is [1, 1,"),
        ("dp_cond", float("nan"), "dp_cond is nan; it must be a number in 0…1"),
        ("use_voxel_conditions", "yes", "use_voxel_conditions is 'yes'; it must be true, false or null"),
    ],
)
def test_args_values_out_of_type_or_range_are_one_line_naming_the_key(official, key, value, message):
    args = json.loads((official("un")[0] / "args.json").read_text())
    with pytest.raises(WalaError, match=None) as caught:
        config_from_args({**args, key: value})
    assert message in str(caught.value) and "\n" not in str(caught.value)


def test_huge_args_are_refused_at_once_from_the_command_line(official, copy_model, tmp_path, capsys):
    folder = copy_model(official("un")[0], tmp_path / "huge", args=lambda a: {**a, "diffusion_step": 10**9})
    refused(folder, capsys, "args.json: diffusion_step is 1000000000")


def test_a_lightning_checkpoint_with_training_stack_objects_loads(official, copy_model, tmp_path, monkeypatch):
    """Lightning's AttributeDict (a dict subclass) and an omegaconf-like object, pickled under their
    real module names, are read as a plain dict and an inert stand-in."""
    fabric = types.ModuleType("lightning.fabric.utilities.data")
    omegaconf = types.ModuleType("omegaconf.dictconfig")
    fabric.AttributeDict = type("AttributeDict", (dict,), {"__module__": fabric.__name__})
    omegaconf.DictConfig = type("DictConfig", (), {"__module__": omegaconf.__name__})
    names = ("lightning", "lightning.fabric", "lightning.fabric.utilities", "omegaconf")
    for module in (fabric, omegaconf, *map(types.ModuleType, names)):
        monkeypatch.setitem(sys.modules, module.__name__, module)
    config = omegaconf.DictConfig()
    config.content = {"lr": 1e-4}
    folder = copy_model(official("un")[0], tmp_path / "lightning")
    checkpoint = torch.load(folder / "checkpoint.ckpt", weights_only=True)
    checkpoint["hyper_parameters"] = fabric.AttributeDict(lr=1e-4, config=config)
    torch.save(checkpoint, folder / "checkpoint.ckpt")
    monkeypatch.undo()  # loaded where Lightning and omegaconf are not installed
    payload = read_torch_pickle(folder / "checkpoint.ckpt")
    assert payload["hyper_parameters"]["lr"] == 1e-4
    assert type(payload["hyper_parameters"]["config"]).__module__ == "wala.inert.omegaconf.dictconfig"
    assert LatentDiffusion.from_pretrained(folder).kind.name == "none"


def test_a_training_checkpoint_declaring_a_huge_model_is_refused_before_it_is_built(tmp_path, fresh_python):
    from wala.config import DiffusionConfig, to_dict
    from wala.train.checkpoint import save_checkpoint

    model = to_dict(DiffusionConfig())
    model["denoiser"].update(width=8192, depth=64, heads=16)  # ~50 GiB of float32 if it were built
    path = save_checkpoint(
        tmp_path / "huge.safetensors", "diffusion", {"model": model}, {}, {"ema": {"network.x": torch.zeros(1)}}
    )
    code = (
        f"from wala.diffusion.model import LatentDiffusion\nfrom wala.hub.generators import load_trained\n"
        f"try: load_trained({str(path)!r}, LatentDiffusion)\n"
        "except Exception as e: print(e)"
    )
    message, peak = fresh_python(code)
    assert "unexpected key network.x (the config does not describe this checkpoint)" in message and peak < 2048
