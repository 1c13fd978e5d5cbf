"""`wala generate` with the released image-family models: what each accepts, what it refuses (one line,
exit 2, nothing written), and the opt-in alpha compositing beside the official default."""

import numpy as np
from PIL import Image

from wala.cli import main
from wala.pipeline import WaLaPipeline


def run(argv, capsys):
    code = main(argv)
    return code, capsys.readouterr().err


def refused(argv, capsys, tmp_path, message):
    code, err = run([*argv, "-o", str(tmp_path / "out")], capsys)
    assert code == 2 and err.startswith("wala: error: ") and err.count("\n") == 1, err
    assert message in err, err
    assert not (tmp_path / "out").exists() or not any((tmp_path / "out").iterdir())


def test_a_wrong_number_or_set_of_views_is_refused(official, tmp_path, capsys):
    folder, _, meta = official("dm4")
    files = [str(folder / name) for name in meta["inputs"]]
    refused(["generate", str(folder), "--dm4", *files[:3]], capsys, tmp_path, "reads 4 files (--depth), got 3")
    refused(
        ["generate", str(folder), "--depth", files[0], files[1], files[2], str(folder / "49.png")],
        capsys,
        tmp_path,
        "reads views 3, 6, 10, 26; the files name views 3, 6, 10, 49",
    )


def test_a_condition_the_model_was_not_trained_on_is_refused(official, tmp_path, capsys):
    sv, _, _ = official("sv")
    dm1, _, _ = official("dm1")
    refused(
        ["generate", str(sv), "--pointcloud", str(official("pc")[0] / "input.h5df")],
        capsys,
        tmp_path,
        "reads --image (image), not a pointcloud condition",
    )
    refused(
        ["generate", str(dm1), "--image", str(sv / "input.png")],
        capsys,
        tmp_path,
        "reads --depth (depth), not an image condition",
    )
    refused(["generate", str(sv), "--unconditional"], capsys, tmp_path, "not no condition")


def test_an_unreadable_image_is_one_line(official, tmp_path, capsys):
    folder, _, _ = official("sv")
    (tmp_path / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\n garbage")
    refused(["generate", str(folder), "--image", str(tmp_path / "broken.png")], capsys, tmp_path, "cannot read image")


def test_a_released_single_image_model_takes_a_sketch_like_the_official_run_py(official, tmp_path, capsys):
    # the SV and SK checkpoints have the same args: which one a directory holds cannot be told
    folder, E, meta = official("sk")
    code, _ = run(
        [
            "generate",
            str(folder),
            "--sketch",
            str(folder / "input.png"),
            "--seed",
            "42",
            "-o",
            str(tmp_path),
            "--format",
            "npz",
        ],
        capsys,
    )
    assert code == 0
    assert np.abs(np.load(tmp_path / "sample_0042.npz")["latent"] - E["latent"][0]).max() <= 1e-4


def test_our_own_sketch_model_refuses_a_photo(official):
    generator = WaLaPipeline.from_pretrained(official("sk")[0])
    generator.model.source = "wala"  # a model trained here records which condition it learned
    generator.model.kind = type(generator.model.kind)(**{**generator.model.kind.__dict__, "name": "sketch"})
    assert generator.accepts("sketch") and not generator.accepts("image")


def test_composite_alpha_is_opt_in_and_changes_only_transparent_pixels(official, tmp_path):
    folder, E, _ = official("sv")
    generator = WaLaPipeline.from_pretrained(folder)
    default = generator.read_condition("image", [folder / "input.png"])
    white = generator.read_condition("image", [folder / "input.png"], composite_alpha=True)
    assert np.array_equal(default, E["input_u8"][0])  # the official crop
    alpha = np.asarray(Image.open(folder / "input.png").convert("RGBA"))[..., 3]
    assert (alpha < 255).any() and not np.array_equal(default, white)
    opaque = Image.fromarray(np.asarray(Image.open(folder / "input.png").convert("RGB")))
    opaque.save(tmp_path / "opaque.png")
    assert np.array_equal(generator.read_condition("image", [tmp_path / "opaque.png"], composite_alpha=True), default)


def test_zero_padded_view_files_in_any_order_give_the_official_shape(official, tmp_path):
    folder, E, meta = official("rgb4")
    for name in meta["inputs"]:  # 3.png → 003.png
        (tmp_path / f"{int(name.split('.')[0]):03d}.png").write_bytes((folder / name).read_bytes())
    generator = WaLaPipeline.from_pretrained(folder)
    shuffled = [tmp_path / name for name in ("026.png", "006.png", "003.png", "010.png")]
    crops = generator.read_condition("views", shuffled)
    latent = generator.generate_latents(generator.condition_tensor(views=crops), seed=meta["seed"])
    assert np.array_equal(crops, E["input_u8"][0])
    assert np.abs(latent.numpy() - E["latent"]).max() <= 1e-4
