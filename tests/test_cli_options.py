"""Bad command-line values are one line and exit 2 before anything loads; Ctrl-C is one line and exit
130; a batch rerun under other options is refused unless --force."""

import argparse
import json
import os
import shutil
import signal
import subprocess
import sys
from pathlib import Path

import pytest
import torch

import wala.cli
from wala.cli import main
from wala.cli import options as checked
from wala.cli.options import MAX_SAMPLES, run_command
from wala.errors import WalaError

EXAMPLES = Path(__file__).resolve().parents[1] / "src" / "wala" / "examples" / "pointcloud"
PC64 = Path(__file__).resolve().parents[1] / "src" / "wala" / "builtin" / "pc64"


def one_line_error(argv, capsys, message: str) -> None:
    with pytest.raises(SystemExit) as exited:
        main(argv)
    assert exited.value.code == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and message in err, err


@pytest.mark.parametrize(
    "option, value, message",
    [
        ("--steps", "-1", "argument --steps/--diffusion_rescale_timestep: must be at least 1, got -1"),
        ("--steps", "0", "must be at least 1, got 0"),
        ("--steps", "ten", "must be a whole number, got 'ten'"),
        ("--seed", str(2**64), "argument --seed: must be in 0…2**63-1"),
        ("--seed", "-1", "must be in 0…2**63-1, got -1"),
        ("--scale", "nan", "argument --scale/--guidance: must be a finite number, got nan"),
        ("--scale", "inf", "must be a finite number, got inf"),
        ("--samples", "1000000000", f"argument --samples: must be in 1…{MAX_SAMPLES}, got 1000000000"),
        ("--samples", str(MAX_SAMPLES + 1), f"must be in 1…{MAX_SAMPLES}, got {MAX_SAMPLES + 1}"),
        ("--samples", "0", f"must be in 1…{MAX_SAMPLES}, got 0"),
        ("--device", "nonsense", "argument --device: device 'nonsense': not auto, cpu, cuda, cuda:N or mps"),
        ("--device", "meta", "device 'meta': not auto, cpu, cuda, cuda:N or mps"),
        ("--device", "cpu:99", "device 'cpu:99': not auto, cpu, cuda, cuda:N or mps"),
        ("--device", "cuda:x", "device 'cuda:x': not auto, cpu, cuda, cuda:N or mps"),
    ],
)
def test_a_bad_generate_option_is_one_line_and_exit_2(option, value, message, capsys, tmp_path):
    one_line_error(["generate", "pc64", "--unconditional", "-o", str(tmp_path), option, value], capsys, message)


@pytest.mark.parametrize(
    "device, there, message",
    [
        ("cuda", torch.cuda.is_available(), "argument --device: device cuda: no CUDA device is available"),
        ("cuda:1", torch.cuda.is_available(), "device cuda: no CUDA device is available"),
        ("mps", torch.backends.mps.is_available(), "argument --device: device mps: no Apple GPU is available"),
    ],
)
def test_a_device_is_taken_where_the_machine_has_it_else_one_line_and_exit_2(device, there, message, capsys, tmp_path):
    if there:  # a GPU machine: the device is taken, or its index is past the machine's count
        index = int(device.partition(":")[2] or 0)
        if device.startswith("cuda") and index >= torch.cuda.device_count():
            with pytest.raises(argparse.ArgumentTypeError, match="this machine has"):
                checked.device(device)
        else:
            assert checked.device(device) == device
    else:
        one_line_error(
            ["generate", "pc64", "--unconditional", "-o", str(tmp_path), "--device", device], capsys, message
        )


@pytest.mark.parametrize(
    "value, message",
    [
        ("0,0", "argument --seeds: names a seed twice: '0,0'"),
        ("0,1,", "argument --seeds: must be a whole number, got ''"),
        ("0,-1", "argument --seeds: must be in 0…2**63-1, got -1"),
    ],
)
def test_the_ablations_seed_list_is_checked_like_a_seed(value, message, capsys):
    one_line_error(["ablate", "diffusion", "--seeds", value], capsys, message)
    assert checked.seeds("3,0,1") == (3, 0, 1)


