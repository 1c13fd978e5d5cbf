"""Image conditions at wala's boundary: photos, sketches and depth maps as the released models read
them (OFFICIAL.md §5.1–5.2).

Read with Pillow, made RGB by one of three alpha rules — "drop" (`convert("RGB")`: transparent pixels
keep their stored colour; the official single view, sketch and single depth map), "la-white" (only
grayscale+alpha images over white; the official multi-view and 4/6 depth maps) or "white" (any
alpha over white; our opt-in `--composite-alpha`) — then the shorter side resized to 224 (Pillow
bilinear, which antialiases when shrinking) and the centre 224² cropped. The model input is
(u8/255 − 0.5)/0.5 per channel: mean and std 0.5, not ImageNet's. Depth maps are ordinary 8-bit
images (RGB or grayscale, nearer brighter, background 0); nothing about them is metric.

Bounds: an image file may hold at most MAX_PIXELS = 50 million pixels (48 MP phone photos pass; ~200 MB
once decoded as RGBA, where the model sees a 224² crop), checked from the header before any pixel is
decoded; Pillow's own decompression-bomb check (Image.MAX_IMAGE_PIXELS, 89 MP) stays on behind it and
also ends in a WalaError. Only the decoders of IMAGE_FORMATS are tried. The longer side may be at most
MAX_ASPECT = 20 times the shorter: the shorter side is resized to 224 before the crop, so a 1 × 10⁷
strip would otherwise become a 224 × 2·10⁹ image. An image file is a regular file of at most
MAX_IMAGE_BYTES = 64 MiB, and a JPEG holds at most MAX_JPEG_SCANS = 256 scans (a progressive photo has ~10;
each scan is decoded over the whole image, so 20,000 of them in 1.7 MB take a minute), both checked before
any pixel is decoded.
"""

from __future__ import annotations

import os
import re
import warnings
from pathlib import Path

import numpy as np
import torch

from wala.errors import WalaError, one_line
from wala.io.files import check_regular_file, read_limited
from wala.io.mesh import checked_path

IMAGE_FORMATS = (".png", ".jpg", ".jpeg", ".webp", ".bmp", ".tif", ".tiff")
ALPHA_RULES = ("drop", "la-white", "white")
SIZE = 224
MAX_PIXELS = 50_000_000
MAX_ASPECT = 20
MAX_IMAGE_BYTES = 64 * 2**20
MAX_JPEG_SCANS = 256
_DECODERS = ("PNG", "JPEG", "WEBP", "BMP", "TIFF")  # the decoders of IMAGE_FORMATS (JPEG also opens MPO)


def load_image(path: str | os.PathLike, alpha: str = "drop"):
    """A Pillow RGB image from a file, its alpha handled by `alpha` (one of ALPHA_RULES)."""
    from PIL import Image, UnidentifiedImageError

    path, _ = checked_path(path, IMAGE_FORMATS, "image")
    path = check_regular_file(path, MAX_IMAGE_BYTES, "image")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)  # Pillow's warning ends the read too
            with Image.open(path, formats=_DECODERS) as opened:
                check_image_size(opened.width, opened.height, f"image {path}")  # from the header, nothing decoded yet
                if opened.format in ("JPEG", "MPO"):
                    check_jpeg_scans(read_limited(path, MAX_IMAGE_BYTES, "image"), f"image {path}")
                opened.load()
                image = opened
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as exc:
        raise WalaError(f"image {path} is refused as a decompression bomb: {one_line(exc)}") from exc
    except (UnidentifiedImageError, OSError, ValueError) as exc:
        raise WalaError(f"cannot read image {path}: {one_line(exc)}") from exc
    return to_rgb(image, alpha, str(path))


def check_jpeg_scans(data: bytes, name: str = "image") -> None:
    """A WalaError for JPEG bytes with over MAX_JPEG_SCANS scans. Counted as SOS markers (FF DA): inside a
    scan's entropy-coded data an FF byte is followed by 00 or a restart marker, so FF DA only starts a scan."""
    scans = data.count(b"\xff\xda")
    if scans > MAX_JPEG_SCANS:
        raise WalaError(
            f"{name} is a JPEG of {scans:,} scans; wala reads JPEGs of up to {MAX_JPEG_SCANS} "
            f"(a progressive photo has about 10): save it again"
        )


def check_image_size(width: int, height: int, name: str = "image") -> None:
    """A WalaError for an empty image, one over MAX_PIXELS, or one side over MAX_ASPECT times the other."""
    if width == 0 or height == 0:
        raise WalaError(f"{name} is empty ({width}×{height})")
    if width * height > MAX_PIXELS:
        raise WalaError(
            f"{name} is {width}×{height} ({width * height / 1e6:,.0f} MP); wala reads images up to "
            f"{MAX_PIXELS / 1e6:g} MP: shrink it (the model sees a {SIZE}×{SIZE} crop)"
        )
    if max(width, height) > MAX_ASPECT * min(width, height):
        raise WalaError(
            f"{name} is {width}×{height}; wala reads images at most {MAX_ASPECT} times longer than "
            f"wide (the model sees the centre square)"
        )


