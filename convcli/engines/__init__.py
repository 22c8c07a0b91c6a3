"""Interchangeable strategies that compute one convolution problem.

Every strategy takes a fully validated problem (:class:`ForwardProblem` or
:class:`TransposeProblem`) and returns the ``(H', W', N)`` result without
bias, in the problem's dtype. :mod:`convcli.conv` validates the arguments,
builds the problem and picks the strategy (``method=``); strategies never
validate user input.

Two channel modes reach the strategies (``gray`` is turned into ``sum`` over
one luminance channel before):

* ``sum``: ``out[i, j, f] = Σ_{m,n,c} pad[s·i + d·m, s·j + d·n, c] · w[f, m, n, c]``
* ``depthwise``: ``out[i, j, f·C + c] = Σ_{m,n} pad[s·i + d·m, s·j + d·n, c] · w[f, m, n, c]``
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from convcli.borders import Border

__all__ = [
    "FORWARD_ENGINES",
    "FUSED_CHECK",
    "TRANSPOSE_ENGINES",
    "ForwardProblem",
    "TransposeProblem",
]


@dataclass(frozen=True)
class ForwardProblem:
    """A validated forward convolution.

    Attributes
    ----------
    image : ndarray, shape (H, W, C)
        Unpadded input, C-contiguous: float32 or float64, or uint8/uint16
        pixels for the strategies that read it in padded bands (direct,
        gemm, separable: :data:`convcli.conv.BAND_STRATEGIES`).
    weights : ndarray, shape (F, kh, kw, C)
        Correlation weights (already flipped for ``flip=True``) in the
        compute dtype (float32 or float64), which the result has too. In
        depthwise mode a 2-D kernel is broadcast over C (``np.broadcast_to``:
        do not write to it).
    mode : {'sum', 'depthwise'}
    pads : (top, bottom, left, right)
    border : Border
    stride, dilation : (rows, cols)
    out_shape : (H', W')
    check_finite : bool
        The image has not been checked for NaN and ±inf yet: the strategy
        must refuse them (:func:`convcli.engines._finite.require_finite`).
        :func:`convcli.conv.conv2d` sets it only for the strategies of
        :data:`FUSED_CHECK`, which test each row as they first read it.
    """

    image: np.ndarray
    weights: np.ndarray
    mode: str
    pads: tuple[int, int, int, int]
    border: Border
    stride: tuple[int, int]
    dilation: tuple[int, int]
    out_shape: tuple[int, int]
    check_finite: bool = False

    @property
    def n_out(self) -> int:
        """Number of output channels N."""
        f, c = self.weights.shape[0], self.image.shape[2]
        return f * c if self.mode == "depthwise" else f


@dataclass(frozen=True)
class TransposeProblem:
    """A validated transposed convolution (PyTorch ``conv_transpose2d``).

    ``full[s·i + d·m, s·j + d·n, f] += image[i, j, c] · weights[f, m, n, c]``
    (``sum``; depthwise as in :class:`ForwardProblem`), then rows
    ``crop[0] .. crop[0] + H' − 1`` and columns ``crop[1] ..`` are kept; rows
    past the scatter extent are zeros.

    Attributes
    ----------
    image : ndarray, shape (H, W, C)
    weights : ndarray, shape (F, kh, kw, C)
    mode : {'sum', 'depthwise'}
    crop : (top, left)
    stride, dilation : (rows, cols)
    out_shape : (H', W')
    """

    image: np.ndarray
    weights: np.ndarray
    mode: str
    crop: tuple[int, int]
    stride: tuple[int, int]
    dilation: tuple[int, int]
    out_shape: tuple[int, int]

    @property
    def n_out(self) -> int:
        """Number of output channels N."""
        f, c = self.weights.shape[0], self.image.shape[2]
        return f * c if self.mode == "depthwise" else f


def _forward_engines() -> dict[str, Callable[[ForwardProblem], np.ndarray]]:
    from convcli.engines import _native, direct, fft, gemm, reference, separable

    engines = {
        "direct": direct.run,
        "fft": fft.run,
        "gemm": gemm.run,
        "reference": reference.run,
        "separable": separable.run,
    }
    if _native.AVAILABLE:
        from convcli.engines import native

        engines["native"] = native.run
        engines["native-separable"] = native.run_separable
    return engines


def _transpose_engines() -> dict[str, Callable[[TransposeProblem], np.ndarray]]:
    from convcli.engines import _native, polyphase, scatter

    engines = {"polyphase": polyphase.run, "scatter": scatter.run}
    if _native.AVAILABLE:
        engines["native-polyphase"] = polyphase.run_native
    return engines


FORWARD_ENGINES = _forward_engines()
TRANSPOSE_ENGINES = _transpose_engines()

#: The strategies that take a :class:`ForwardProblem` with ``check_finite``
#: (they fuse the NaN/inf check into their row loops).
FUSED_CHECK = frozenset({"native", "native-separable"})


#: Below this many multiply-adds every strategy takes microseconds: ``direct``
#: is picked without consulting the cost model (which factors kernels).
SMALL_PROBLEM_MACS = 100_000


def choose_forward(problem: ForwardProblem) -> str:
    """The strategy ``method='auto'`` uses for a forward problem.

    The cheapest by :func:`convcli.engines._cost.estimate_forward`, a cost
    model whose coefficients and crossovers were measured with
    ``python benchmarks/crossovers.py`` (see that module's notes).
    """
    from convcli.engines._cost import estimate_forward

    n_filters, kh, kw, channels = problem.weights.shape
    out_rows, out_cols = problem.out_shape
    if out_rows * out_cols * n_filters * kh * kw * channels < SMALL_PROBLEM_MACS:
        return "direct"
    estimates = estimate_forward(problem)
    return min(estimates, key=estimates.__getitem__)


def choose_transpose(problem: TransposeProblem) -> str:
    """The strategy ``method='auto'`` uses for a transposed problem.

    Both polyphase strategies compute the ``s_y·s_x`` phase kernels
    (:func:`convcli.engines.polyphase.phase_bank`) as stride-1 correlations
    and beat the per-tap scatter at every size measured (W7, 1080×1920 →
    2160×3840, 4×4 stride 2, 3→3, ``benchmarks/run.py``: scatter 480 ms,
    polyphase 42 ms, native-polyphase 25 ms). Between the two, the forward
    cost model (:func:`convcli.engines._cost.estimate_forward`) judges that
    correlation: ``native-polyphase`` is its ``native`` estimate, the
    compiled loops, which win for image channels; ``polyphase`` its
    ``gemm`` estimate, one BLAS product, which wins for deep banks
    (measured: 64 → 32 channels, 4×4 stride 2 on 256×256: 85 ms vs 170 ms).
    """
    from convcli.engines import _native

    if not _native.AVAILABLE:
        return "polyphase"
    from convcli.borders import parse_border
    from convcli.engines._cost import estimate_forward
    from convcli.engines.polyphase import phase_bank

    bank, _ = phase_bank(problem.weights, problem.stride, problem.dilation)
    (sr, sc), (top, left) = problem.stride, problem.crop
    out_rows, out_cols = problem.out_shape
    phase_rows = (top + out_rows - 1) // sr + 1 - top // sr
    phase_cols = (left + out_cols - 1) // sc + 1 - left // sc
    forward = ForwardProblem(
        image=problem.image, weights=bank, mode=problem.mode, pads=(0, 0, 0, 0),
        border=parse_border("zero"), stride=(1, 1), dilation=(1, 1), out_shape=(phase_rows, phase_cols),
    )
    estimates = estimate_forward(forward, separable=False)
    return "native-polyphase" if estimates["native"] <= estimates["gemm"] else "polyphase"
