"""Reductions over the short channel / map axis with the compiled kernels.

``--reduce`` (:func:`reduce_stack`) and the luminance's weighted channel sum
(:func:`weighted_channel_sum`).

:func:`convcli.maps.reduce_maps` hands its ``(H', W', F, C_k)`` stack here
first; numpy's reductions over the short F axis of a channels-last stack are
its slow case (12 MP, 2 kernels × 3 channels: ``max`` 945 ms, ``magnitude``
via einsum 204 ms), one fused pass is memory-bound.
"""

from __future__ import annotations

import numpy as np

from convcli.engines import _native

__all__ = ["reduce_stack", "weighted_channel_sum"]


def reduce_stack(stacked: np.ndarray, reduce: str) -> np.ndarray | None:
    """``stacked`` ``(H', W', F, C_k)`` reduced over F, or None when the compiled kernels cannot.

    ``magnitude``: ``sqrt(Σ_f x²)``; ``max`` / ``min`` (NaN propagates);
    ``sum``: ``Σ_f x`` (added in order f = 0, 1, …). float32/float64 only;
    computed in row blocks on the worker pool. Returns None (the caller
    uses numpy) without the extension, for other dtypes or operations.
    """
    if not _native.AVAILABLE or reduce not in _native.REDUCE_OPS or stacked.ndim != 4:
        return None
    if stacked.dtype not in (np.float32, np.float64):
        return None
    from convcli.engines._bands import by_row_blocks

    stacked = np.ascontiguousarray(stacked)
    rows, cols, _, channels = stacked.shape
    out = _native.empty((rows, cols, channels), stacked.dtype)

    def block(span: tuple[int, int]) -> None:
        _native.reduce_maps(stacked[span[0]:span[1]], out[span[0]:span[1]], reduce)

    by_row_blocks(block, stacked)
    return out


def weighted_channel_sum(image: np.ndarray, weights: tuple[float, ...]) -> np.ndarray | None:
    """``Σ_{c<K} weights[c] · image[:, :, c]`` as ``(H, W, 1)`` of image's dtype, or None without the kernels.

    The luminance of :func:`convcli.conv.luminance` (``0.299 R + 0.587 G +
    0.114 B``, alpha ignored) in one fused pass, in row blocks on the worker
    pool; bit-identical to numpy's ``w₀·x₀ + w₁·x₁ + w₂·x₂`` in the image's
    dtype (each product rounded, added left to right, weights rounded to the
    dtype). Returns None (the caller uses numpy) without the extension, for
    dtypes other than float32/float64, or more weights than channels (or
    more than 16).
    """
    if (not _native.AVAILABLE or image.ndim != 3 or image.dtype not in (np.float32, np.float64)
            or not image.dtype.isnative or not 1 <= len(weights) <= min(16, image.shape[2])):
        return None
    from convcli.engines._bands import by_row_blocks

    image = np.ascontiguousarray(image)
    out = np.empty((*image.shape[:2], 1), dtype=image.dtype)
    weights = tuple(float(w) for w in weights)

    def block(span: tuple[int, int]) -> None:
        _native.channel_sum(image[span[0]:span[1]], out[span[0]:span[1]], weights)

    by_row_blocks(block, image)
    return out