def to_rgb(image, alpha: str = "drop", name: str = "image"):
    """A Pillow image → RGB by the alpha rule `alpha` (one of ALPHA_RULES)."""
    from PIL import Image

    if image.mode in ("I", "I;16", "I;16B", "I;16L", "F"):
        raise WalaError(
            f"{name} has {image.mode} pixels (16-bit or float); the released models read "
            f"8-bit images: save it as an 8-bit PNG"
        )
    over_white = (
        alpha == "white"
        and ("A" in image.mode or "transparency" in image.info)
        or alpha == "la-white"
        and image.mode == "LA"
    )
    if over_white:
        rgba = image.convert("RGBA")
        return Image.alpha_composite(Image.new("RGBA", rgba.size, "WHITE"), rgba).convert("RGB")
    return image.convert("RGB")


def square_crop(image) -> np.ndarray:
    """Shorter side → 224 (longer side truncated as torchvision's Resize), centre crop → (224, 224, 3) uint8."""
    from PIL import Image

    w, h = image.size
    check_image_size(w, h)
    if w <= h:
        size = (SIZE, int(SIZE * h / w))
    else:
        size = (int(SIZE * w / h), SIZE)
    resized = image.resize(size, Image.BILINEAR)
    left, top = int(round((size[0] - SIZE) / 2.0)), int(round((size[1] - SIZE) / 2.0))
    return np.array(resized.crop((left, top, left + SIZE, top + SIZE)), dtype=np.uint8)


def read_image(source, alpha: str = "drop") -> np.ndarray:
    """A file, a Pillow image or an (H, W, 3|4) / (H, W) uint8 array → the (224, 224, 3) uint8 crop
    the models see."""
    from PIL import Image

    if isinstance(source, (str, os.PathLike)):
        return square_crop(load_image(source, alpha))
    if isinstance(source, np.ndarray):
        if source.dtype != np.uint8 or source.ndim not in (2, 3) or source.ndim == 3 and source.shape[2] not in (3, 4):
            raise WalaError(
                f"an image array must be (H, W), (H, W, 3) or (H, W, 4) uint8, got {source.shape} {source.dtype}"
            )
        if min(source.shape[:2]) == 0:
            raise WalaError(f"the image array is empty ({source.shape})")
        source = Image.fromarray(source)
    if not isinstance(source, Image.Image):
        raise WalaError(f"an image must be a file path, a PIL image or a uint8 array, not {type(source).__name__}")
    return square_crop(to_rgb(source, alpha))


def check_images(images, views: int | None, name: str = "images") -> np.ndarray:
    """(224, 224, 3) or (V, 224, 224, 3) uint8 crops, V = `views` (None: one image, no view axis)."""
    images = np.asarray(images)
    expected = (SIZE, SIZE, 3) if views is None else (views, SIZE, SIZE, 3)
    if images.shape != expected:
        raise WalaError(f"{name} must have shape {expected}, got {images.shape}")
    if images.dtype != np.uint8:
        raise WalaError(f"{name} must be uint8 pixels, got {images.dtype}")
    return images


def image_tensor(images: np.ndarray | torch.Tensor) -> torch.Tensor:
    """uint8 (…, H, W, 3) → float32 (…, 3, H, W) in [−1, 1]: (u8/255 − 0.5)/0.5."""
    if isinstance(images, np.ndarray):
        images = torch.from_numpy(np.ascontiguousarray(images))
    x = images.float().div(255.0)
    return x.movedim(-1, -3).sub(0.5).div(0.5)


def view_id(path: str | os.PathLike) -> int:
    """The view index a multi-view file is named by: `003.png` → 3, `view_26.png` → 26."""
    numbers = re.findall(r"\d+", Path(path).stem)
    if not numbers:
        raise WalaError(f"cannot tell the view of {path}: name multi-view files by their view index (3.png, 026.png)")
    return int(numbers[-1])


def order_views(paths: list[str], expected: tuple[int, ...]) -> list[str]:
    """`paths` rearranged into the model's view order `expected`, matched by the ids in their names;
    the same set of views must be given, in any order."""
    ids = [view_id(p) for p in paths]
    if len(set(ids)) != len(ids):
        raise WalaError(f"two files name the same view: {', '.join(map(str, paths))}")
    if sorted(ids) != sorted(expected):
        raise WalaError(
            f"this model reads views {', '.join(map(str, expected))}; the files name views {', '.join(map(str, ids))}"
        )
    by_id = dict(zip(ids, paths))
    return [by_id[v] for v in expected]