def test_steps_past_the_models_schedule_are_one_line_naming_both_numbers(capsys, tmp_path):
    argv = ["generate", "pc64", "--pointcloud", str(EXAMPLES / "bottle_5000.ply"), "-o", str(tmp_path / "out")]
    assert main([*argv, "--steps", str(10**9)]) == 2
    err = capsys.readouterr().err
    assert err == "wala: error: steps 1000000000: this model's schedule has 1000 timesteps (steps 1…1000)\n", err
    assert not (tmp_path / "out").exists()


def test_text2depth_checks_its_numbers_the_same_way(capsys, tmp_path):
    one_line_error(
        ["text2depth", "m", "--text", "a cup", "-o", str(tmp_path), "--steps", "0"],
        capsys,
        "argument --steps: must be at least 1, got 0",
    )


def test_a_missing_condition_is_one_line_not_a_usage_dump(capsys, tmp_path):
    one_line_error(["generate", "pc64", "-o", str(tmp_path)], capsys, "one of the arguments --pointcloud")


def test_an_output_that_is_a_file_is_refused_before_the_model_loads(capsys, tmp_path):
    taken = tmp_path / "taken"
    taken.write_text("a file")
    for output in (taken, taken / "inside"):
        assert (
            main(["generate", "no-such-model", "--pointcloud", str(EXAMPLES / "bottle_5000.ply"), "-o", str(output)])
            == 2
        )
        err = capsys.readouterr().err
        assert err.count("\n") == 1 and "not a folder" in err, err  # not "model not found"


def test_an_output_under_a_symlink_loop_is_one_line_before_the_model_loads(capsys, tmp_path):
    loop = tmp_path / "loop"
    loop.symlink_to("loop")
    argv = ["generate", "no-such-model", "--pointcloud", str(EXAMPLES / "bottle_5000.ply"), "-o", str(loop / "x")]
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert err == f"wala: error: -o {loop / 'x'}: cannot be used: Too many levels of symbolic links\n", err


def test_control_characters_in_a_message_from_a_file_are_escaped_on_one_line(capsys, tmp_path):
    from safetensors.torch import load_file, save_file

    model = tmp_path / "forged"
    shutil.copytree(PC64, model)
    state = load_file(model / "model.safetensors")
    state["network.x\n\x1b[2Jwala: done"] = torch.zeros(1)
    save_file(state, model / "model.safetensors")
    argv = ["generate", str(model), "--pointcloud", str(EXAMPLES / "bottle_5000.ply"), "-o", str(tmp_path / "out")]
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "\x1b" not in err, err
    assert "unexpected key network.x\\n\\x1b[2Jwala: done (the config" in err, err


def test_run_command_escapes_every_non_printable_character_and_keeps_the_rest(capsys):
    def run(args):
        raise WalaError("bad 'naïve…'\r\t\x00\u202e\x9b end")

    assert run_command(run, None) == 2
    assert capsys.readouterr().err == "wala: error: bad 'naïve…'\\r\\t\\x00\\u202e\\x9b end\n"


def test_ctrl_c_while_the_parser_is_built_is_one_line_and_exit_130(monkeypatch, capsys):
    def interrupted_import():  # build_parser imports torch: Ctrl-C in the first seconds lands there
        raise KeyboardInterrupt

    monkeypatch.setattr(wala.cli, "build_parser", interrupted_import)
    assert main(["generate", "pc64", "--unconditional", "-o", "out"]) == 130
    assert capsys.readouterr().err == "wala: interrupted\n"


