"""Image conditions as users have them: RGB/RGBA PNG, JPEG, non-square photos, grayscale and RGB depth
maps, multi-view files named by view id in any order; bad files end in one-line errors."""

import numpy as np
import pytest
from PIL import Image

from wala.errors import WalaError
from wala.io.images import image_tensor, load_image, order_views, read_image, view_id


def save(tmp_path, name, array, mode=None):
    path = tmp_path / name
    Image.fromarray(array, mode).save(path)
    return path


def test_alpha_is_dropped_by_default_and_composited_over_white_when_asked(tmp_path):
    rgba = np.zeros((64, 64, 4), np.uint8)
    rgba[..., 0] = 200  # a red the file stores under…
    rgba[:, 32:, 3] = 255  # …an opaque right half and a fully transparent left half
    path = save(tmp_path, "photo.png", rgba, "RGBA")
    dropped = np.asarray(load_image(path, "drop"))
    assert (dropped[:, :32] == [200, 0, 0]).all()  # the official rule: stored colour kept where transparent
    white = np.asarray(load_image(path, "white"))
    assert (white[:, :32] == 255).all() and (white[:, 32:] == [200, 0, 0]).all()
    assert (np.asarray(load_image(path, "la-white")) == dropped).all()  # la-white leaves RGBA alone


def test_grayscale_with_alpha_goes_over_white_for_multi_view(tmp_path):
    la = np.zeros((32, 32, 2), np.uint8)
    la[..., 0] = 80
    la[:16, :, 1] = 255
    path = save(tmp_path, "3.png", la, "LA")
    image = np.asarray(load_image(path, "la-white"))
    assert (image[:16] == 80).all() and (image[16:] == 255).all()


def test_a_wide_photo_is_resized_on_its_shorter_side_and_centre_cropped(tmp_path):
    photo = np.zeros((300, 600, 3), np.uint8)
    photo[:, :150] = [255, 0, 0]
    photo[:, 150:450] = [0, 255, 0]  # the centre half: all that survives the crop
    photo[:, 450:] = [0, 0, 255]
    crop = read_image(save(tmp_path, "wide.jpg", photo))  # JPEG: colours within a few levels
    assert crop.shape == (224, 224, 3) and crop.dtype == np.uint8
    assert np.abs(crop[:, 4:-4].astype(int) - [0, 255, 0]).max() <= 12
    tall = read_image(save(tmp_path, "tall.png", np.ascontiguousarray(photo.transpose(1, 0, 2))))
    assert tall.shape == (224, 224, 3) and (tall[4:-4] == [0, 255, 0]).all()


def test_grayscale_and_rgb_depth_maps_give_the_same_input(tmp_path):
    depth = np.zeros((256, 256), np.uint8)
    depth[64:192, 64:192] = np.linspace(60, 250, 128, dtype=np.uint8)[None]  # nearer brighter, background 0
    gray = read_image(save(tmp_path, "gray.png", depth, "L"))
    rgb = read_image(save(tmp_path, "rgb.png", np.repeat(depth[..., None], 3, axis=-1)))
    assert np.array_equal(gray, rgb) and (gray[0, 0] == 0).all()
    x = image_tensor(gray)
    assert x.shape == (3, 224, 224) and float(x.min()) == -1.0 and float(x.max()) <= 1.0


def test_multi_view_files_are_put_in_the_models_view_order_by_their_names():
    given = ["out/026.png", "out/003.png", "out/view_10.png", "out/006.png"]
    assert order_views(given, (3, 6, 10, 26)) == ["out/003.png", "out/006.png", "out/view_10.png", "out/026.png"]
    assert view_id("049.png") == 49
    with pytest.raises(WalaError, match="reads views 3, 6, 10, 26; the files name views 3, 6, 10, 27"):
        order_views(["3.png", "6.png", "10.png", "27.png"], (3, 6, 10, 26))
    with pytest.raises(WalaError, match="same view"):
        order_views(["3.png", "003.png", "10.png", "26.png"], (3, 6, 10, 26))
    with pytest.raises(WalaError, match="cannot tell the view of front.png"):
        order_views(["front.png"], (3,))


def test_bad_image_files_are_one_line_errors(tmp_path):
    (tmp_path / "broken.png").write_bytes(b"not a png at all")
    (tmp_path / "empty.png").write_bytes(b"")
    for name, message in (
        ("broken.png", "cannot read image"),
        ("empty.png", "cannot read image"),
        ("missing.png", "image file not found"),
    ):
        with pytest.raises(WalaError, match=message) as caught:
            read_image(tmp_path / name)
        assert "\n" not in str(caught.value)
    with pytest.raises(WalaError, match="unknown image format"):
        read_image(save(tmp_path, "anim.gif", np.zeros((8, 8), np.uint8), "L"))
    deep = save(tmp_path, "depth16.png", (np.arange(64 * 64).reshape(64, 64) * 16).astype(np.uint16))
    with pytest.raises(WalaError, match="16-bit or float.*8-bit PNG"):
        read_image(deep)
