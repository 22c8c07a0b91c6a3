"""An independent recomputation with scipy.signal, for ``convcli apply --verify``.

It shares no arithmetic with the strategies in :mod:`convcli.engines`:
forward convolution is ``scipy.signal.correlate2d`` of the ``numpy.pad``-ed
channel with the zero-dilated kernel, sliced by the stride; transposed
convolution is ``scipy.signal.convolve2d(mode='full')`` of the zero-inserted
image with the dilated kernel, then cropped. scipy.signal is imported only
here, and only when a check is asked for.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from convcli.borders import pad_image, parse_border
from convcli.conv import luminance
from convcli.geometry import normalize_padding, output_size, pair, resolve_padding2d

__all__ = ["max_abs_difference", "reference_conv2d", "reference_conv_transpose2d"]


def _dilate(kernel: np.ndarray, dilation: tuple[int, int]) -> np.ndarray:
    kh, kw = kernel.shape
    dr, dc = dilation
    out = np.zeros((dr * (kh - 1) + 1, dc * (kw - 1) + 1), dtype=np.float64)
    out[::dr, ::dc] = kernel
    return out


def _channels_and_bank(image: Any, bank: Any, channels: str, flip: bool):
    array = np.asarray(image, dtype=np.float64)
    if array.ndim == 2:
        array = array[:, :, None]
    if channels == "gray":
        array = luminance(array)
    weights = np.asarray(bank, dtype=np.float64)
    if weights.ndim == 2:
        weights = weights[None]
    if weights.ndim == 3:
        weights = np.repeat(weights[..., None], array.shape[2], axis=3)
    elif weights.shape[3] == 1:
        weights = np.repeat(weights, array.shape[2], axis=3)
    if flip:
        weights = weights[:, ::-1, ::-1]
    return array, weights


def _combine(per_pair: dict, n_filters: int, n_channels: int, channels: str) -> np.ndarray:
    if channels == "depthwise":
        planes = [per_pair[f, c] for f in range(n_filters) for c in range(n_channels)]
    else:
        planes = [sum(per_pair[f, c] for c in range(n_channels)) for f in range(n_filters)]
    return np.stack(planes, axis=-1)


def reference_conv2d(
    image: Any, bank: Any, *, stride: Any = 1, padding: Any = "valid", border: str = "zero",
    dilation: Any = 1, channels: str = "depthwise", flip: bool = False,
) -> np.ndarray:
    """``conv2d`` recomputed in float64 with ``scipy.signal.correlate2d`` (no bias)."""
    from scipy import signal

    array, weights = _channels_and_bank(image, bank, channels, flip)
    strides, dilations = pair(stride, "stride"), pair(dilation, "dilation")
    kh, kw = weights.shape[1:3]
    pads = resolve_padding2d(array.shape[:2], (kh, kw), stride=strides, padding=padding,
                             dilation=dilations)
    padded = pad_image(array, pads, parse_border(border))
    per_pair = {}
    for f in range(weights.shape[0]):
        for c in range(array.shape[2]):
            full = signal.correlate2d(padded[:, :, c], _dilate(weights[f, :, :, c], dilations),
                                      mode="valid")
            per_pair[f, c] = full[:: strides[0], :: strides[1]]
    return _combine(per_pair, weights.shape[0], array.shape[2], channels)


def reference_conv_transpose2d(
    image: Any, bank: Any, *, stride: Any = 1, padding: Any = 0, output_padding: Any = 0,
    dilation: Any = 1, channels: str = "depthwise", flip: bool = False,
) -> np.ndarray:
    """``conv_transpose2d`` recomputed in float64 with ``scipy.signal.convolve2d`` (no bias)."""
    from scipy import signal

    array, weights = _channels_and_bank(image, bank, channels, flip)
    strides, dilations = pair(stride, "stride"), pair(dilation, "dilation")
    out_pads = pair(output_padding, "output_padding", minimum=0)
    rows, cols, n_channels = array.shape
    kh, kw = weights.shape[1:3]
    pads = resolve_padding2d((rows, cols), (kh, kw), stride=strides, padding=padding,
                             dilation=dilations, transposed=True, output_padding=out_pads)
    norm = normalize_padding(padding)
    per_axis = (norm, norm) if isinstance(norm, str) else (norm[:2], norm[2:])
    out_rows, out_cols = (
        output_size(n, k, stride=s, padding=p, dilation=d, transposed=True, output_padding=op)
        for n, k, s, p, d, op in zip((rows, cols), (kh, kw), strides, per_axis, dilations, out_pads)
    )
    top, left = max(pads[0], 0), max(pads[2], 0)
    upsampled = np.zeros(((rows - 1) * strides[0] + 1, (cols - 1) * strides[1] + 1, n_channels))
    upsampled[:: strides[0], :: strides[1]] = array
    per_pair = {}
    for f in range(weights.shape[0]):
        for c in range(n_channels):
            full = signal.convolve2d(upsampled[:, :, c], _dilate(weights[f, :, :, c], dilations),
                                     mode="full")
            canvas = np.zeros((max(full.shape[0], top + out_rows), max(full.shape[1], left + out_cols)))
            canvas[: full.shape[0], : full.shape[1]] = full
            per_pair[f, c] = canvas[top : top + out_rows, left : left + out_cols]
    return _combine(per_pair, weights.shape[0], n_channels, channels)


def max_abs_difference(result: np.ndarray, reference: np.ndarray) -> float:
    """``max |result − reference|`` (inf when the shapes differ)."""
    if result.shape != reference.shape:
        return float("inf")
    if result.size == 0:
        return 0.0
    return float(np.max(np.abs(result.astype(np.float64) - reference)))
