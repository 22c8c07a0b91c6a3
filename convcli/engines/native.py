"""Native strategies: the compiled fused loops of :mod:`convcli.engines._cnative`, per row band.

``native`` (direct k×k): for a tile of output rows the padded band is built
as for :mod:`convcli.engines.direct` (:class:`convcli.engines._bands.Padder`),
then one compiled call computes every output of the tile::

    out[r, j, f·C + c] = Σ_{m,n} w[f, m, n, c] · pad[s_y·(i0 + r) + d_y·m, s_x·j + d_x·n, c]   (depthwise)
    out[r, j, f]       = Σ_{m,n,c} w[f, m, n, c] · pad[…, c]                                    (sum)

all taps of a chunk of output columns kept in registers (one pass over the
band instead of one per tap), only the strided outputs computed.

``native-separable``: low-rank kernels (:func:`convcli.engines.separable.factorize`)
as a vertical then a horizontal 1-D pass, each one compiled call::

    vert[r, x, c] = Σ_m u_k[m, c] · pad[s_y·(i0 + r) + d_y·m, x, c]
    acc[r, j, c] += Σ_n v_k[n, c] · vert[r, s_x·j + d_x·n, c]

Both release the GIL, so tiles run on all cores of the worker pool.
Registered in :data:`convcli.engines.FORWARD_ENGINES` only when the
extension imports (:data:`convcli.engines._native.AVAILABLE`).
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from convcli.engines import ForwardProblem, _native
from convcli.engines._bands import Padder, parallel_map, row_tiles, scratch
from convcli.engines._finite import ensure_finite, require_finite
from convcli.engines._simplify import channels_uniform, sum_uniform_channels

__all__ = ["fuses_reduce", "run", "run_separable"]

#: Input values of one tile's padded band: 256 Ki values (1 MiB of float32,
#: ≈ 22 rows of a 4K RGB image) keeps the band and its planar copy near the
#: L2 cache while giving 2 workers enough tiles to share; at least
#: TILE_MIN_ROWS output rows, so the kernel's halo rows are not re-read too often.
TILE_VALUES = 1 << 18
TILE_MIN_ROWS = 8


def _tiles(problem: ForwardProblem, band_row_values: int, copied: bool = True) -> list[tuple[int, int]]:
    """Output row tiles: of about :data:`TILE_VALUES` band values when the tile's band is
    ``copied`` (padded, phase or planar copies), else only enough for the workers' load balance."""
    out_rows = problem.out_shape[0]
    rows = max(TILE_MIN_ROWS, TILE_VALUES // max(1, band_row_values * problem.stride[0]))
    if not copied:  # small tiles cost only a Python call each: 32 of them balance a shared machine
        rows = max(TILE_MIN_ROWS, -(-out_rows // 32))
    # at least 4 tiles per worker when the image allows it (load balance)
    rows = min(rows, max(1, -(-out_rows // 8)))
    return row_tiles(out_rows, rows)


def row_checks(bands: list[tuple[int, int]], top: int, height: int
               ) -> tuple[list[tuple[int, int]], list[tuple[int, int]]]:
    """Share out the finiteness check of the image rows among tiles that read them.

    Tile ``t`` reads the padded rows ``bands[t] = [start, stop)`` (in
    increasing order of ``start``); padded row ``top + i`` is image row
    ``i`` for ``0 ≤ i < height``. Each image row is given to the first tile
    that reads it as an interior row, so it is tested once, in cache.

    Returns
    -------
    checks : list of (lo, hi)
        Per tile, the rows ``[lo, hi)`` of its band (0 = ``start``) whose
        image rows it tests (``(0, 0)``: none).
    missed : list of (i0, i1)
        Image rows no tile reads (a stride past the kernel, ``valid``
        crops): the caller tests them on their own.
    """
    done, end = top, top + height
    checks: list[tuple[int, int]] = []
    missed: list[tuple[int, int]] = []
    for start, stop in bands:
        lo, hi = max(start, done), min(stop, end)
        if min(lo, end) > done:
            missed.append((done - top, min(lo, end) - top))
            done = min(lo, end)
        if hi > lo:
            checks.append((lo - start, hi - start))
            done = hi
        else:
            checks.append((0, 0))
    if done < end:
        missed.append((done - top, height))
    return checks, missed


def _run_tiles(work: Callable[[tuple[tuple[int, int], tuple[int, int] | None]], bool],
               tiles: list[tuple[int, int]], problem: ForwardProblem, original: np.ndarray,
               image: np.ndarray, check: bool) -> None:
    """``work((tile, check_rows))`` for every output row tile on the pool, then the finiteness verdict.

    With ``check``, each tile tests the image rows :func:`row_checks` gives
    it (``work`` returns False when one holds NaN or ±inf) and the rows no
    tile reads are tested here; any failure ends in :func:`require_finite`
    on ``original``. ``image`` is what the tiles read: ``original`` or its
    channel sums, whose overflow (finite ``original``) is no error, as with
    an eager check.
    """
    if check:
        (sr, _), (dr, _), kh = problem.stride, problem.dilation, problem.weights.shape[1]
        bands = [(sr * i0, sr * (i1 - 1) + dr * (kh - 1) + 1) for i0, i1 in tiles]
        checks, missed = row_checks(bands, problem.pads[0], image.shape[0])
    else:
        checks, missed = [None] * len(tiles), []
    verdicts = parallel_map(work, list(zip(tiles, checks)), blas=False)
    if check and (not all(verdicts) or any(not np.isfinite(image[i0:i1]).all() for i0, i1 in missed)):
        require_finite(original)


def fuses_reduce(problem: ForwardProblem) -> bool:
    """Whether :func:`run` can fuse a reduce step over the bank into its loop.

    True for depthwise maps and for one-channel (or uniform-bank ``sum``)
    maps, where the maps of a channel are the F filters' outputs side by side.
    """
    return (problem.mode == "depthwise" or problem.weights.shape[3] == 1
            or channels_uniform(problem.weights))


def run(problem: ForwardProblem, reduce: str = "none") -> np.ndarray:
    """Compute a :class:`ForwardProblem` with the compiled direct loop.

    Returns ``(H', W', N)``; with ``reduce`` (``magnitude``, ``max``, ``min``
    or ``sum``, where :func:`fuses_reduce` holds) ``(H', W', N / F)``, equal
    to :func:`convcli.maps.reduce_maps` of the maps, computed in one pass.
    """
    n_out = problem.n_out
    original = problem.image
    problem = sum_uniform_channels(problem)
    image = problem.image
    weights = np.ascontiguousarray(problem.weights)
    n_filters, kh, _, channels = weights.shape
    out_rows, out_cols = problem.out_shape
    (sr, sc), (dr, dc) = problem.stride, problem.dilation
    depthwise = problem.mode == "depthwise" or channels == 1
    fused = None if reduce == "none" else reduce
    if fused is not None and not depthwise:
        raise ValueError("native.run: a fused reduce needs depthwise or one-channel maps")
    n_maps = n_out // n_filters if fused else n_out
    out = _native.empty((out_rows, out_cols, channels if fused else n_filters * channels if depthwise
                         else n_filters), weights.dtype)
    padder = Padder(image, problem.pads, problem.border, weights.dtype)
    check = problem.check_finite
    if check and (out_rows == 0 or out_cols == 0 or not padder.in_place):
        ensure_finite(original)
        check = False
    if out_rows == 0 or out_cols == 0:
        return out.reshape(out_rows, out_cols, n_maps)

    def work(job: tuple[tuple[int, int], tuple[int, int]]) -> bool:
        (i0, i1), check_rows = job
        start, stop = sr * i0, sr * (i1 - 1) + dr * (kh - 1) + 1
        if padder.in_place:  # the kernel reads the image rows; only border columns are copied
            return _native.correlate_image(image, padder.rows[start:stop], padder.cols, padder.left,
                                           problem.border.value, weights, out[i0:i1], (sr, sc), (dr, dc),
                                           depthwise, fused, check_rows=check_rows)
        band = padder.band(start, stop, "native-band")
        _native.correlate(band, weights, out[i0:i1], (sr, sc), (dr, dc), depthwise, fused)
        return True

    # one filter at column stride 1 reads the image in place: no band copy to keep in cache
    interleaved = fused is not None or (n_filters == 1 and depthwise)
    copied = not padder.in_place or sc > 1 or not interleaved
    _run_tiles(work, _tiles(problem, padder.width * channels, copied), problem, original, image, check)
    return out.reshape(out_rows, out_cols, n_maps)


def run_separable(problem: ForwardProblem) -> np.ndarray:
    """Compute a :class:`ForwardProblem` as compiled 1-D passes of its SVD factors.

    Exact for any kernel (a full-rank kernel has ``min(kh, kw)`` components),
    fast for low-rank ones (``auto`` picks it only for those).
    """
    from convcli.engines.separable import factorize

    n_out = problem.n_out
    original = problem.image
    problem = sum_uniform_channels(problem)
    image, weights = problem.image, problem.weights
    n_filters, kh, _, channels = weights.shape
    out_rows, out_cols = problem.out_shape
    (sr, sc), (dr, dc) = problem.stride, problem.dilation
    depthwise = problem.mode == "depthwise"
    out = _native.empty((out_rows, out_cols, n_filters, channels) if depthwise
                        else (out_rows, out_cols, n_filters), weights.dtype)
    padder = Padder(image, problem.pads, problem.border, weights.dtype)
    fused_passes = padder.in_place and sc == 1 and n_filters == 1 and (depthwise or channels == 1)
    check = problem.check_finite
    if check and (out_rows == 0 or out_cols == 0 or not fused_passes):
        ensure_finite(original)
        check = False
    if out_rows == 0 or out_cols == 0:
        return out.reshape(out_rows, out_cols, n_out)
    dtype = weights.dtype
    factors = [
        [(np.ascontiguousarray(u[None, :, None, :], dtype=dtype),
          np.ascontiguousarray(v[None, None, :, :], dtype=dtype)) for u, v in components]
        for components in factorize(weights)
    ]
    width = padder.width
    only_plane = n_filters == 1 and depthwise
    if fused_passes and factors[0]:
        # both passes fused row by row in one compiled call per tile, the image read in place
        u = np.ascontiguousarray(np.stack([u[0, :, 0, :] for u, _ in factors[0]]))
        v = np.ascontiguousarray(np.stack([v[0, 0] for _, v in factors[0]]))
        planes = out.reshape(out_rows, out_cols, channels)

        def fused(job: tuple[tuple[int, int], tuple[int, int] | None]) -> bool:
            (i0, i1), check_rows = job
            return _native.separable_image(
                image, padder.rows[sr * i0 : sr * (i1 - 1) + dr * (kh - 1) + 1], padder.cols, padder.left,
                problem.border.value, u, v, planes[i0:i1], sr, (dr, dc), check_rows=check_rows)

        _run_tiles(fused, _tiles(problem, width * channels, copied=False), problem, original, image, check)
        return out.reshape(out_rows, out_cols, n_out)
    if check:  # an all-zero bank (no factors): nothing reads the image
        ensure_finite(original)

    def work(tile: tuple[int, int]) -> None:
        i0, i1 = tile
        n_rows = i1 - i0
        band = padder.band(sr * i0, sr * (i1 - 1) + dr * (kh - 1) + 1, "native-sep-band")
        vert = scratch("native-sep-vert", (n_rows, width, channels), dtype)
        part = scratch("native-sep-part", (n_rows, out_cols, channels), dtype)
        for f, components in enumerate(factors):
            if only_plane:
                acc = out[i0:i1].reshape(n_rows, out_cols, channels)
            else:
                acc = scratch("native-sep-acc", (n_rows, out_cols, channels), dtype)
            if not components:
                acc[...] = 0
            for k, (u, v) in enumerate(components):
                _native.correlate(band, u, vert, (sr, 1), (dr, 1), True)
                _native.correlate(vert, v, acc if k == 0 else part, (1, sc), (1, dc), True)
                if k:
                    np.add(acc, part, out=acc)
            if depthwise:
                if not only_plane:
                    out[i0:i1, :, f, :] = acc
            elif channels == 1:
                out[i0:i1, :, f] = acc[:, :, 0]
            else:
                plane = scratch("native-sep-sum", (n_rows, out_cols), dtype)
                _native.channel_sum(acc, plane)
                out[i0:i1, :, f] = plane

    parallel_map(work, _tiles(problem, width * channels), blas=False)
    return out.reshape(out_rows, out_cols, n_out)

