"""The cost model behind ``method='auto'``: estimated milliseconds per strategy.

Each estimate is a count of the work a strategy does times a coefficient
measured on the project machine (2 cores, float32, 1920×1080 RGB) with::

    python benchmarks/crossovers.py --repeat 5

(medians of interleaved runs; the machine was shared, so the coefficients
are rounded and the crossovers below are the robust part). Observed
crossovers, which the model reproduces:

* depthwise, one non-separable k×k kernel: ``direct`` up to k = 7
  (k=7: 166 ms vs fft 211), ``fft`` from k = 9 (k=9: fft 161, direct 262;
  k=15: fft 229, direct 920, gemm 2794).
* depthwise rank-1 (Gaussian, box, Sobel): ``separable`` at every size
  from k = 3 to 31 (k=15: 28 ms vs fft 73 vs direct 284; k=31: 50 vs 118).
* ``sum`` banks of 3×3 kernels over 3 channels with per-channel weights:
  ``gemm`` already at F = 1 (22 ms vs direct 41) and far ahead at F = 8
  (36 vs 273) and F = 32 (61 vs 863).
* ``sum`` banks 3→8 of k×k: ``gemm`` up to k = 7 (167 vs fft 188 ms),
  ``fft`` from k = 9–11 (k = 11: 135 vs 321 ms), once the FFT path
  transformed planar copies of the band.
* depthwise banks of F 3×3 kernels: ``direct`` for F = 1 (12 ms vs gemm 19),
  ``gemm`` from F = 2 (21 vs 25; F = 8: 100 vs 240).

The units are nanoseconds per pixel (both cores busy); the coefficients
come from a second, quieter run of the key cases (minimum of 7 runs).
"""

from __future__ import annotations

import numpy as np

from convcli.engines import ForwardProblem

__all__ = ["estimate_forward"]

#: direct: one fused multiply-add of one channel of one output pixel
#: (1080p depthwise 3×3 / 5×5 / 7×7: 12.7 / 32.2 / 60.3 ms → 0.20–0.23 ns)
DIRECT_TAP_NS = 0.22
#: one pass over a band: a tap of weight ±1 is one pass (add/subtract), any
#: other two (multiply, add), and the first two unit taps share one
#: (:func:`convcli.engines._bands.accumulate`); a pass is half a general tap.
#: Fixed parts per output value: the band copy and output write of direct,
#: the intermediate of each separable pass. (4K RGB Sobel-x, 2 threads:
#: direct, 7 passes, 25 ms; separable [1 2 1]⊗[−1 0 1], 4 passes, 20 ms.)
PASS_NS = DIRECT_TAP_NS / 2
DIRECT_FIXED_NS = 0.23
SEPARABLE_FIXED_NS = 0.18
#: direct with per-channel weights: weight rows instead of scalars, and for
#: ``sum`` the reduction over channels (1080p sum 3→1 3×3: 43 ms, not 12)
DIRECT_CHANNELS_NS = 3.0
#: gemm: copying one im2col entry, one multiply-add inside BLAS, writing one
#: output value (1080p depthwise 3×3 F=1/2/4: 17.6/21.3/24.7 ms; 5×5, 7×7
#: F=1: 78.5, 150 ms; sum 3→1 / 3→8: 13.4 / 19.7 ms)
GEMM_COPY_NS = 0.35
GEMM_MAC_NS = 0.015
GEMM_WRITE_NS = 0.3
#: separable: a short pass costs its band passes (PASS_NS) plus
#: SEPARABLE_FIXED_NS; a long one (Toeplitz GEMM) a fixed part plus a little
#: per tap (1080p Gaussian k = 15: 28 ms, k = 31: 50 ms, i.e. 4.5 and 8 ns per
#: pixel and channel for both passes)
SEPARABLE_GEMM_NS = (1.0, 0.1)
#: fft: one real 2-D FFT (forward or inverse) per input pixel and plane, and
#: one complex product per pixel and plane (1080p depthwise 3×3: 40 ms;
#: 4K 31×31: 160–220 ms; sum 3→8 3×3 / 7×7 / 11×11: 128 / 188 / 135 ms
#: against gemm's 23 / 167 / 321 ms)
FFT_PLANE_NS = 3.5
FFT_PRODUCT_NS = 1.5
#: fft: kernel spectra beyond this many bytes are not worth the memory
FFT_SPECTRA_BYTES = 1 << 29

