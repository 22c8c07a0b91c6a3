"""Separable strategy: low-rank kernels as a vertical then a horizontal 1-D pass.

Each kernel is factored by SVD, ``w[f, :, :, c] = Σ_k u_k ⊗ v_k`` (rank 1 for
Gaussian, box, Sobel, Prewitt; singular values below ``1e-6·σ₀`` (float32)
or ``1e-12·σ₀`` (float64) are dropped, far inside the reference tolerance).
For a tile of output rows::

    vert[r, x, c] = Σ_m u_k[m, c] · pad[s_y·(i0 + r) + d_y·m, x, c]     (vertical)
    acc[r, j, c] += Σ_n v_k[n, c] · vert[r, s_x·j + d_x·n, c]            (horizontal)

``kh + kw`` taps per component instead of ``kh·kw``. The vertical pass of a
long kernel is a banded Toeplitz matrix product (``A[r, s_y·r + d_y·m] = u[m]``,
``vert = A @ band``) at BLAS speed instead of ``kh`` multiply-adds. The
horizontal pass of a long kernel is one too, on the tile transposed: with
``vertᵀ`` laid out as ``(x, (c, r))`` (a ``(W_band, C·R)`` matrix, made by
the vertical product itself, ``vertᵀ = bandᵀ @ Aᵀ``), every block of ``t``
output columns is ``Tᵀ (t × L) @ vertᵀ[s_x·t·b : s_x·t·b + L]`` with the
same small Toeplitz ``T[s_x·j + d_x·n, j] = v[n]`` (``L = s_x·(t − 1) +
d_x·(kw − 1) + 1``): ``L`` multiply-adds per output instead of ``kw``, but at
GEMM speed, with channels kept apart (no ``kron(T, I_C)``), then one 2-D
transpose back to ``(R, W'·C)`` (see :func:`_horizontal_gemm`). Measured on
W4/W5 (4K RGB, Gaussian 15×15 / 31×31, one thread): the horizontal pass took
28 / 36 ms this way against 64 / ~100 ms for the ``kron`` form. Short passes
use multiply-adds as in :mod:`convcli.engines.direct`.
"""

from __future__ import annotations

import numpy as np
from numpy.lib.stride_tricks import as_strided

from convcli.engines import ForwardProblem, _native
from convcli.engines._bands import (
    ColumnPhases,
    Padder,
    accumulate,
    parallel_map,
    row_tiles,
    scratch,
)
from convcli.engines._simplify import sum_uniform_channels

__all__ = ["factorize", "run"]

#: Floats of one tile's accumulator when a pass is a Toeplitz GEMM (its
#: redundant work grows with the rows of a tile, its per-call overhead
#: shrinks; 4K RGB, 2 threads, medians of 3 runs × 3: W4 15×15 52–63 ms at
#: 128 Ki floats, 49–53 at 256 Ki, 49–55 at 512 Ki; W5 31×31 79–83, 57–65,
#: 60–62; 16-column horizontal blocks beat 8 and 32), when every
#: pass is made of multiply-adds (fewer, larger tiles: less per-tile Python
#: and GIL hand-over; Sobel 4K RGB: 42 ms at 64 Ki, 25 at 256 Ki, 20 at 512 Ki),
#: and the fewest rows of a tile (the Toeplitz products lose speed below 8).
TILE_FLOATS = 1 << 18
TILE_FLOATS_SHORT = 1 << 19
TILE_MIN_ROWS = 8
#: Vertical passes with at least this many taps run as a Toeplitz GEMM.
VERTICAL_GEMM_TAPS = 5
#: Horizontal passes with at least this many taps run as a Toeplitz GEMM.
HORIZONTAL_GEMM_TAPS = 9
#: Output columns per horizontal Toeplitz tile (see TILE_FLOATS). Larger
#: tiles waste more FLOPs (``2·C·(t + kw − 1)`` per output), smaller ones
#: make the products too thin: 16 was best for kw = 15 and 31.
HORIZONTAL_TILE = 16


def rank_tolerance(dtype: np.dtype) -> float:
    """Singular values at or below this share of the largest are dropped (see the module notes)."""
    return 1e-6 if dtype == np.float32 else 1e-12


