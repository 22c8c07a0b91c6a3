"""GEMM strategy: im2col in row tiles times one weight matrix (BLAS).

For a tile of output rows the padded rows are built locally, the strided
windows of the non-zero taps are copied side by side into a per-thread
``(rows·W', K)`` matrix (``K = taps·C``, only the strided outputs) and one
matrix product with the ``(K, N)`` weight matrix writes the tile's output
rows in place::

    out[(i, j), f] = Σ_{(m, n, c)} cols[(i, j), (m, n, c)] · Wmat[(m, n, c), f]
    Wmat[(m, n, c), f] = w[f, m, n, c]                          (sum)
    Wmat[(m, n, c), f·C + c'] = w[f, m, n, c] · [c == c']       (depthwise)

Taps of one kernel row that are adjacent in the (phase-split) band are copied
as one sliding window of ``taps·C`` floats. Memory: the output plus one
im2col tile per worker (:data:`TILE_FLOATS`). Best for banks summed over
channels (see :func:`convcli.engines.choose_forward`).
"""

from __future__ import annotations

import numpy as np
from numpy.lib.stride_tricks import as_strided

from convcli.engines import ForwardProblem, _native
from convcli.engines._bands import (
    ColumnPhases,
    Padder,
    copy_cells,
    parallel_map,
    row_tiles,
    scratch,
)
from convcli.engines._simplify import sum_uniform_channels

__all__ = ["run", "tap_groups", "weight_matrix"]

#: Floats of one im2col tile (4 MiB in float32): big enough for BLAS to run
#: at speed, small enough that the tile stays in the shared L3 cache.
TILE_FLOATS = 1 << 20


def tap_groups(
    weights: np.ndarray, stride: tuple[int, int], dilation: tuple[int, int]
) -> list[tuple[int, int, int, list[int]]]:
    """Non-zero taps grouped into runs that are contiguous in a phase-split band.

    Returns ``(m, col_offset, count, ns)`` per group: kernel row ``m``, the
    column offset ``d_x·n`` of the first tap, and the taps ``ns`` whose
    windows are ``count`` adjacent columns of the same column phase.
    """
    _, kh, kw, _ = weights.shape
    sc, dc = stride[1], dilation[1]
    live = weights.any(axis=(0, 3))
    groups = []
    for m in range(kh):
        by_phase: dict[int, list[int]] = {}
        for n in range(kw):
            if live[m, n]:
                by_phase.setdefault((dc * n) % sc, []).append(n)
        for ns in by_phase.values():
            run = [ns[0]]
            for n in ns[1:]:
                if (dc * n) // sc == (dc * run[-1]) // sc + 1:
                    run.append(n)
                else:
                    groups.append((m, dc * run[0], len(run), run))
                    run = [n]
            groups.append((m, dc * run[0], len(run), run))
    return groups


def weight_matrix(
    weights: np.ndarray, taps: list[tuple[int, int]], depthwise: bool
) -> np.ndarray:
    """The ``(K, N)`` matrix of the taps in im2col order (see the module notes)."""
    n_filters, _, _, channels = weights.shape
    rows = np.stack([weights[:, m, n, :] for m, n in taps])  # (taps, F, C)
    if not depthwise:
        return np.ascontiguousarray(rows.transpose(0, 2, 1).reshape(-1, n_filters))
    eye = np.eye(channels, dtype=weights.dtype)
    # [(t, c), (f, c')] = rows[t, f, c]·eye[c, c']
    matrix = rows.transpose(0, 2, 1)[:, :, :, None] * eye[None, :, None, :]
    return np.ascontiguousarray(matrix.reshape(len(taps) * channels, n_filters * channels))


def run(problem: ForwardProblem) -> np.ndarray:
    """Compute a :class:`ForwardProblem`; returns ``(H', W', N)``."""
    n_out = problem.n_out
    problem = sum_uniform_channels(problem)
    image, weights = problem.image, problem.weights
    _, kh, kw, channels = weights.shape
    out_rows, out_cols = problem.out_shape
    (sr, sc), (dr, dc) = problem.stride, problem.dilation
    depthwise = problem.mode == "depthwise"
    groups = tap_groups(weights, problem.stride, problem.dilation)
    taps = [(m, n) for m, _, _, ns in groups for n in ns]
    n_inner = problem.n_out if depthwise else weights.shape[0]
    out = _native.empty((out_rows, out_cols, n_inner), weights.dtype)
    if not taps:
        out[...] = 0
        return out.reshape(out_rows, out_cols, n_out)
    matrix = weight_matrix(weights, taps, depthwise)
    depth = matrix.shape[0]
    padder = Padder(image, problem.pads, problem.border, weights.dtype)

    def work(tile: tuple[int, int]) -> None:
        i0, i1 = tile
        n_rows = i1 - i0
        band = padder.band(sr * i0, sr * (i1 - 1) + dr * (kh - 1) + 1, "gemm-band")
        phases = ColumnPhases(band, sc, [dc * n for n in range(kw)], "gemm")
        cols = scratch("gemm-cols", (n_rows, out_cols, depth), weights.dtype)
        start = 0
        for m, offset, count, _ in groups:
            span = count * channels
            base = phases.window(dr * m, sr, n_rows, offset, out_cols + count - 1)
            row_step, item = base.strides
            windows = as_strided(
                base, (n_rows, out_cols, span), (row_step, channels * item, item), writeable=False
            )
            copy_cells(cols[:, :, start : start + span], windows)
            start += span
        np.matmul(
            cols.reshape(n_rows * out_cols, depth),
            matrix,
            out=out[i0:i1].reshape(n_rows * out_cols, n_inner),
        )

    tile = max(1, TILE_FLOATS // max(1, out_cols * depth))
    parallel_map(work, row_tiles(out_rows, tile))
    return out.reshape(out_rows, out_cols, n_out)