#: native (compiled, :mod:`convcli.engines.native`), measured with
#: ``python benchmarks/crossovers.py --size 540x960 --repeat 3 --cpu --family depthwise`` on the
#: busy shared machine, after the kernels read the image in place (no band copy) and
#: native-separable fused its two passes. One filter on interleaved channels: a fixed
#: part per output value (the output's first write) plus a little per tap (depthwise k×k:
#: 3 / 6 / 20 CPU ms for k = 3 / 7 / 15 on 540×960 RGB, where ``direct`` took 10 / 40 / 168);
#: expressed in the units of the ``direct`` model above (its 3×3 estimate ↔ its 10 ms):
#: 0.5 + 0.017·taps ns per value. native-separable: two such passes per component
#: (Gaussian k = 15 / 31 / 51: 6 / 10 / 45 CPU ms; numpy separable 15 / 21 / 57).
NATIVE_FIXED_NS = 0.5
NATIVE_TAP_NS = 0.017
#: native, planar loop (several filters, or channels summed): the band's
#: planar copy per input value, one pass over a (tap, channel) source per
#: block of NATIVE_FILTER_BLOCK filters and output pixel, and the scattered
#: write of each depthwise output value (sum 3→F 3×3: 4.9 / 9.7 / 38.6 CPU ms
#: for F = 1 / 8 / 32; sum 3→8 k×k: 13 / 19 / 35 for k = 3 / 5 / 7;
#: depthwise F = 2 / 4 / 8: 9 / 12 / 32, gemm 17 / 18 / 28).
NATIVE_PLANAR_VALUE_NS = 0.15
NATIVE_PLANAR_SOURCE_NS = 0.13
#: The store term was re-measured on 1500×4000 RGB uint8 bands of 142 rows (the
#: streaming pipeline's unit of work): depthwise Sobel pair (F = 2) native 65 ms,
#: numpy separable 180 ms, direct 142 ms; Kirsch (F = 8) native 291, gemm 414 ms;
#: 0.8 made auto pick numpy separable there.
NATIVE_PLANAR_STORE_NS = 0.15
NATIVE_FILTER_BLOCK = 4


def _native_available() -> bool:
    from convcli.engines import FORWARD_ENGINES

    return "native" in FORWARD_ENGINES and "native-separable" in FORWARD_ENGINES


def passes(weights: np.ndarray) -> int:
    """Passes over the band for multiply-adds of these tap weights (one channel, any shape)."""
    taps = weights[weights != 0]
    units = int(np.count_nonzero(np.abs(taps) == 1))
    paired = 1 if np.any(taps == 1) and units >= 2 else 0
    return units + 2 * (taps.size - units) - paired


def _separable_pass_ns(vector: np.ndarray, long_from: int) -> float:
    taps = int(np.count_nonzero(vector))
    if taps >= long_from:
        fixed, per_tap = SEPARABLE_GEMM_NS
        return fixed + per_tap * taps
    return SEPARABLE_FIXED_NS + PASS_NS * passes(vector)


def _low_rank(weights: np.ndarray) -> bool:
    """Whether every kernel of ``weights`` (F, kh, kw, C) has rank < min(kh, kw) on every channel.

    The rank rule of :func:`convcli.engines.separable.factorize` (singular values
    above ``tolerance × the largest``), from one batched SVD: a full-rank bank
    skips the per-kernel factorisation the separable estimates need.
    """
    from convcli.engines.separable import rank_tolerance

    tolerance = rank_tolerance(weights.dtype)
    values = np.linalg.svd(np.moveaxis(weights, 3, 1).astype(np.float64), compute_uv=False)
    largest = values[..., :1]
    ranks = np.where(largest > 0, np.count_nonzero(values > tolerance * largest, axis=-1, keepdims=True), 0)
    return bool((ranks < min(weights.shape[1:3])).all())