def factorize(weights: np.ndarray) -> list[list[tuple[np.ndarray, np.ndarray]]]:
    """Per filter, the components ``(u (kh, C), v (kw, C))`` with ``Σ_k u_k ⊗ v_k = w``."""
    n_filters, kh, kw, channels = weights.shape
    tolerance = rank_tolerance(weights.dtype)
    uniform = bool((weights == weights[..., :1]).all())
    factors = []
    for f in range(n_filters):
        per_channel = []
        for c in range(1 if uniform else channels):
            left, values, right = np.linalg.svd(weights[f, :, :, c].astype(np.float64))
            rank = int(np.count_nonzero(values > tolerance * values[0])) if values[0] > 0 else 0
            u, v = left[:, :rank] * values[:rank], right[:rank].T
            # only a low-rank kernel runs as 1-D passes; balancing a full-rank one is wasted time
            per_channel.append(_balanced(u, v) if rank < min(kh, kw) else (u, v))
        rank = max(u.shape[1] for u, _ in per_channel)
        components = []
        for k in range(rank):
            u = np.zeros((kh, channels))
            v = np.zeros((kw, channels))
            for c in range(channels):
                cu, cv = per_channel[0 if uniform else c]
                if k < cu.shape[1]:
                    u[:, c], v[:, c] = cu[:, k], cv[:, k]
            components.append((u.astype(weights.dtype), v.astype(weights.dtype)))
        factors.append(components)
    return factors


def _smallest_nonzero(vector: np.ndarray) -> float:
    """The non-zero entry of smallest magnitude (signed), or 0 for a zero vector."""
    magnitude = np.abs(vector)
    nonzero = magnitude > 1e-12 * magnitude.max() if magnitude.max() > 0 else magnitude > 0
    return float(vector[nonzero][np.argmin(magnitude[nonzero])]) if nonzero.any() else 0.0


def _integral(vector: np.ndarray) -> bool:
    return bool(np.abs(vector - np.rint(vector)).max() < 1e-9 * max(1.0, np.abs(vector).max()))


