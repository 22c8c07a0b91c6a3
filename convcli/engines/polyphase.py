"""Polyphase strategy for transposed convolution: s² small correlations, one GEMM.

Along one axis, tap ``m`` of the scatter ``full[s·i + d·m] += x[i]·w[m]``
lands on phase ``ρ = (d·m) mod s`` at ``q = i + a_m`` with ``a_m = ⌊d·m / s⌋``::

    full[s·q + ρ] = Σ_{m : (d·m) mod s = ρ} x[q − a_m] · w[m]

so each of the ``s_y·s_x`` output phases is a stride-1 correlation of the
zero-padded input with a small kernel (taps at ``A − a_m``, ``A = max a_m``).
All phases share one im2col window of ``(A_y + 1)×(A_x + 1)`` input pixels,
so a tile of phase rows is one matrix product with a
``(K, s_y·s_x·N)`` weight matrix; its result is interleaved (a pixel
shuffle) straight into the cropped output. Only the kept rows and columns
``crop .. crop + H' − 1`` are computed; no zero-inserted image is made.
"""

from __future__ import annotations

import numpy as np
from numpy.lib.stride_tricks import as_strided

from convcli.borders import Border
from convcli.engines import TransposeProblem, _native
from convcli.engines._bands import (
    copy_cells,
    padded_rows,
    parallel_map,
    row_tiles,
    scratch,
)
from convcli.engines.gemm import tap_groups, weight_matrix

__all__ = ["phase_bank", "run"]

#: Floats of one im2col tile (see :data:`convcli.engines.gemm.TILE_FLOATS`).
TILE_FLOATS = 1 << 20

_ZERO = Border(name="zero", numpy_mode="constant", value=0.0)


