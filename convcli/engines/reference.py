"""Reference strategy: the formula, tap by tap, on the fully padded image.

Simple and exact, kept as the yardstick of the fast strategies (it was the
first ``direct``). For each tap ``(m, n)`` the strided window
``pad[d·m : d·m + s·(H'−1) + 1 : s, d·n : … : s, :]`` is multiplied by the
tap's weights and added to the output, so only the strided outputs are ever
computed and no ``kh·kw``-times copy of the image is made. It pads the
whole image and makes whole-image temporaries: fine for checking, not for
speed.
"""

from __future__ import annotations

import numpy as np

from convcli.borders import pad_image
from convcli.engines import ForwardProblem

__all__ = ["run"]


def run(problem: ForwardProblem) -> np.ndarray:
    """Compute a :class:`ForwardProblem`; returns ``(H', W', N)``."""
    padded = pad_image(problem.image, problem.pads, problem.border)
    weights = problem.weights
    n_filters, kh, kw, channels = weights.shape
    out_rows, out_cols = problem.out_shape
    (sr, sc), (dr, dc) = problem.stride, problem.dilation
    dtype = problem.image.dtype
    depthwise = problem.mode == "depthwise"
    if depthwise:
        out = np.zeros((out_rows, out_cols, n_filters, channels), dtype=dtype)
    else:
        out = np.zeros((out_rows, out_cols, n_filters), dtype=dtype)
    for m in range(kh):
        for n in range(kw):
            tap = weights[:, m, n, :]  # (F, C)
            if not tap.any():
                continue
            window = padded[
                dr * m : dr * m + sr * (out_rows - 1) + 1 : sr,
                dc * n : dc * n + sc * (out_cols - 1) + 1 : sc,
                :,
            ]
            if depthwise:
                out += window[:, :, None, :] * tap
            else:
                out += window @ tap.T
    return out.reshape(out_rows, out_cols, -1)