def _balanced(u: np.ndarray, v: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Rescale each component ``u_k ⊗ v_k`` so that its factors are small integers when they can be.

    Two scalings are tried: ``u_k`` divided by its smallest non-zero entry,
    and ``v_k`` divided by its own; the first whose two factors are within
    ``1e-9`` of integers (and whose snapped outer product is the same kernel)
    is snapped to them (signs chosen so that ``u_k`` starts positive), else
    the first scaling is kept. Sobel becomes
    ``[1, 2, 1] ⊗ [−1, 0, 1]`` and Scharr ``[3, 10, 3] ⊗ [−1, 0, 1]``
    instead of SVD's irrational factors, so the passes use the cheap ``±1``
    taps of :func:`convcli.engines._bands.accumulate`.
    """
    u, v = u.copy(), v.copy()
    for k in range(u.shape[1]):
        column, row = u[:, k].copy(), v[:, k].copy()
        smallest_u, smallest_v = _smallest_nonzero(column), _smallest_nonzero(row)
        scales = [s for s in (smallest_u, 1 / smallest_v if smallest_v else 0.0) if s]
        for index, scale in enumerate(scales):
            candidate_u, candidate_v = column / scale, row * scale
            if index == 0:
                u[:, k], v[:, k] = candidate_u, candidate_v
            if _integral(candidate_u) and _integral(candidate_v):
                snapped_u, snapped_v = np.rint(candidate_u), np.rint(candidate_v)
                product = np.outer(column, row)
                peak = np.abs(product).max()
                if peak > 0 and snapped_u.any() and \
                        np.abs(np.outer(snapped_u, snapped_v) - product).max() <= 1e-9 * peak:
                    sign = np.sign(snapped_u[np.flatnonzero(snapped_u)[0]])  # u starts positive
                    u[:, k], v[:, k] = sign * snapped_u, sign * snapped_v
                    break
    return u, v


def _taps(vector: np.ndarray, width: int) -> list[tuple[int, object]]:
    """Non-zero taps of a ``(k, C)`` factor: a float, or a ``(width·C,)`` row."""
    taps: list[tuple[int, object]] = []
    for index, per_channel in enumerate(vector):
        if not per_channel.any():
            continue
        if (per_channel == per_channel[0]).all():
            taps.append((index, float(per_channel[0])))
        else:
            taps.append((index, np.tile(per_channel, width)))
    return taps


def _uniform(vector: np.ndarray) -> bool:
    return bool((vector == vector[:, :1]).all())


def _vertical_matrix(u: np.ndarray, n_rows: int, stride: int, dilation: int, dtype) -> np.ndarray:
    """``A (n_rows, P)`` with ``A[r, s·r + d·m] = u[m]``."""
    kh = u.shape[0]
    height = stride * (n_rows - 1) + dilation * (kh - 1) + 1
    matrix = np.zeros((n_rows, height), dtype=dtype)
    rows = np.arange(n_rows)
    for m in range(kh):
        matrix[rows, stride * rows + dilation * m] = u[m]
    return matrix


def _horizontal_matrix(v: np.ndarray, stride: int, dilation: int, dtype) -> np.ndarray:
    """``Tᵀ (t, L)`` with ``T[s·j + d·n, j] = v[n]``, ``t = HORIZONTAL_TILE``."""
    tile = HORIZONTAL_TILE
    kw = v.shape[0]
    length = stride * (tile - 1) + dilation * (kw - 1) + 1
    toeplitz = np.zeros((length, tile))
    cols = np.arange(tile)
    for n in range(kw):
        toeplitz[stride * cols + dilation * n, cols] = v[n]
    return np.ascontiguousarray(toeplitz.T.astype(dtype))


def _horizontal_gemm(
    vert_t: np.ndarray, matrix_t: np.ndarray, n_tiles: int, stride: int, out_t: np.ndarray,
    tmp_t: np.ndarray, first: bool,
) -> None:
    """``out_t (+)= horizontal pass of vert_t``, both transposed: ``(x, (c, r))`` rows.

    ``vert_t`` is ``(W_band, C·R)`` with ``W_band ≥ s·t·(n_tiles − 1) + L``;
    ``out_t`` and ``tmp_t`` are ``(n_tiles, t, C·R)``. Block ``b`` of the
    output is ``matrix_t @ vert_t[s·t·b : s·t·b + L]``: one stacked matmul
    over strided views of ``vert_t`` (no copies).
    """
    tile, length = matrix_t.shape
    width = vert_t.shape[1]
    item = vert_t.itemsize
    blocks = as_strided(
        vert_t, (n_tiles, length, width), (stride * tile * width * item, width * item, item),
        writeable=False,
    )
    if first:
        np.matmul(matrix_t, blocks, out=out_t)
    else:
        np.matmul(matrix_t, blocks, out=tmp_t)
        np.add(out_t, tmp_t, out=out_t)


def run(problem: ForwardProblem) -> np.ndarray:
    """Compute a :class:`ForwardProblem`; returns ``(H', W', N)``."""
    n_out = problem.n_out
    problem = sum_uniform_channels(problem)
    image, weights = problem.image, problem.weights
    n_filters, kh, kw, channels = weights.shape
    out_rows, out_cols = problem.out_shape
    (sr, sc), (dr, dc) = problem.stride, problem.dilation
    depthwise = problem.mode == "depthwise"
    dtype = weights.dtype
    padder = Padder(image, problem.pads, problem.border, weights.dtype)
    factors = factorize(weights)
    n_tiles = -(-out_cols // HORIZONTAL_TILE)
    # Band width: the padded width, widened so that every horizontal GEMM
    # block reads inside the band; the extra columns are zeros.
    gemm_width = sc * HORIZONTAL_TILE * n_tiles + dc * (kw - 1) + 1
    band_width = max(padder.width, gemm_width)
    plans = []
    for components in factors:
        plan = []
        for u, v in components:
            vertical_gemm = _uniform(u) and np.count_nonzero(u[:, 0]) >= VERTICAL_GEMM_TAPS
            horizontal_gemm = np.count_nonzero(v.any(axis=1)) >= HORIZONTAL_GEMM_TAPS and _uniform(v)
            matrix_t = _horizontal_matrix(v[:, 0], sc, dc, dtype) if horizontal_gemm else None
            plan.append((u, _taps(u, band_width), vertical_gemm, _taps(v, out_cols), matrix_t))
        plans.append(plan)
    shape = (out_rows, out_cols, n_filters, channels) if depthwise else (out_rows, out_cols, n_filters)
    out = _native.empty(shape, dtype)
    row_width = out_cols * channels
    into_out = depthwise and n_filters == 1
    matrices: dict[tuple[int, int, int, bool], np.ndarray] = {}

    def vertical_matrix(f: int, k: int, u: np.ndarray, n_rows: int, transposed: bool) -> np.ndarray:
        key = (f, k, n_rows, transposed)
        if key not in matrices:
            matrix = _vertical_matrix(u[:, 0], n_rows, sr, dr, dtype)
            matrices[key] = np.ascontiguousarray(matrix.T) if transposed else matrix
        return matrices[key]

    def work(tile: tuple[int, int]) -> None:
        i0, i1 = tile
        n_rows = i1 - i0
        band = padder.band(sr * i0, sr * (i1 - 1) + dr * (kh - 1) + 1, "sep-band", band_width)
        flat = band.reshape(band.shape[0], -1)
        vert = scratch("sep-vert", (n_rows, band_width * channels), dtype)
        vtmp = scratch("sep-vtmp", (n_rows, band_width * channels), dtype)
        acc = out[i0:i1].reshape(n_rows, row_width) if into_out else \
            scratch("sep-acc", (n_rows, row_width), dtype)
        tmp = scratch("sep-tmp", (n_rows, row_width), dtype)
        for f, plan in enumerate(plans):
            first = first_t = True
            for k, (u, column_taps, vertical_gemm, row_taps, matrix_t) in enumerate(plan):
                if matrix_t is not None:  # long horizontal pass, on the transposed tile
                    vert_t = scratch("sep-vert-t", (band_width * channels, n_rows), dtype)
                    if vertical_gemm:
                        vmatrix_t = vertical_matrix(f, k, u, n_rows, True)
                        np.matmul(flat[: vmatrix_t.shape[0]].T, vmatrix_t, out=vert_t)
                    else:
                        terms = [(flat[dr * m : dr * m + sr * (n_rows - 1) + 1 : sr], weight)
                                 for m, weight in column_taps]
                        accumulate(vert, terms, vtmp, first=True)
                        np.copyto(vert_t, vert.T)
                    out_t = scratch("sep-out-t", (n_tiles, HORIZONTAL_TILE, channels * n_rows), dtype)
                    tmp_t = scratch("sep-tmp-t", (n_tiles, HORIZONTAL_TILE, channels * n_rows), dtype)
                    _horizontal_gemm(vert_t.reshape(band_width, channels * n_rows), matrix_t, n_tiles,
                                     sc, out_t, tmp_t, first_t)
                    first_t = False
                    continue
                if vertical_gemm:
                    matrix = vertical_matrix(f, k, u, n_rows, False)
                    np.matmul(matrix, flat[: matrix.shape[1]], out=vert)
                else:
                    terms = [(flat[dr * m : dr * m + sr * (n_rows - 1) + 1 : sr], weight)
                             for m, weight in column_taps]
                    accumulate(vert, terms, vtmp, first=True)
                phases = ColumnPhases(
                    vert.reshape(n_rows, band_width, channels), sc,
                    [dc * n for n, _ in row_taps], "sep",
                )
                terms = [(phases.window(0, 1, n_rows, dc * n, out_cols), weight) for n, weight in row_taps]
                if accumulate(acc, terms, tmp, first):
                    first = False
            if not first_t:  # (x, c, r) → (r, x, c): one 2-D transpose
                result_t = out_t.reshape(-1, n_rows)[:row_width].T
                if first:
                    np.copyto(acc, result_t)
                else:
                    np.add(acc, result_t, out=acc)
                first = False
            if first:
                acc[...] = 0
            if into_out:
                continue
            result = acc.reshape(n_rows, out_cols, channels)
            if depthwise:
                out[i0:i1, :, f, :] = result
            else:
                np.sum(result, axis=2, out=out[i0:i1, :, f])

    any_gemm = any(vertical or matrix_t is not None
                   for plan in plans for _, _, vertical, _, matrix_t in plan)
    tile_floats = TILE_FLOATS if any_gemm else max(TILE_FLOATS, TILE_FLOATS_SHORT)
    tile = max(TILE_MIN_ROWS, tile_floats // max(1, row_width))
    parallel_map(work, row_tiles(out_rows, tile))
    return out.reshape(out_rows, out_cols, n_out)
