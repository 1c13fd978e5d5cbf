import json
from collections import Counter

import pytest

from wala.config import RepresentationConfig
from wala.data import WaveletTreeDataset, epoch_order, prepare, rank_slice
from wala.errors import WalaError

CONFIG = RepresentationConfig(resolution=64)


def test_prep_writes_shards_logs_bad_meshes_and_resumes(tmp_path, real_meshes):
    meshes = tmp_path / "meshes"
    meshes.mkdir()
    (meshes / "cow.obj").write_bytes((real_meshes / "pymeshlab" / "cow.obj").read_bytes())
    (meshes / "broken.obj").write_text("v 0 0 0\nv nan 0 0\nv 0 1 0\nf 1 2 3\n")
    out = tmp_path / "prepared"
    result = prepare([str(meshes), "procedural:mug,ring:2"], out, CONFIG, shard_size=2, progress=False)
    assert result["samples"] == 5 and len(result["errors"]) == 1
    assert "NaN" in json.loads((out / "errors.jsonl").read_text().splitlines()[0])["error"]
    data = WaveletTreeDataset(out)
    assert len(data) == 5 and data.resolution == 64
    assert Counter(data.datasets) == {"meshes": 1, "procedural-mug": 2, "procedural-ring": 2}
    packed, meta = data[0]
    assert packed.shape == (64, 22, 22, 22) and meta["key"]
    # finished shards are skipped; a shard whose index is missing is rebuilt alone
    (out / "shard-00001.index.json").unlink()
    again = prepare([str(meshes), "procedural:mug,ring:2"], out, CONFIG, shard_size=2, progress=False)
    assert again["skipped_shards"] == 2
    assert len(WaveletTreeDataset(out)) == 5


def test_prep_refuses_other_settings_in_the_same_folder(tmp_path):
    prepare(["procedural:ring:1"], tmp_path, CONFIG, progress=False)
    with pytest.raises(WalaError, match="other settings"):
        prepare(["procedural:ring:1"], tmp_path, RepresentationConfig(resolution=48), progress=False)


@pytest.mark.parametrize(
    "source, message",
    [
        ("procedural:dragon:3", "unknown shape family"),
        ("/no/such/folder", "not found"),
        ("procedural:mug", "procedural:FAMILY"),
    ],
)
def test_bad_sources_are_refused(tmp_path, source, message):
    with pytest.raises(WalaError, match=message):
        prepare([source], tmp_path, CONFIG, progress=False)


def test_balanced_epochs_draw_n_per_dataset_and_are_deterministic():
    datasets = ["big"] * 90 + ["small"] * 3
    order = epoch_order(datasets, epoch=0, seed=1, mode="balanced", per_dataset=10)
    counts = Counter(datasets[i] for i in order)
    assert counts == {"big": 10, "small": 10}
    assert len(set(i for i in order if datasets[i] == "big")) == 10  # without replacement when enough
    assert order == epoch_order(datasets, 0, 1, "balanced", 10)
    assert order != epoch_order(datasets, 1, 1, "balanced", 10)


def test_ranks_split_an_epoch_evenly_and_disjointly():
    order = list(range(11))
    parts = [rank_slice(order, r, 3) for r in range(3)]
    assert all(len(p) == 3 for p in parts)
    assert sorted(sum(parts, [])) == list(range(9))


def test_list_entries_with_the_same_name_stay_apart(tmp_path):
    from wala.data import collect_items

    for sub in ("a", "b"):
        (tmp_path / sub).mkdir()
        (tmp_path / sub / "cow.obj").write_text("")
    listing = tmp_path / "real.txt"
    listing.write_text(f"{tmp_path / 'a' / 'cow.obj'}\n{tmp_path / 'b' / 'cow.obj'}\n")
    items = collect_items([str(listing)])
    assert [i.dataset for i in items] == ["real", "real"] and len({i.key for i in items}) == 2
