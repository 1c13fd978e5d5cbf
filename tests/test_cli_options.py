"""Bad command-line values are one line and exit 2 before anything loads; Ctrl-C is one line and exit
130; a batch rerun under other options is refused unless --force."""

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from wala.cli import main

EXAMPLES = Path(__file__).resolve().parents[1] / "src" / "wala" / "examples" / "pointcloud"


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
    ],
)
def test_a_bad_generate_option_is_one_line_and_exit_2(option, value, message, capsys, tmp_path):
    one_line_error(["generate", "pc64", "--unconditional", "-o", str(tmp_path), option, value], capsys, message)


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
    for name in ("airplane_5000", "bottle_5000", "bookshelf_5000"):
        for copy in range(4):
            (inputs / f"{name}_{copy}.ply").write_bytes((EXAMPLES / f"{name}.ply").read_bytes())
    command = [
        sys.executable,
        "-m",
        "wala.cli",
        "generate",
        "pc64",
        "--batch",
        str(inputs),
        "-o",
        str(tmp_path / "out"),
        "--steps",
        "50",
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
