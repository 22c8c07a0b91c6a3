"""Exact rewrites of a problem into a cheaper equivalent one."""

from __future__ import annotations

import dataclasses

import numpy as np

from convcli.borders import Border
from convcli.engines import ForwardProblem

__all__ = ["channel_sum", "channels_uniform", "sum_uniform_channels"]


def channel_sum(image: np.ndarray, dtype: np.dtype) -> np.ndarray:
    """``Σ_c image[:, :, c]`` as an ``(H, W, 1)`` array of ``dtype`` (float32 or float64).

    Added left to right in ``dtype``, like ``np.sum(image, axis=2, dtype=dtype)``.
    With the compiled kernels (:mod:`convcli.engines._native`) one fused pass
    in row blocks on the worker pool; numpy's reduction over a short
    contiguous axis is its slow case (4K RGB: 162 ms against ~13 ms for
    adding the three planes).
    """
    from convcli.engines import _native

    dtype = np.dtype(dtype)
    if not _native.AVAILABLE or image.dtype.kind not in "uf" or image.dtype.itemsize > 8 or (
        image.dtype.kind == "u" and image.dtype.itemsize > 2
    ):
        return np.sum(image, axis=2, keepdims=True, dtype=dtype)
    from convcli.engines._bands import by_row_blocks

    image = np.ascontiguousarray(image)
    out = np.empty((*image.shape[:2], 1), dtype=dtype)

    def block(rows: tuple[int, int]) -> None:
        _native.channel_sum(image[rows[0]:rows[1]], out[rows[0]:rows[1]])

    by_row_blocks(block, image)
    return out


def channels_uniform(weights: np.ndarray) -> bool:
    """True when every channel of every kernel has the same weights."""
    return bool((weights == weights[..., :1]).all())


def sum_uniform_channels(problem: ForwardProblem) -> ForwardProblem:
    """``sum`` mode with the same kernel on every channel → one summed channel.

    ``Σ_c Σ_{m,n} w[m, n] · pad_c = Σ_{m,n} w[m, n] · Σ_c pad_c``: the channels
    are added once (one pass over the image) and the kernels run on one
    channel, C times less work. Padding commutes with the sum, except that a
    constant border ``V`` becomes ``C·V``.
    """
    channels = problem.image.shape[2]
    if problem.mode != "sum" or channels == 1 or not channels_uniform(problem.weights):
        return problem
    summed = channel_sum(problem.image, problem.weights.dtype)
    border = problem.border
    if border.numpy_mode == "constant" and border.value:
        border = Border(name=border.name, numpy_mode=border.numpy_mode, value=border.value * channels)
    return dataclasses.replace(
        problem,
        image=summed,
        weights=np.ascontiguousarray(problem.weights[..., :1]),
        border=border,
    )
