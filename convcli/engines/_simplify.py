"""Exact rewrites of a problem into a cheaper equivalent one."""

from __future__ import annotations

import dataclasses

import numpy as np

from convcli.borders import Border
from convcli.engines import ForwardProblem

__all__ = ["channels_uniform", "sum_uniform_channels"]


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
    summed = np.sum(problem.image, axis=2, keepdims=True, dtype=problem.weights.dtype)
    border = problem.border
    if border.numpy_mode == "constant" and border.value:
        border = Border(name=border.name, numpy_mode=border.numpy_mode, value=border.value * channels)
    return dataclasses.replace(
        problem,
        image=summed,
        weights=np.ascontiguousarray(problem.weights[..., :1]),
        border=border,
    )
