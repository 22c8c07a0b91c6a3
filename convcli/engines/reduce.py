"""The reduce step over a bank's maps with the compiled kernels (``--reduce``).

:func:`convcli.maps.reduce_maps` hands its ``(H', W', F, C_k)`` stack here
first; numpy's reductions over the short F axis of a channels-last stack are
its slow case (12 MP, 2 kernels × 3 channels: ``max`` 945 ms, ``magnitude``
via einsum 204 ms), one fused pass is memory-bound.
"""

from __future__ import annotations

import numpy as np

from convcli.engines import _native

__all__ = ["reduce_stack"]


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
    out = np.empty((rows, cols, channels), dtype=stacked.dtype)

    def block(span: tuple[int, int]) -> None:
        _native.reduce_maps(stacked[span[0]:span[1]], out[span[0]:span[1]], reduce)

    by_row_blocks(block, stacked)
    return out
