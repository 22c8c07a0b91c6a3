"""FFT strategy: correlation by ``scipy.fft`` in row tiles (overlap-save).

For a tile of output rows the padded band (``P`` rows, built locally) and
the dilated kernel are transformed at a fast size ``N ≥ P``
(``scipy.fft.next_fast_len``); the circular correlation::

    y[i, j] = irfft2(rfft2(band) · conj(rfft2(kernel)))[i, j]
            = Σ_{m,n} band[i + m, j + n] · k[m, n]

is exact (no wrap-around) for ``i ≤ P − k_eff``, which covers the tile's
rows. Tiles overlap by ``k_eff − 1`` input rows and write disjoint output
rows, so memory stays a few bands whatever the image size. With a stride
the stride-1 rows of the tile are computed and subsampled. The cost is
nearly flat in the kernel size, so it wins for large kernels (see
:func:`convcli.engines.choose_forward`).

``scipy.fft`` is imported here only, when the strategy runs. float32 input
is transformed in single precision (like OpenCV's DFT path): the error is
about ``1e-6·Σ|x|·|k|``, well inside the tolerance of the reference tests
for ordinary images, but not bit-exact for kernels that cancel exactly.
"""

from __future__ import annotations

import numpy as np

from convcli.engines import ForwardProblem, _native
from convcli.engines._bands import Padder, n_workers, parallel_map, row_tiles, scratch
from convcli.engines._simplify import channels_uniform, sum_uniform_channels

__all__ = ["run"]

#: Largest number of stride-1 rows of a tile (a multiple of the kernel
#: keeps the overlap cheap) ...
TILE_ROWS = 256
#: ... and the share of ``input + output`` bytes that all tiles in flight may
#: use (a tile holds about 3 band-sized planes when flat, 5·C otherwise);
#: at least ``2·k_eff`` rows are used whatever the budget.
MEMORY_SHARE = 0.25


def dilated(weights: np.ndarray, dilation: tuple[int, int]) -> np.ndarray:
    """``(F, kh, kw, C)`` → ``(F, k_eff_y, k_eff_x, C)`` with zeros between taps."""
    n_filters, kh, kw, channels = weights.shape
    dr, dc = dilation
    if (dr, dc) == (1, 1):
        return weights
    out = np.zeros((n_filters, dr * (kh - 1) + 1, dc * (kw - 1) + 1, channels), weights.dtype)
    out[:, ::dr, ::dc, :] = weights
    return out


def run(problem: ForwardProblem) -> np.ndarray:
    """Compute a :class:`ForwardProblem`; returns ``(H', W', N)``."""
    from scipy import fft

    n_out = problem.n_out
    problem = sum_uniform_channels(problem)
    image = problem.image
    kernel = dilated(problem.weights, problem.dilation)
    n_filters, keff_r, keff_c, channels = kernel.shape
    out_rows, out_cols = problem.out_shape
    sr, sc = problem.stride
    depthwise = problem.mode == "depthwise"
    padder = Padder(image, problem.pads, problem.border)
    # One kernel for every channel: correlate the interleaved rows (P, Wp·C)
    # with the kernel dilated by C along columns; one contiguous 2-D FFT
    # instead of C strided ones (measured 2× faster on W6).
    flat = depthwise and channels > 1 and channels_uniform(kernel)
    if flat:
        kernel = np.zeros((n_filters, keff_r, channels * (keff_c - 1) + 1, 1), kernel.dtype)
        kernel[:, :, ::channels, 0] = dilated(problem.weights, problem.dilation)[..., 0]
    unit = channels if flat else 1
    # stride-1 rows per output tile, then the FFT height: a fast size above them
    stride1_rows = sr * (out_rows - 1) + 1
    n_out_bytes = out_rows * out_cols * n_out * image.itemsize
    budget = MEMORY_SHARE * (image.nbytes + n_out_bytes) / n_workers()
    row_bytes = padder.width * channels * image.itemsize * (3 if flat else 5)
    rows = int(min(TILE_ROWS, max(2 * keff_r, budget // max(1, row_bytes))))
    # as many tiles as it takes, rounded up to a multiple of the workers, then evened out:
    # 13 tiles of 178 rows keep one of 2 workers busy for a 7th tile while the other waits
    n_tiles = -(-stride1_rows // rows)
    n_tiles = -(-n_tiles // n_workers()) * n_workers()
    rows = max(1, -(-stride1_rows // n_tiles))
    height = fft.next_fast_len(min(stride1_rows, rows) + keff_r - 1, real=True)
    tile = max(1, (height - keff_r) // sr + 1)
    width = fft.next_fast_len(padder.width * unit, real=True)
    # planar kernel spectra (F, planes, h, w'), conjugated: a product is a correlation
    planar_kernel = np.ascontiguousarray(kernel.transpose(0, 3, 1, 2))
    spectra = np.conj(fft.rfft2(planar_kernel, s=(height, width), axes=(2, 3)))
    shape = (out_rows, out_cols, n_filters, channels) if depthwise else (out_rows, out_cols, n_filters)
    out = _native.empty(shape, image.dtype)
    last_col = sc * (out_cols - 1) + 1

    def work(rows: tuple[int, int]) -> None:
        i0, i1 = rows
        band_rows = sr * (i1 - 1) + keff_r - sr * i0
        band = padder.band(sr * i0, sr * i0 + band_rows, "fft-band")
        if flat:
            planar = band.reshape(1, band_rows, -1)
        else:
            # planes transform about 2× faster than the channel-strided HWC band
            planar = scratch("fft-planar", (channels, band_rows, band.shape[1]), band.dtype)
            np.copyto(planar, band.transpose(2, 0, 1))
        spectrum = fft.rfft2(planar, s=(height, width), axes=(1, 2), workers=1)
        kept_rows = slice(0, sr * (i1 - i0 - 1) + 1, sr)
        for f in range(n_filters):
            if depthwise:
                product = spectrum if n_filters == 1 else spectrum * spectra[f]
                if n_filters == 1:
                    product *= spectra[f]
            else:
                product = spectrum[0] * spectra[f, 0]
                for c in range(1, channels):
                    product += spectrum[c] * spectra[f, c]
            result = fft.irfft2(
                product, s=(height, width), axes=(-2, -1), workers=1, overwrite_x=True
            )
            if flat:
                pixels = result[0, kept_rows, : last_col * channels]
                out[i0:i1, :, f, :] = pixels.reshape(-1, last_col, channels)[:, ::sc]
            elif depthwise:
                out[i0:i1, :, f, :] = result[:, kept_rows, :last_col:sc].transpose(1, 2, 0)
            else:
                out[i0:i1, :, f] = result[kept_rows, :last_col:sc]

    parallel_map(work, row_tiles(out_rows, tile), blas=False)  # no BLAS call: leave its threads asleep
    return out.reshape(out_rows, out_cols, n_out)
