"""Separable 3D discrete wavelet transform in torch: batched, differentiable, any device.

Matches PyWavelets `wavedecn(x, wavelet, mode='zero', level=J)` / `waverecn`: analysis is a full
convolution with the decomposition filter keeping the odd samples; synthesis upsamples, convolves
with the reconstruction filter and crops L-2 on each side. Each 1D step is one matrix product. Only mode
'zero' is implemented, the one WaLa uses. Subband order within a level follows PyWavelets' keys
'aad', 'ada', 'add', 'daa', 'dad', 'dda', 'ddd' (axis 0 first, 'd' = detail).
"""

from __future__ import annotations

import functools

import numpy as np
import pywt
import torch

from wala.errors import WalaError

SUBBAND_KEYS = ("aad", "ada", "add", "daa", "dad", "dda", "ddd")


@functools.cache
def _filter_bank(wavelet: str) -> tuple[tuple[float, ...], ...]:
    try:
        return tuple(tuple(f) for f in pywt.Wavelet(wavelet).filter_bank)
    except ValueError as exc:
        raise WalaError(f"unknown wavelet '{wavelet}'") from exc


@functools.lru_cache(maxsize=64)
def _analysis_matrix(wavelet: str, n: int) -> np.ndarray:
    """(2M, N) matrix of one analysis step along an axis of length n: rows [low; high].

    out[m] = full_convolution(x, filter)[2m + 1], i.e. A[m, k] = filter[2m + 1 - k]. A dense
    banded matrix wastes multiplications on zeros but runs as one BLAS call, which beats a
    strided 18-tap convolution on CPU by a wide margin (see benchmarks/representation.py).
    """
    dec_lo, dec_hi = _filter_bank(wavelet)[:2]
    length = len(dec_lo)
    m = coefficient_length(n, length)
    rows = np.arange(m)[:, None]
    taps = 2 * rows + 1 - np.arange(n)[None, :]
    valid = (taps >= 0) & (taps < length)
    matrix = np.zeros((2, m, n))
    for band, filt in enumerate((dec_lo, dec_hi)):
        matrix[band][valid] = np.asarray(filt)[taps[valid]]
    return matrix.reshape(2 * m, n)


@functools.lru_cache(maxsize=64)
def _synthesis_matrix(wavelet: str, m: int) -> np.ndarray:
    """(N, 2M) matrix inverting one level from m low + m high coefficients, N = 2m - L + 2.

    y[j] = Σ_i low[i]·rec_lo[j + L - 2 - 2i] + high[i]·rec_hi[j + L - 2 - 2i].
    """
    rec_lo, rec_hi = _filter_bank(wavelet)[2:]
    length = len(rec_lo)
    n = 2 * m - length + 2
    if n <= 0:
        raise WalaError(f"{m} coefficients are too few to reconstruct with {wavelet}")
    taps = np.arange(n)[:, None] + length - 2 - 2 * np.arange(m)[None, :]
    valid = (taps >= 0) & (taps < length)
    matrix = np.zeros((2, n, m))
    for band, filt in enumerate((rec_lo, rec_hi)):
        matrix[band][valid] = np.asarray(filt)[taps[valid]]
    return np.concatenate([matrix[0], matrix[1]], axis=1)


def coefficient_length(n: int, filter_length: int) -> int:
    """Length of one level's coefficients for a signal of length n (mode 'zero')."""
    return (n + filter_length - 1) // 2


def _matrix(build, wavelet: str, n: int, like: torch.Tensor) -> torch.Tensor:
    return torch.as_tensor(build(wavelet, n), device=like.device, dtype=like.dtype)


def dwt3(x: torch.Tensor, wavelet: str = "bior6.8") -> torch.Tensor:
    """One 3D analysis level: (B, X, Y, Z) → (B, 8, X', Y', Z'), band index 4·bx + 2·by + bz
    with b = 0 low / 1 high; band 0 is the approximation, 1..7 follow SUBBAND_KEYS.

    Each axis is one matrix product on a view (z from the right, y and x from the left), so the
    only copy is the final reordering into bands.
    """
    b, nx, ny, nz = x.shape
    y = x @ _matrix(_analysis_matrix, wavelet, nz, x).T  # (B, X, Y, 2Mz)
    y = _matrix(_analysis_matrix, wavelet, ny, x) @ y.reshape(b * nx, ny, -1)  # (B·X, 2My, 2Mz)
    y = _matrix(_analysis_matrix, wavelet, nx, x) @ y.reshape(b, nx, -1)  # (B, 2Mx, 2My·2Mz)
    mx, my, mz = (coefficient_length(n, len(_filter_bank(wavelet)[0])) for n in (nx, ny, nz))
    y = y.reshape(b, 2, mx, 2, my, 2, mz).permute(0, 1, 3, 5, 2, 4, 6)
    return y.reshape(b, 8, mx, my, mz)


def idwt3(bands: torch.Tensor, wavelet: str = "bior6.8") -> torch.Tensor:
    """Inverse of `dwt3`: (B, 8, X', Y', Z') → (B, X, Y, Z) with X = 2X' - L + 2."""
    b, _, mx, my, mz = bands.shape
    y = bands.reshape(b, 2, 2, 2, mx, my, mz).permute(0, 1, 4, 2, 5, 3, 6)  # (B, bx, X', by, Y', bz, Z')
    y = _matrix(_synthesis_matrix, wavelet, mx, bands) @ y.reshape(b, 2 * mx, -1)  # (B, X, 2My·2Mz)
    nx = y.shape[1]
    y = _matrix(_synthesis_matrix, wavelet, my, bands) @ y.reshape(b * nx, 2 * my, -1)  # (B·X, Y, 2Mz)
    y = y @ _matrix(_synthesis_matrix, wavelet, mz, bands).T  # (B·X, Y, Z)
    return y.reshape(b, nx, y.shape[1], y.shape[2])


def wavedec3(x: torch.Tensor, wavelet: str = "bior6.8", levels: int = 3) -> list[torch.Tensor]:
    """Multilevel decomposition of (B, N, N, N): [approximation (B, M, M, M), details coarsest
    first, each (B, 7, ...)] — the order of PyWavelets' `wavedecn` list."""
    if x.dim() != 4:
        raise WalaError(f"wavedec3 expects (B, X, Y, Z), got shape {tuple(x.shape)}")
    details = []
    approx = x
    for _ in range(levels):
        bands = dwt3(approx, wavelet)
        approx, detail = bands[:, 0], bands[:, 1:]
        details.append(detail)
    return [approx] + details[::-1]


def waverec3(coeffs: list[torch.Tensor | None], wavelet: str = "bior6.8", size: int | None = None) -> torch.Tensor:
    """Inverse of `wavedec3`. A detail entry may be None: zeros, as for the dropped D2.
    A reconstruction one sample longer than the next details (odd sizes) is cropped, as in
    PyWavelets; `size` crops the final output the same way (odd input sizes)."""
    approx = coeffs[0]
    for detail in coeffs[1:]:
        if detail is None:  # details have the size of the approximation they pair with
            detail = approx.new_zeros(approx.shape[0], 7, *approx.shape[1:])
        approx = approx[:, : detail.shape[-3], : detail.shape[-2], : detail.shape[-1]]
        approx = idwt3(torch.cat([approx.unsqueeze(1), detail], dim=1), wavelet)
    return approx if size is None else approx[:, :size, :size, :size]
