"""Crafted model files, as an attacker would write them: each is refused in one line before anything
in it runs or anything large is allocated, and a training-stack pickle still loads."""

import collections
import json
import os
import struct
import subprocess
import sys
import types
import zipfile

import pytest
import torch

from wala.cli import main
from wala.diffusion.model import LatentDiffusion
from wala.errors import WalaError
from wala.hub.args import config_from_args
from wala.hub.generators import save_model
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
    rewrite_data_pickle(folder / "checkpoint.ckpt", b"\x80\x02cbuiltins\nexec\nX\x0a\x00\x00\x00import os\n\x85R.")
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


def test_a_latent_size_the_autoencoder_cannot_make_is_refused_before_sampling(official, copy_model, tmp_path, capsys):
    """A 256³ model's autoencoder makes 12³ latents: a released args.json or one of our config.json files
    declaring 6³ is refused in one line, naming both sizes, before its weights are read."""
    folder = copy_model(official("un")[0], tmp_path / "released", args=lambda a: {**a, "grid_size": 6})
    refused(folder, capsys, "the denoiser works on 6³ latents but its autoencoder makes 12³ latents of 256³ shapes")
    ours = save_model(LatentDiffusion.from_pretrained(official("un")[0]), tmp_path / "ours", "test")
    config = json.loads((ours / "config.json").read_text())
    config["model"]["autoencoder"]["blocks"] = [1, 1]  # two stages: 23³ latents
    (ours / "config.json").write_text(json.dumps(config))
    refused(ours, capsys, "works on 12³ latents but its autoencoder makes 23³ latents")


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
    save_checkpoint(path, "diffusion", {"model": model}, {}, {"ema": {}})  # no tensor at all: nothing to mismatch
    message, peak = fresh_python(code)
    assert "missing key" in message and peak < 2048


def _text(s: str) -> bytes:
    """BINUNICODE."""
    return b"X" + struct.pack("<I", len(s.encode())) + s.encode()


def _global(module: str, name: str) -> bytes:
    return f"c{module}\n{name}\n".encode()


def test_a_numpy_dtype_that_would_read_bytes_as_pointers_is_inert_data(official, copy_model, tmp_path, fresh_python):
    """A structured dtype whose object field lost its flag made NumPy free pointers taken from the file
    (a crash, exit 139): NumPy's globals are stand-ins now, and no NumPy code runs on their arguments."""
    folder = copy_model(official("un")[0], tmp_path / "numpy")
    dtype = lambda code: _global("numpy", "dtype") + _text(code) + b"\x89\x88\x87R"  # noqa: E731
    pickle = (
        b"\x80\x02}" + _text("state_dict") + b"}s"
        + _text("d") + dtype("V8") + b"q\x00"
        + b"(K\x03" + _text("|") + b"N" + _text("a") + b"\x85}" + _text("a") + dtype("O8") + b"K\x00\x86sK\x08K\x01K\x01tbs"
        + _text("x") + _global("numpy.core.multiarray", "_reconstruct") + _global("numpy", "ndarray") + b"K\x00\x85"
        + _global("_codecs", "encode") + _text("b") + _text("latin1") + b"\x86R\x87R"
        + b"(K\x01K\x01\x85h\x00\x89" + _global("_codecs", "encode") + _text("A" * 8) + _text("latin1") + b"\x86Rtbs."
    )  # fmt: skip
    rewrite_data_pickle(folder / "checkpoint.ckpt", pickle)
    code = (
        "from wala.diffusion.model import LatentDiffusion\n"
        f"try: LatentDiffusion.from_pretrained({str(folder)!r})\nexcept Exception as e: print(e)"
    )
    message, _ = fresh_python(code)  # the interpreter exits 0: nothing crashed
    assert "missing key" in message  # read as data, then refused: it holds no weights


