"""Direct strategy: shift-and-accumulate over the taps, in cache-sized row bands.

For a tile of output rows ``i0 .. i1 − 1`` the padded rows it needs are built
locally (:class:`convcli.engines._bands.Padder`, never a padding of the whole
image), then every non-zero tap ``(m, n)`` adds one strided window::

    acc[r, j, c] += w[f, m, n, c] · pad[s_y·(i0 + r) + d_y·m, s_x·j + d_x·n, c]

On channels-last data a window is ``(rows, W'·C)`` with a contiguous inner
axis (column strides are first split into contiguous phases), so each tap is
one fused multiply-add over a band that stays in cache; weights of ±1 skip
the multiplication. ``sum`` mode accumulates per channel and reduces over C
at the end of the tile. Tiles run on the worker pool.

Cost: about ``2·taps`` passes over the output, the best choice for small
kernels and few filters (see :func:`convcli.engines.choose_forward`).
"""

from __future__ import annotations

import numpy as np

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

__all__ = ["run"]

#: Floats of one tile's accumulator: 512 Ki floats (2 MiB, ~45 rows of a 4K RGB
#: image). Fewer, larger tiles beat cache-sized ones here: with two workers
#: each numpy call hands the GIL back and forth, and per-tile Python work
#: adds up (W1, 4K RGB Sobel-x, 2 threads: 37 ms at 128 Ki floats, 28 ms at
#: 256–512 Ki, 27 ms at 1 Mi; measured with /tmp scripts on the project machine).
TILE_FLOATS = 1 << 19


def tap_weights(weights: np.ndarray, out_cols: int) -> list[list[tuple[int, int, object]]]:
    """Per filter, the non-zero taps ``(m, n, weight)``.

    ``weight`` is a Python float when the tap is the same on every channel,
    else the per-channel weights tiled to a ``(W'·C,)`` row.
    """
    n_filters, kh, kw, _ = weights.shape
    taps: list[list[tuple[int, int, object]]] = []
    for f in range(n_filters):
        kernel_taps = []
        for m in range(kh):
            for n in range(kw):
                per_channel = weights[f, m, n]
                if not per_channel.any():
                    continue
                if (per_channel == per_channel[0]).all():
                    weight: object = float(per_channel[0])
                else:
                    weight = np.tile(per_channel, out_cols)
                kernel_taps.append((m, n, weight))
        taps.append(kernel_taps)
    return taps


def run(problem: ForwardProblem) -> np.ndarray:
    """Compute a :class:`ForwardProblem`; returns ``(H', W', N)``."""
    n_out = problem.n_out
    problem = sum_uniform_channels(problem)
    image, weights = problem.image, problem.weights
    n_filters, kh, kw, channels = weights.shape
    out_rows, out_cols = problem.out_shape
    (sr, sc), (dr, dc) = problem.stride, problem.dilation
    depthwise = problem.mode == "depthwise"
    shape = (out_rows, out_cols, n_filters, channels) if depthwise else (out_rows, out_cols, n_filters)
    out = _native.empty(shape, weights.dtype)
    taps = tap_weights(weights, out_cols)
    padder = Padder(image, problem.pads, problem.border, weights.dtype)
    row_width = out_cols * channels
    into_out = depthwise and n_filters == 1

    def work(tile: tuple[int, int]) -> None:
        i0, i1 = tile
        n_rows = i1 - i0
        band = padder.band(sr * i0, sr * (i1 - 1) + dr * (kh - 1) + 1, "direct-band")
        phases = ColumnPhases(band, sc, [dc * n for n in range(kw)], "direct")
        tmp = scratch("direct-tmp", (n_rows, row_width), weights.dtype)
        for f, kernel_taps in enumerate(taps):
            if into_out:
                acc = out[i0:i1].reshape(n_rows, row_width)
            else:
                acc = scratch("direct-acc", (n_rows, row_width), weights.dtype)
            terms = [(phases.window(dr * m, sr, n_rows, dc * n, out_cols), weight)
                     for m, n, weight in kernel_taps]
            if not accumulate(acc, terms, tmp, first=True):
                acc[...] = 0
            if depthwise:
                if not into_out:
                    out[i0:i1, :, f, :] = acc.reshape(n_rows, out_cols, channels)
            else:
                np.sum(acc.reshape(n_rows, out_cols, channels), axis=2, out=out[i0:i1, :, f])

    tile = max(1, TILE_FLOATS // max(1, row_width))
    parallel_map(work, row_tiles(out_rows, tile), blas=False)  # no BLAS call: leave its threads asleep
    return out.reshape(out_rows, out_cols, n_out)