def test_ctrl_c_while_the_arguments_are_parsed_is_one_line_and_exit_130(monkeypatch, capsys, tmp_path):
    def interrupted(text):
        raise KeyboardInterrupt

    monkeypatch.setattr(wala.cli.options, "_whole", interrupted)  # the --steps checker's first call
    assert main(["generate", "pc64", "--unconditional", "-o", str(tmp_path), "--steps", "2"]) == 130
    assert capsys.readouterr().err == "wala: interrupted\n"


def test_seed_plus_samples_past_the_range_is_refused(capsys, tmp_path):
    assert (
        main(["generate", "pc64", "--unconditional", "-o", str(tmp_path), "--seed", str(2**63 - 1), "--samples", "2"])
        == 2
    )
    assert "passes 2**63-1" in capsys.readouterr().err


def test_a_batch_rerun_under_other_options_is_refused_unless_forced(tmp_path, capsys):
    inputs = tmp_path / "in"
    inputs.mkdir()
    (inputs / "bottle.ply").write_bytes((EXAMPLES / "bottle_5000.ply").read_bytes())
    out = tmp_path / "out"
    argv = ["generate", "pc64", "--batch", str(inputs), "-o", str(out), "--steps", "2", "--no-preview"]
    assert main(argv) == 0
    assert json.loads((out / "batch.json").read_text())["seed"] == 0
    capsys.readouterr()
    assert main([*argv, "--seed", "1", "--format", "ply"]) == 2
    err = capsys.readouterr().err
    assert "holds a batch made with other options (seed 0 → 1, format 'obj' → 'ply'): give --force" in err, err
    assert not (out / "bottle" / "sample_0001.ply").exists()
    assert main([*argv, "--seed", "1", "--format", "ply", "--force"]) == 0
    assert (out / "bottle" / "sample_0001.ply").is_file()
    assert json.loads((out / "batch.json").read_text())["seed"] == 1


def test_ctrl_c_ends_with_one_line_and_exit_130(tmp_path):
    inputs = tmp_path / "in"
    inputs.mkdir()
    # enough work after the first input (~10 s here) that the signal lands inside the run even when this
    # process is slow to read the line: with 12 inputs × 50 steps the child once finished first (exit 0)
    for name in ("airplane_5000", "bottle_5000", "bookshelf_5000"):
        for copy in range(8):
            (inputs / f"{name}_{copy}.ply").write_bytes((EXAMPLES / f"{name}.ply").read_bytes())
    # as from a terminal: SIGINT at its default and unblocked in the child, whatever earlier tests left in
    # this process (once, under the full suite, the child ran all 24 inputs through the signal and exited 0)
    reset = (
        "import os, signal, sys; signal.pthread_sigmask(signal.SIG_UNBLOCK, {signal.SIGINT}); "
        "signal.signal(signal.SIGINT, signal.SIG_DFL); os.execv(sys.executable, [sys.executable, *sys.argv[1:]])"
    )
    command = [
        sys.executable,
        "-c",
        reset,
        "-m",
        "wala.cli",
        "generate",
        "pc64",
        "--batch",
        str(inputs),
        "-o",
        str(tmp_path / "out"),
        "--steps",
        "200",
        "--no-preview",
    ]
    process = subprocess.Popen(command, stderr=subprocess.PIPE, text=True, env={**os.environ, "PYTHONUNBUFFERED": "1"})
    lines = []
    for line in process.stderr:  # wait until the first input is written: the run is inside the command
        lines.append(line)
        if " files in " in line:
            break
    process.send_signal(signal.SIGINT)
    rest = process.stderr.read()
    assert process.wait(timeout=60) == 130
    tail = [line for line in rest.splitlines() if " files in " not in line]
    assert tail == ["wala: interrupted"], rest


def test_a_command_whose_optional_packages_are_missing_names_its_extra(monkeypatch, capsys):
    import importlib.util

    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name == "uvicorn" else real(name, *a))
    assert main(["serve", "--model", str(PC64)]) == 2
    err = capsys.readouterr().err
    assert err == "wala: error: wala serve and its page need uvicorn: pip install 'wala[serve]'\n", err
