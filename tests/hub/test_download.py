"""Models by Hugging Face hub id or released short name, fetched with huggingface_hub from a hub on
127.0.0.1 (conftest's LocalHub) into a fresh cache: the same latent as the folder, online and offline,
and every way a download fails as one line."""

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from wala.cli import main
from wala.errors import WalaError
from wala.hub.download import RELEASED, Release, find_model, hub_id
from wala.pipeline import WaLaPipeline

TINY = "test-org/WaLa-Tiny-PC"  # the shared pc fixture, served as a hub repo
SHORT = "WaLa-Tiny-PC"  # its short name, added to RELEASED by the `tiny` fixture
CARD = b"---\nlicense: other\n---\n# a tiny official-format point-cloud model\n"


@pytest.fixture
def tiny(local_hub, hf_env, monkeypatch, pc_model) -> str:
    """TINY on the local hub (args.json, checkpoint.ckpt and a model card) and SHORT → TINY in RELEASED.
    → its commit."""
    monkeypatch.setitem(RELEASED, SHORT, Release(TINY))
    return local_hub.add(TINY, pc_model, extra={"README.md": CARD})


@pytest.fixture(scope="module")
def folder_latent(pc_model) -> np.ndarray:
    """The seed-42, 2-step latent of the fixture folder itself."""
    return _latent(WaLaPipeline.from_pretrained(pc_model, "cpu"), pc_model)


def _latent(pipe, pc_model: Path) -> np.ndarray:
    condition = pipe.condition_tensor(pointcloud=pipe.read_condition("pointcloud", [pc_model / "input.h5df"]))
    return pipe.generate_latents(condition, steps=2, seed=42).numpy()


def _wala(argv, env, prelude=""):
    """`wala ARGV` in a fresh interpreter (huggingface_hub reads HF_* at import) after `prelude`."""
    code = f"{prelude}\nfrom wala.cli import main\nraise SystemExit(main())"
    argv = [sys.executable, "-c", code, *map(str, argv)]
    return subprocess.run(argv, env=env, capture_output=True, text=True, timeout=300)


def _generate(model, out: Path, pc_model: Path) -> list:
    condition = pc_model / "input.h5df"
    return ["generate", model, "--pointcloud", condition, "--seed", "42", "--steps", "2", "--format", "npz", "-o", out]


def _one_error_line(err: str) -> str:
    assert err.count("\n") == 1 and err.startswith("wala: error: "), err
    return err


def test_short_names_are_the_released_adskailab_repos():
    assert hub_id("WaLa-SV-1B") == "ADSKAILab/WaLa-SV-1B"
    assert hub_id("ADSKAILab/WaLa-DM6-1B") == "ADSKAILab/WaLa-DM6-1B"
    assert RELEASED["WaLa-PC-1B"].files == ("args.json", "checkpoint.ckpt")
    assert RELEASED["WaLa-MVDream-DM6"].files == ("checkpoint.ckpt",)  # the text-to-views repos
    assert len([n for n in RELEASED if n.endswith("-1B")]) == 9
    assert hub_id("out/model") == "out/model" and hub_id("./out/model") is None and hub_id("model") is None


def test_wala_generate_by_hub_id_downloads_it_and_gives_the_folders_latent(
    tiny, local_hub, hf_env, tmp_path, folder_latent, pc_model
):
    env = hf_env | {"HF_TOKEN": "hf_local_token"}
    done = _wala(_generate(TINY, tmp_path / "out", pc_model), env)
    assert done.returncode == 0, done.stderr
    (written,) = (tmp_path / "out").glob("*.npz")
    np.testing.assert_array_equal(np.load(written)["latent"], folder_latent[0])
    assert done.stderr.count("Autodesk's non-commercial licence") == 1  # said once, on download
    snapshot = Path(hf_env["HF_HOME"]) / "hub" / "models--test-org--WaLa-Tiny-PC" / "snapshots" / tiny
    assert sorted(p.name for p in snapshot.iterdir()) == ["args.json", "checkpoint.ckpt"]  # not the card
    assert local_hub.gets("README.md") == [] and len(local_hub.gets("checkpoint.ckpt")) == 1
    hub_calls = [r for r in local_hub.log if r.path != "/api/agent-harnesses"]
    assert {r.authorization for r in hub_calls} == {"Bearer hf_local_token"}  # HF_TOKEN, read by the library


def test_wala_generate_offline_by_short_name_runs_the_cached_copy(
    tiny, local_hub, hf_env, tmp_path, folder_latent, pc_model
):
    assert main(["pull", TINY]) == 0
    local_hub.stop()
    prelude = f"from wala.hub.download import RELEASED, Release\nRELEASED[{SHORT!r}] = Release({TINY!r})"
    done = _wala(_generate(SHORT, tmp_path / "out", pc_model), hf_env | {"HF_HUB_OFFLINE": "1"}, prelude)
    assert done.returncode == 0, done.stderr
    (written,) = (tmp_path / "out").glob("*.npz")
    np.testing.assert_array_equal(np.load(written)["latent"], folder_latent[0])
    assert "licence" not in done.stderr  # nothing was downloaded


def test_from_pretrained_takes_a_hub_id_a_revision_and_offline_a_short_name(
    tiny, local_hub, hf_env, folder_latent, pc_model
):
    np.testing.assert_array_equal(_latent(WaLaPipeline.from_pretrained(TINY, "cpu"), pc_model), folder_latent)
    local_hub.tags["v1.0"] = TINY
    pinned = find_model(TINY, revision=tiny)
    assert pinned.name == tiny and pinned == find_model(TINY) == find_model(TINY, revision="v1.0")
    local_hub.stop()
    offline = WaLaPipeline.from_pretrained(SHORT, "cpu", local_files_only=True)
    np.testing.assert_array_equal(_latent(offline, pc_model), folder_latent)


