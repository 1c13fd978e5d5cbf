"""Sketch augmentation keeps the image size and paper colour and moves content as specified: the affine
jitter by its translation, rotation and scale; the cage warp by its inner-corner offsets, border fixed."""

import numpy as np
import torch
import torch.nn.functional as F

from wala.sketch.augment import affine_jitter, augment_sketches, cage_warp, content_affine

SIZE = 97  # odd: the centre is a pixel


def dot(row: int, col: int) -> torch.Tensor:
    image = torch.ones(1, 3, SIZE, SIZE)  # white paper in [−1, 1]
    image[:, :, row - 1 : row + 2, col - 1 : col + 2] = -1.0
    return image


def ink_centre(image: torch.Tensor) -> np.ndarray:
    ink = (1 - image[0, 0]).clamp(min=0).numpy()
    rows, cols = np.indices(ink.shape)
    return np.array([(rows * ink).sum(), (cols * ink).sum()]) / ink.sum()


def test_the_affine_jitter_moves_content_by_its_translation_and_rotation():
    image = dot(48, 68)  # 20 px right of the centre
    shifted = F.grid_sample(
        image,
        F.affine_grid(
            content_affine(torch.ones(1), torch.zeros(1), torch.tensor([[0.25, -0.125]])),
            list(image.shape),
            align_corners=False,
        ),
        align_corners=False,
        padding_mode="border",
    )
    assert np.allclose(ink_centre(shifted), [48 - 0.125 * SIZE / 2, 68 + 0.25 * SIZE / 2], atol=0.5)
    turned = F.grid_sample(
        image,
        F.affine_grid(
            content_affine(torch.ones(1), torch.tensor([np.pi / 2]), torch.zeros(1, 2)),
            list(image.shape),
            align_corners=False,
        ),
        align_corners=False,
        padding_mode="border",
    )
    assert np.allclose(ink_centre(turned), [68, 48], atol=0.5)  # +90° in image axes (y down): right → below
    out = affine_jitter(torch.ones(4, 3, SIZE, SIZE), torch.Generator().manual_seed(0))
    assert out.shape == (4, 3, SIZE, SIZE) and torch.allclose(out, torch.ones_like(out))  # paper stays paper


def test_the_cage_warp_moves_the_inner_corners_and_keeps_the_border():
    third = (SIZE - 1) / 3  # lattice corners sit at 0, 32, 64, 96
    offsets = torch.zeros(1, 4, 2)
    offsets[0, 0] = torch.tensor([0.1, 0.05])  # the top-left inner corner: right by 4.8 px, down by 2.4
    corner = (int(round(third)), int(round(third)))
    source = dot(corner[0] - 2, corner[1] - 5)  # content a little up-left of the corner…
    warped = cage_warp(source, offsets)
    moved = ink_centre(warped) - ink_centre(source)
    assert np.allclose(moved, [0.05 * (SIZE - 1) / 2, 0.1 * (SIZE - 1) / 2], atol=0.8)  # …follows it
    border = dot(2, 48)
    assert np.allclose(ink_centre(cage_warp(border, offsets)), ink_centre(border), atol=0.3)
    batch = torch.ones(3, 3, SIZE, SIZE)
    augmented = augment_sketches(batch, torch.Generator().manual_seed(1))
    assert augmented.shape == batch.shape and torch.allclose(augmented, batch)
    a = augment_sketches(dot(30, 30).repeat(2, 1, 1, 1), torch.Generator().manual_seed(2))
    assert not torch.allclose(a[0], a[1])  # each sample draws its own jitter
