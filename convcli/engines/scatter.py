"""Scatter strategy for transposed convolution: the literal adjoint.

``full[s·i + d·m, s·j + d·n, :] += image[i, j, :] · weights[:, m, n, :]`` for
every tap, each tap one strided slice update over the whole image, then the
crop. Simple and exact; the reference the faster strategies are checked against.
"""

from __future__ import annotations

import numpy as np

from convcli.engines import TransposeProblem

__all__ = ["run"]


def run(problem: TransposeProblem) -> np.ndarray:
    """Compute a :class:`TransposeProblem`; returns ``(H', W', N)``."""
    image, weights = problem.image, problem.weights
    rows, cols, channels = image.shape
    n_filters, kh, kw, _ = weights.shape
    (sr, sc), (dr, dc) = problem.stride, problem.dilation
    top, left = problem.crop
    out_rows, out_cols = problem.out_shape
    full_rows = max((rows - 1) * sr + dr * (kh - 1) + 1, top + out_rows)
    full_cols = max((cols - 1) * sc + dc * (kw - 1) + 1, left + out_cols)
    depthwise = problem.mode == "depthwise"
    shape = (full_rows, full_cols, n_filters, channels) if depthwise else (full_rows, full_cols, n_filters)
    full = np.zeros(shape, dtype=image.dtype)
    for m in range(kh):
        for n in range(kw):
            tap = weights[:, m, n, :]  # (F, C)
            if not tap.any():
                continue
            target = full[
                dr * m : dr * m + sr * (rows - 1) + 1 : sr,
                dc * n : dc * n + sc * (cols - 1) + 1 : sc,
            ]
            if depthwise:
                target += image[:, :, None, :] * tap
            else:
                target += image @ tap.T
    out = full[top : top + out_rows, left : left + out_cols]
    return np.ascontiguousarray(out.reshape(out_rows, out_cols, -1))