@pytest.mark.parametrize(
    "pickle, message",
    [
        # t0 = ("a", "a"); t_i+1 = (t_i, t_i), 60 times, then used as a dict key: hashing it takes 2**60 steps
        (
            b"\x80\x02}" + _text("a") + _text("a") + b"\x86q\x00"
            + b"".join(bytes([104, i % 2, 134, 113, (i + 1) % 2]) for i in range(60)) + b"}h\x00Nss.",
            "builds an object of more than 10,000,000 parts",
        ),
        (b"\x80\x02" + b"(" * 2000, "opens more than 1000 nested marks"),
        (b"\x80\x02](" + b"K\x00Q" * 100_001 + b"e.", "declares more than 100,000 tensors"),
    ],
    ids=["hash-bomb", "marks", "storages"],
)  # fmt: skip
def test_a_pickle_costing_far_more_than_its_bytes_is_refused_before_unpickling(
    official, copy_model, tmp_path, capsys, pickle, message
):
    folder = copy_model(official("un")[0], tmp_path / "bomb")
    rewrite_data_pickle(folder / "checkpoint.ckpt", pickle)
    refused(folder, capsys, message)


def test_args_json_that_is_not_a_small_regular_file_or_nests_too_deep_is_one_line(
    official, copy_model, tmp_path, capsys
):
    from wala.hub.args import read_args

    os.mkfifo(tmp_path / "fifo.json")  # reading it would wait forever
    with pytest.raises(WalaError, match="is not a regular file"):
        read_args(tmp_path / "fifo.json")
    deep = copy_model(official("un")[0], tmp_path / "deep")
    (deep / "args.json").write_text("[" * 100_000 + "]" * 100_000)
    refused(deep, capsys, "cannot read")
    large = copy_model(official("un")[0], tmp_path / "large")
    with open(large / "args.json", "r+b") as f:
        f.truncate(2**30)  # a sparse GiB: no disk, but read whole it would be
    refused(large, capsys, "wala reads such files up to 1 MiB")


def test_in_range_args_of_a_large_dit_are_not_built_before_the_file_is_checked(
    official, copy_model, tmp_path, fresh_python
):
    # 1024³ shapes make 36³ latents: patch 1 at width 16384 is a 3 GiB position table
    args = {"network_type": "latent_dit", "resolution": 1024, "grid_size": 36, "att_patch_size": 1}
    args["att_hidden_size"] = 16384
    folder = copy_model(official("un")[0], tmp_path / "dit", args=lambda a: {**a, **args})
    code = (
        "from wala.diffusion.model import LatentDiffusion\n"
        f"try: LatentDiffusion.from_pretrained({str(folder)!r})\nexcept Exception as e: print(e)"
    )
    message, peak = fresh_python(code)
    assert "the config gives (1, 46656, 16384)" in message and peak < 1024


def test_a_text_model_config_declaring_a_huge_model_is_refused(tmp_path):
    from wala.hub.paths import TEXT_MARKER
    from wala.text.checkpoint import converted_config

    (tmp_path / TEXT_MARKER).write_text(json.dumps({"wala": "text-to-views", "config": {"context_length": 3 * 10**8}}))
    with pytest.raises(WalaError, match="context_length is 300000000; it must be integers in 1…1024"):
        converted_config(tmp_path)


@pytest.mark.parametrize(
    "config, message",
    [
        ({"vae_ch": 16}, "every UNet and VAE width must be a multiple of 32"),  # GroupNorm(32) would raise mid-build
        ({"image_size": 100}, "image_size 100 is not a multiple of the VAE's 8"),
        ({"image_size": 10**6}, "image_size is 1000000; it must be integers in 8…4096"),
    ],
)
def test_a_text_model_config_the_model_cannot_have_is_one_line(tmp_path, config, message):
    from wala.hub.paths import TEXT_MARKER
    from wala.text.checkpoint import converted_config

    (tmp_path / TEXT_MARKER).write_text(json.dumps({"wala": "text-to-views", "config": config}))
    with pytest.raises(WalaError, match=message):
        converted_config(tmp_path)