def test_pull_prints_the_snapshot_and_wala_models_lists_it_with_its_licence(tiny, hf_env, capsys):
    assert main(["pull", SHORT]) == 0
    out, err = capsys.readouterr()
    assert out.strip().endswith(f"snapshots/{tiny}") and err.count("non-commercial") == 1
    assert main(["pull", SHORT]) == 0  # already cached: no second notice
    assert "licence" not in capsys.readouterr().err
    assert main(["models"]) == 0
    lines = {line.split()[0]: line for line in capsys.readouterr().out.splitlines()[1:]}
    assert "official" in lines[TINY] and "pointcloud" in lines[TINY] and "Autodesk non-commercial" in lines[TINY]
    assert "builtin" in lines["pc64"] and "MIT" in lines["pc64"]  # wala's own, beside it


def test_a_folder_or_a_name_on_the_search_path_wins_over_the_hub(tiny, local_hub, tmp_path, monkeypatch, pc_model):
    models = tmp_path / "models"
    (models / SHORT).mkdir(parents=True)
    for name in ("args.json", "checkpoint.ckpt"):
        (models / SHORT / name).symlink_to(pc_model / name)
    monkeypatch.setenv("WALA_MODELS", str(models))
    assert find_model(SHORT) == models / SHORT
    assert find_model(pc_model) == pc_model
    assert local_hub.log == []


@pytest.mark.parametrize("name", ["test-org/absent", "WaLa-PC-1B"])
def test_a_model_not_cached_is_one_line_offline_naming_wala_pull(
    name, hf_env, offline, local_hub, tmp_path, capsys, pc_model
):
    assert main(list(map(str, _generate(name, tmp_path / "out", pc_model)))) == 2
    err = _one_error_line(capsys.readouterr().err)
    repo_id = hub_id(name)
    assert f"{repo_id} is not in the Hugging Face cache" in err and f"`wala pull {repo_id}`" in err
    assert local_hub.log == []


def test_each_failure_to_fetch_is_one_line(tiny, local_hub, hf_env, monkeypatch, capsys, pc_model):
    local_hub.add("test-org/no-weights", pc_model, files=("args.json",))
    monkeypatch.setitem(RELEASED, "WaLa-No-Weights", Release("test-org/no-weights"))
    local_hub.add("test-org/a-card", pc_model, files=(), extra={"README.md": CARD})
    cases = {
        ("WaLa-No-Weights",): "test-org/no-weights has no checkpoint.ckpt (a WaLa model repo holds args.json + ",
        ("test-org/a-card",): "test-org/a-card holds no WaLa model",
        ("test-org/nothing",): "model not found: test-org/nothing is neither a folder here nor a model repo on",
        (TINY, "--revision", "v9"): f"{TINY} has no revision 'v9' on {local_hub.url}",
    }
    for argv, message in cases.items():
        assert main(["pull", *argv]) == 2
        assert message in _one_error_line(capsys.readouterr().err)
    assert not list((Path(hf_env["HF_HOME"]) / "hub").glob("models--test-org--no-weights/snapshots/*/checkpoint*"))


def test_a_hub_that_does_not_answer_is_one_line(tiny, local_hub, hf_env, capsys):
    local_hub.stop()
    assert main(["pull", TINY]) == 2
    err = _one_error_line(capsys.readouterr().err)
    assert f"cannot reach {local_hub.url} for {TINY}" in err and "not in the Hugging Face cache" in err


def test_a_connection_dropped_mid_file_resumes_in_the_same_run(tiny, local_hub, hf_env, monkeypatch, pc_model):
    from huggingface_hub import constants

    monkeypatch.setattr(constants, "DOWNLOAD_CHUNK_SIZE", 64 * 1024)  # the real 10 MB: written in pieces here too
    local_hub.cut.add(f"{TINY}/checkpoint.ckpt")
    folder = find_model(TINY)
    first, second = local_hub.gets("checkpoint.ckpt")
    assert first.range is None and second.range.startswith("bytes=") and second.range != "bytes=0-"
    assert (folder / "checkpoint.ckpt").read_bytes() == (pc_model / "checkpoint.ckpt").read_bytes()


def test_an_interrupted_download_is_one_line_and_a_rerun_completes_it(tiny, local_hub, hf_env, capsys, pc_model):
    local_hub.cut.add(f"{TINY}/checkpoint.ckpt")
    local_hub.down_after_cut = True  # the connection drops halfway, and the hub is then unavailable
    assert main(["pull", TINY]) == 2
    err = _one_error_line(capsys.readouterr().err)
    assert f"downloading {TINY} from {local_hub.url} failed" in err and "run it again" in err
    cache = Path(hf_env["HF_HOME"]) / "hub" / "models--test-org--WaLa-Tiny-PC"
    assert not list(cache.glob("snapshots/*/checkpoint.ckpt"))  # nothing half-written is a model file
    blobs = list(cache.glob("blobs/*"))  # args.json's alone: no partial checkpoint is kept under any name
    assert [b.stat().st_size for b in blobs] == [(pc_model / "args.json").stat().st_size]
    with pytest.raises(WalaError, match="not in the Hugging Face cache"):
        find_model(TINY, local_files_only=True)
    local_hub.down_after_cut = False
    assert main(["pull", TINY]) == 0
    folder = Path(capsys.readouterr().out.strip())
    assert (folder / "checkpoint.ckpt").read_bytes() == (pc_model / "checkpoint.ckpt").read_bytes()
    assert len(local_hub.gets("args.json")) == 1  # finished files are kept: the rerun fetched only the rest