def _axis_phases(size: int, stride: int, dilation: int) -> tuple[int, list[tuple[int, int]]]:
    """``A`` and, per tap ``m``, ``(phase, window index A − a_m)``."""
    shifts = [(dilation * m) // stride for m in range(size)]
    reach = max(shifts)
    return reach, [((dilation * m) % stride, reach - shift) for m, shift in enumerate(shifts)]


def phase_bank(weights: np.ndarray, stride: tuple[int, int], dilation: tuple[int, int]):
    """The ``(s_y·s_x·F, A_y + 1, A_x + 1, C)`` bank of phase kernels and ``(A_y, A_x)``.

    Kernel ``(ρ_y·s_x + ρ_x)·F + f`` is the correlation kernel of output
    phase ``(ρ_y, ρ_x)`` for filter ``f``.
    """
    n_filters, kh, kw, channels = weights.shape
    reach_r, rows = _axis_phases(kh, stride[0], dilation[0])
    reach_c, cols = _axis_phases(kw, stride[1], dilation[1])
    bank = np.zeros(
        (stride[0], stride[1], n_filters, reach_r + 1, reach_c + 1, channels), dtype=weights.dtype
    )
    for m, (phase_r, a) in enumerate(rows):
        for n, (phase_c, b) in enumerate(cols):
            bank[phase_r, phase_c, :, a, b, :] = weights[:, m, n, :]
    return bank.reshape(-1, reach_r + 1, reach_c + 1, channels), (reach_r, reach_c)


def _source_map(start: int, stop: int, size: int) -> np.ndarray:
    """Input index of positions ``start .. stop − 1`` (``-1`` outside ``[0, size)``)."""
    index = np.arange(start, stop, dtype=np.intp)
    index[(index < 0) | (index >= size)] = -1
    return index


def _kept(lo: int, hi: int, phase: int, stride: int, crop: int, size: int) -> tuple[int, int]:
    """The ``q`` in ``[lo, hi)`` whose row ``stride·q + phase`` is in ``[crop, crop + size)``."""
    first = -((phase - crop) // stride)  # ceil((crop − phase) / stride)
    last = (crop + size - 1 - phase) // stride
    return max(lo, first), min(hi, last + 1)


def run(problem: TransposeProblem) -> np.ndarray:
    """Compute a :class:`TransposeProblem`; returns ``(H', W', N)``."""
    image, weights = problem.image, problem.weights
    rows, cols, channels = image.shape
    (sr, sc) = problem.stride
    top, left = problem.crop
    out_rows, out_cols = problem.out_shape
    depthwise = problem.mode == "depthwise"
    n_out = problem.n_out
    out = _native.empty((out_rows, out_cols, n_out), image.dtype)
    bank, (reach_r, reach_c) = phase_bank(weights, problem.stride, problem.dilation)
    groups = tap_groups(bank, (1, 1), (1, 1))
    taps = [(m, n) for m, _, _, ns in groups for n in ns]
    if not taps:
        out[...] = 0
        return out
    matrix = weight_matrix(bank, taps, depthwise)  # (K, sr·sc·N), columns (ρy, ρx, n)
    depth = matrix.shape[0]
    # phase rows q0 .. q1 − 1 and columns p0 .. p1 − 1 cover the kept output
    q0, q1 = top // sr, (top + out_rows - 1) // sr + 1
    p0, p1 = left // sc, (left + out_cols - 1) // sc + 1
    n_q_cols = p1 - p0
    col_map = _source_map(p0 - reach_c, p1, cols)
    live = col_map >= 0
    if live.any():
        first_pos = int(np.argmax(live))
        span = (int(col_map[first_pos]), int(live.sum()))
    else:
        first_pos, span = 0, (0, 0)

    def work(tile: tuple[int, int]) -> None:
        qa, qb = tile[0] + q0, tile[1] + q0
        n_rows = qb - qa
        band = scratch("poly-band", (n_rows + reach_r, col_map.shape[0], channels), image.dtype)
        padded_rows(
            image, _source_map(qa - reach_r, qb, rows), col_map, first_pos, _ZERO, band, span
        )
        flat = band.reshape(band.shape[0], -1)
        cols_buf = scratch("poly-cols", (n_rows, n_q_cols, depth), image.dtype)
        start = 0
        for m, offset, count, _ in groups:
            span_k = count * channels
            base = flat[m : m + n_rows, offset * channels :]
            windows = as_strided(
                base,
                (n_rows, n_q_cols, span_k),
                (base.strides[0], channels * base.itemsize, base.itemsize),
                writeable=False,
            )
            copy_cells(cols_buf[:, :, start : start + span_k], windows)
            start += span_k
        result = scratch("poly-out", (n_rows * n_q_cols, matrix.shape[1]), image.dtype)
        np.matmul(cols_buf.reshape(n_rows * n_q_cols, depth), matrix, out=result)
        phases = result.reshape(n_rows, n_q_cols, sr, sc, n_out)
        for phase_r in range(sr):
            q_lo, q_hi = _kept(qa, qb, phase_r, sr, top, out_rows)
            for phase_c in range(sc):
                p_lo, p_hi = _kept(p0, p1, phase_c, sc, left, out_cols)
                if q_lo >= q_hi or p_lo >= p_hi:
                    continue
                y, x = sr * q_lo + phase_r - top, sc * p_lo + phase_c - left
                copy_cells(
                    out[y : y + sr * (q_hi - q_lo - 1) + 1 : sr,
                        x : x + sc * (p_hi - p_lo - 1) + 1 : sc],
                    phases[q_lo - qa : q_hi - qa, p_lo - p0 : p_hi - p0, phase_r, phase_c],
                )

    tile = max(1, TILE_FLOATS // max(1, n_q_cols * depth))
    parallel_map(work, row_tiles(q1 - q0, tile))
    return out


#: Values of one ``native-polyphase`` tile's phase rows (all column phases and
#: maps): 512 Ki values (2 MiB of float32) stay in cache until they are copied out.
NATIVE_TILE_VALUES = 1 << 19


def run_native(problem: TransposeProblem) -> np.ndarray:
    """Compute a :class:`TransposeProblem` with the compiled correlation loops.

    For each output row phase ``ρ_y`` the phase kernels of every column phase
    form one forward bank of ``s_x·F`` kernels (:func:`phase_bank`), and one
    stride-1 correlation of the zero-bordered input
    (:func:`convcli.engines._native.correlate_image`, which reads the image
    rows in place) gives, per phase row ``q``, the values
    ``(p, ρ_x, n)`` in the order of output row ``y = s_y·q + ρ_y − crop_top``:
    output column ``x = s_x·p + ρ_x − crop_left`` holds map ``n`` at
    ``x·N + n``. So each phase row lands in its output row as one contiguous
    run (shifted by the column crop), copied while the tile is in cache:
    no im2col matrix, no GEMM, no strided pixel shuffle.

    Returns ``(H', W', N)``, equal to :func:`run` within float rounding.
    """
    image, weights = problem.image, problem.weights
    rows, cols = image.shape[:2]
    sr, sc = problem.stride
    top, left = problem.crop
    out_rows, out_cols = problem.out_shape
    n_out = problem.n_out
    out = _native.empty((out_rows, out_cols, n_out), image.dtype)
    if out_rows == 0 or out_cols == 0:
        return out
    bank, (reach_r, reach_c) = phase_bank(weights, problem.stride, problem.dilation)
    n_filters = weights.shape[0]
    # per row phase, its (s_x·F, A_y + 1, A_x + 1, C) forward bank (kernel ρ_x·F + f)
    banks = np.ascontiguousarray(bank.reshape(sr, sc * n_filters, *bank.shape[1:]))
    depthwise = problem.mode == "depthwise"
    q0, q1 = top // sr, (top + out_rows - 1) // sr + 1
    p0, p1 = left // sc, (left + out_cols - 1) // sc + 1
    # correlation column j reads positions j .. j + A_x of a column map that holds every image
    # column (the kernel reads them in place) and starts at phase column p0 − A_x or before
    start = min(p0 - reach_c, 0)
    col_map = _source_map(start, max(p1, cols), cols)
    n_cols = p1 - start - reach_c  # phase columns start + A_x .. p1 − 1
    row_values = n_cols * sc * n_out  # values of one phase row
    shift = left * n_out - (start + reach_c) * sc * n_out  # of output column 0 in a phase row
    flat_out = out.reshape(out_rows, out_cols * n_out)

    def work(tile: tuple[int, int]) -> None:
        qa, qb = tile[0] + q0, tile[1] + q0
        row_map = _source_map(qa - reach_r, qb, rows)
        phase_rows = scratch("poly-native", (qb - qa, n_cols, sc * n_out), image.dtype)
        flat = phase_rows.reshape(qb - qa, row_values)
        for phase_r in range(sr):
            q_lo, q_hi = _kept(qa, qb, phase_r, sr, top, out_rows)
            if q_lo >= q_hi:
                continue
            _native.correlate_image(image, row_map[q_lo - qa : q_hi - qa + reach_r], col_map, -start, 0.0,
                                    banks[phase_r], phase_rows[: q_hi - q_lo], (1, 1), (1, 1), depthwise)
            y = sr * q_lo + phase_r - top
            np.copyto(flat_out[y : y + sr * (q_hi - q_lo - 1) + 1 : sr],
                      flat[: q_hi - q_lo, shift : shift + out_cols * n_out])

    tile = max(1, min(NATIVE_TILE_VALUES // max(1, row_values), -(-(q1 - q0) // 8)))
    parallel_map(work, row_tiles(q1 - q0, tile), blas=False)
    return out