def estimate_forward(problem: ForwardProblem, separable: bool = True) -> dict[str, float]:
    """Estimated milliseconds of each forward strategy that fits this problem.

    ``separable=False`` leaves out the separable strategies, whose estimate
    factorises every kernel (an SVD per kernel and channel: 0.2 s for a
    128-kernel, 64-channel bank).
    """
    from convcli.engines._simplify import channels_uniform

    weights = problem.weights
    n_filters, kh, kw, channels = weights.shape
    out_rows, out_cols = problem.out_shape
    pixels = out_rows * out_cols
    depthwise = problem.mode == "depthwise"
    uniform = channels_uniform(weights)
    # sum mode with one kernel for all channels runs on the channel sum
    work_channels = 1 if (not depthwise and uniform) else channels
    planes = n_filters * work_channels  # accumulators of direct / separable
    taps = int(np.count_nonzero(weights.any(axis=(0, 3))))
    n_out = n_filters * channels if depthwise else n_filters

    if uniform:
        direct_ns = sum(DIRECT_FIXED_NS + PASS_NS * passes(weights[f, :, :, 0]) for f in range(n_filters))
        estimates = {"direct": pixels * work_channels * direct_ns}
    else:
        estimates = {"direct": pixels * planes * (taps * DIRECT_TAP_NS + DIRECT_CHANNELS_NS)}

    depth = taps * work_channels
    estimates["gemm"] = pixels * (
        depth * GEMM_COPY_NS + depth * n_out * GEMM_MAC_NS + n_out * GEMM_WRITE_NS
    )

    native = _native_available()
    if native:
        if n_filters == 1 and (depthwise or work_channels == 1):
            estimates["native"] = pixels * work_channels * (NATIVE_FIXED_NS + NATIVE_TAP_NS * taps)
        else:
            blocks = -(-n_filters // NATIVE_FILTER_BLOCK) * (channels if depthwise else 1)
            sources = taps * (1 if depthwise else work_channels)
            estimates["native"] = pixels * (
                NATIVE_PLANAR_VALUE_NS * work_channels + NATIVE_PLANAR_SOURCE_NS * blocks * sources
                + (NATIVE_PLANAR_STORE_NS * n_out if depthwise else 0.0)
            )

    if separable and taps > 3 and min(kh, kw) > 1 and _low_rank(weights):
        from convcli.engines import separable as separable_engine

        factors = separable_engine.factorize(weights)
        rank = max((len(components) for components in factors), default=0)
        if native and rank < min(kh, kw):
            passes_ns = sum(
                2 * NATIVE_FIXED_NS
                + NATIVE_TAP_NS * (np.count_nonzero(u.any(axis=1)) + np.count_nonzero(v.any(axis=1)))
                for components in factors for u, v in components
            )
            estimates["native-separable"] = pixels * work_channels * passes_ns + (
                0.0 if depthwise or work_channels == 1 else pixels * n_filters * NATIVE_FIXED_NS
            )
        if rank < min(kh, kw):
            # the Toeplitz GEMM passes need one kernel for every channel
            never = kh + kw + 1
            vertical_from = separable_engine.VERTICAL_GEMM_TAPS if uniform else never
            horizontal_from = separable_engine.HORIZONTAL_GEMM_TAPS if uniform else never
            per_plane = sum(
                _separable_pass_ns(u[:, 0], vertical_from) + _separable_pass_ns(v[:, 0], horizontal_from)
                for components in factors for u, v in components
            )
            estimates["separable"] = pixels * work_channels * per_plane

    (sr, sc), (dr, dc) = problem.stride, problem.dilation
    keff_r = dr * (kh - 1) + 1
    in_rows = sr * (out_rows - 1) + keff_r
    in_cols = sc * (out_cols - 1) + dc * (kw - 1) + 1
    flat = depthwise and uniform and channels > 1
    forward = work_channels
    if depthwise:
        inverse = products = n_filters * channels
    else:
        inverse, products = n_filters, n_filters * work_channels
    tile_rows = max(256, 4 * keff_r)
    overlap = (tile_rows + keff_r - 1) / tile_rows
    spectra_bytes = n_filters * (1 if flat else channels) * in_cols * tile_rows * 8
    if spectra_bytes <= FFT_SPECTRA_BYTES:
        estimates["fft"] = (
            in_rows * in_cols * overlap
            * ((forward + inverse) * FFT_PLANE_NS + products * FFT_PRODUCT_NS)
        )
    return {name: ns / 1e6 for name, ns in estimates.items()}
