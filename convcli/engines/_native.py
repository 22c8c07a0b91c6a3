"""The compiled kernels (:mod:`convcli.engines._cnative`) behind checked numpy-level calls.

The extension is optional (``setup.py`` builds it when a C compiler is
there): when it does not import, :data:`AVAILABLE` is False, :data:`ERROR`
says why, the ``native`` strategies are not registered and every caller
keeps its numpy path. The functions below check dtypes, shapes and
contiguity, and raise ``TypeError``/``ValueError`` on misuse (programming
errors: the strategies only pass validated arrays). Each releases the GIL
while it computes, so the worker pool runs them on all cores.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

__all__ = [
    "AVAILABLE", "ERROR", "REDUCE_OPS", "band_stats", "block_cache", "channel_sum", "correlate",
    "correlate_image", "display_map", "empty", "png_filter", "reduce_maps", "separable_image", "status",
]

try:
    from convcli.engines import _cnative as _c
except ImportError as error:  # not built (no compiler at install time) or not loadable
    _c = None
    import importlib.machinery as _machinery
    import pathlib as _pathlib

    _built = any(_pathlib.Path(__file__).with_name("_cnative" + suffix).exists()
                 for suffix in _machinery.EXTENSION_SUFFIXES)
    ERROR: str | None = (str(error) if _built else
                         "the extension was not built (no C compiler when convcli was installed; "
                         "reinstall with gcc or clang available)")
else:
    ERROR = None

#: True when the compiled kernels are importable.
AVAILABLE = _c is not None

#: ``reduce_maps`` operations and their codes in the extension.
REDUCE_OPS = {"magnitude": 0, "max": 1, "min": 2, "sum": 3}

_FLOATS = (np.dtype(np.float32), np.dtype(np.float64))


def status() -> str:
    """One line for ``convcli --version``: whether the compiled kernels are active."""
    if AVAILABLE:
        return "compiled kernels: active (convcli.engines._cnative)"
    return f"compiled kernels: not available, numpy strategies only ({ERROR})"


#: Arrays of at least this many bytes come from the extension's block cache (:func:`empty`).
BLOCK_MIN_BYTES = 4 << 20


def empty(shape: Sequence[int], dtype: object) -> np.ndarray:
    """``np.empty(shape, dtype)`` whose memory, when large, is reused from call to call.

    Arrays of :data:`BLOCK_MIN_BYTES` or more live in a block of the
    extension: when the last array or view on it is gone, the block is kept
    in a small cache (at most 4 blocks, :func:`block_cache` bytes) and the
    next request of the same size up to 1.5× smaller reuses it, so its pages
    are not faulted in and cleared by the kernel again (measured on the
    project machine: 3–5 ms of a 4K RGB float32 output's 20 ms).
    Without the extension, or for smaller arrays, plain :func:`numpy.empty`.
    The array is C-contiguous, writable, aligned to 64 bytes, and does not
    own its data (``base`` is the block's buffer).
    """
    dtype = np.dtype(dtype)
    count = 1
    for n in shape:
        count *= int(n)
    nbytes = count * dtype.itemsize
    if _c is None or nbytes < BLOCK_MIN_BYTES:
        return np.empty(shape, dtype)
    return np.frombuffer(_c.block(nbytes), dtype, count).reshape(shape)


def block_cache(limit: int | None = None) -> tuple[int, int, int]:
    """(cached bytes, limit in bytes, cached blocks) of :func:`empty`'s cache.

    ``limit`` sets the most bytes the cache keeps (default 512 MiB; 0
    empties it and keeps nothing). Raises ``RuntimeError`` without the
    extension.
    """
    _require()
    return _c.block_cache(-1 if limit is None else int(limit))


def _require() -> None:
    if _c is None:
        raise RuntimeError(f"convcli's compiled kernels are not available: {ERROR}")


def _contiguous(array: np.ndarray, name: str, ndim: int, dtypes: Sequence[np.dtype] = _FLOATS) -> None:
    if not isinstance(array, np.ndarray) or array.ndim != ndim:
        raise ValueError(f"{name} must be a {ndim}-d array")
    if array.dtype not in dtypes:
        raise TypeError(f"{name} has dtype {array.dtype}, expected one of {', '.join(map(str, dtypes))}")
    if not array.flags.c_contiguous:
        raise ValueError(f"{name} must be C-contiguous")


def _check_maps(name: str, source: np.ndarray, weights: np.ndarray, out: np.ndarray, depthwise: bool,
                reduce: str | None) -> None:
    """``out``'s last axis against the correlation's: ``C`` with ``reduce`` (depthwise only), ``F·C``
    depthwise, ``F`` summed; ``source`` has the weights' ``C`` channels."""
    n_filters, channels = weights.shape[0], weights.shape[3]
    if reduce is not None and not depthwise:
        raise ValueError("a fused reduce needs depthwise maps")
    expected = channels if reduce is not None else n_filters * channels if depthwise else n_filters
    if source.shape[2] != channels or out.shape[2] != expected:
        raise ValueError(f"{name} {source.shape}, weights {weights.shape} and out {out.shape} do not match")


def correlate(
    band: np.ndarray, weights: np.ndarray, out: np.ndarray, stride: tuple[int, int],
    dilation: tuple[int, int], depthwise: bool, reduce: str | None = None,
) -> np.ndarray:
    """Strided, dilated correlation of one padded band, written into ``out``.

    ``depthwise``: ``out[r, j, f·C + c] = Σ_{m,n} band[s_y·r + d_y·m, s_x·j + d_x·n, c] · w[f, m, n, c]``;
    else ``out[r, j, f] = Σ_{m,n,c} band[…, c] · w[f, m, n, c]``.

    Parameters
    ----------
    band : ndarray, shape (P, Wp, C), float32 or float64, C-contiguous
        Padded rows; needs ``P ≥ s_y·(R − 1) + d_y·(kh − 1) + 1`` and
        ``Wp ≥ s_x·(W' − 1) + d_x·(kw − 1) + 1``.
    weights : ndarray, shape (F, kh, kw, C), the band's dtype, C-contiguous
    out : ndarray, shape (R, W', F·C, F or C), the band's dtype, C-contiguous
        ``(R, W', C)`` with ``reduce``.
    stride, dilation : (rows, cols)
    depthwise : bool
    reduce : {None, 'magnitude', 'max', 'min', 'sum'}
        Depthwise only: the F maps of each channel combined as
        :func:`reduce_maps` does (``sqrt(Σ_f x²)``, max / min with NaN
        propagating, ``Σ_f x``, f in order), fused: the F filters' values of
        a chunk of columns stay in L1 and only ``out[r, j, c]`` is stored.

    Returns
    -------
    ndarray
        ``out``.

    Raises
    ------
    TypeError, ValueError
        Wrong dtypes, shapes, or a band too small for ``out``.
    """
    _require()
    _contiguous(band, "band", 3)
    _contiguous(weights, "weights", 4, (band.dtype,))
    _contiguous(out, "out", 3, (band.dtype,))
    n_filters, kh, kw, channels = weights.shape
    rows, cols = out.shape[:2]
    _check_maps("band", band, weights, out, depthwise, reduce)
    _c.correlate(band, weights, out, band.shape[1], channels, n_filters, kh, kw, rows, cols,
                 stride[0], stride[1], dilation[0], dilation[1], bool(depthwise),
                 -1 if reduce is None else REDUCE_OPS[reduce])
    return out


def _index_map(values: np.ndarray, name: str) -> np.ndarray:
    if not isinstance(values, np.ndarray) or values.ndim != 1 or values.dtype.kind != "i" \
            or values.dtype.itemsize != 8:
        raise TypeError(f"{name} must be a 1-d array of 8-byte integers")
    return np.ascontiguousarray(values)


def correlate_image(
    image: np.ndarray, rows: np.ndarray, cols: np.ndarray, left: int, fill: float, weights: np.ndarray,
    out: np.ndarray, stride: tuple[int, int], dilation: tuple[int, int], depthwise: bool,
    reduce: str | None = None, *, check_rows: tuple[int, int] | None = None,
) -> bool:
    """:func:`correlate` of a padded band that is described by index maps instead of built.

    The band is ``pad[i, q, c] = image[rows[i], cols[q], c]``, or ``fill``
    where ``rows[i] < 0`` or ``cols[q] < 0`` (the maps of
    :func:`convcli.engines._bands.axis_map`, with ``cols[q] = q − left`` over
    the image's columns). Output columns whose window lies within the image
    columns read the image rows in place; only the border columns are
    gathered into a small padded strip, so no band is copied.

    Parameters
    ----------
    image : ndarray, shape (H, W, C), float32 or float64, C-contiguous
    rows : ndarray of int64, shape (P,)
        Source row of each band row (``-1``: fill); ``P ≥ s_y·(R − 1) + d_y·(kh − 1) + 1``.
    cols : ndarray of int64, shape (Wp,)
        Source column of each padded column; ``Wp ≥ s_x·(W' − 1) + d_x·(kw − 1) + 1``.
    left : int
        Left pad: ``cols[left + x] = x`` for ``0 ≤ x < W``.
    fill : float
        The constant border's value.
    weights, out, stride, dilation, depthwise, reduce
        As for :func:`correlate`.
    check_rows : (lo, hi), optional
        Test the image rows ``rows[lo:hi]`` for NaN and ±inf, each just
        before the first chunk of output rows that reads it (in cache: no
        extra pass over memory; see :mod:`convcli.engines._finite`); rows
        no output reads (a row stride past the kernel) are tested too.

    Returns
    -------
    bool
        False when ``check_rows`` found a NaN or ±inf (True without it).
        ``out`` is computed either way.

    Raises
    ------
    TypeError, ValueError
        Wrong dtypes, shapes, an index out of range, maps too short for
        ``out``, or ``check_rows`` outside ``rows``.
    """
    _require()
    _contiguous(image, "image", 3)
    _contiguous(weights, "weights", 4, (image.dtype,))
    _contiguous(out, "out", 3, (image.dtype,))
    n_filters, kh, kw, channels = weights.shape
    _check_maps("image", image, weights, out, depthwise, reduce)
    height, width, _ = image.shape
    lo, hi = (0, 0) if check_rows is None else check_rows
    return _c.correlate_image(image, _index_map(rows, "rows"), _index_map(cols, "cols"), int(left),
                              float(fill), weights, out, height, width, channels, n_filters, kh, kw,
                              stride[0], stride[1], dilation[0], dilation[1], bool(depthwise),
                              -1 if reduce is None else REDUCE_OPS[reduce], int(lo), int(hi))


def separable_image(
    image: np.ndarray, rows: np.ndarray, cols: np.ndarray, left: int, fill: float, u: np.ndarray,
    v: np.ndarray, out: np.ndarray, row_stride: int, dilation: tuple[int, int], *,
    check_rows: tuple[int, int] | None = None,
) -> bool:
    """Depthwise correlation with ``Σ_k u_k ⊗ v_k``, both 1-D passes fused row by row, into ``out``.

    ``out[r, j, c] = Σ_k Σ_n v[k, n, c] · Σ_m u[k, m, c] · pad[s_y·r + d_y·m, j + d_x·n, c]``
    (column stride 1), ``pad`` described by index maps as in
    :func:`correlate_image`. Each output row's vertical pass (one padded
    row) stays in cache for its horizontal pass.

    Parameters
    ----------
    image : ndarray, shape (H, W, C), float32 or float64, C-contiguous
    rows, cols, left, fill
        As for :func:`correlate_image`.
    u : ndarray, shape (K, kh, C), image's dtype, C-contiguous
    v : ndarray, shape (K, kw, C), image's dtype, C-contiguous
    out : ndarray, shape (R, W', C), image's dtype, C-contiguous
    row_stride : int
    dilation : (rows, cols)
    check_rows : (lo, hi), optional
        As for :func:`correlate_image`.

    Returns
    -------
    bool
        False when ``check_rows`` found a NaN or ±inf (True without it).

    Raises
    ------
    TypeError, ValueError
        Wrong dtypes, shapes, an index out of range, maps too short for
        ``out``, or ``check_rows`` outside ``rows``.
    """
    _require()
    _contiguous(image, "image", 3)
    _contiguous(u, "u", 3, (image.dtype,))
    _contiguous(v, "v", 3, (image.dtype,))
    _contiguous(out, "out", 3, (image.dtype,))
    height, width, channels = image.shape
    if u.shape[0] != v.shape[0] or {u.shape[2], v.shape[2], out.shape[2]} != {channels}:
        raise ValueError(f"image {image.shape}, u {u.shape}, v {v.shape} and out {out.shape} do not match")
    lo, hi = (0, 0) if check_rows is None else check_rows
    return _c.separable_image(image, _index_map(rows, "rows"), _index_map(cols, "cols"), int(left),
                              float(fill), u, v, out, height, width, channels, u.shape[0], u.shape[1],
                              v.shape[1], row_stride, dilation[0], dilation[1], int(lo), int(hi))


def channel_sum(image: np.ndarray, out: np.ndarray, weights: Sequence[float] | None = None) -> np.ndarray:
    """``out[i, j] = Σ_c image[i, j, c]`` (or ``Σ_{c<K} weights[c]·image[i, j, c]``), in out's dtype.

    Summed left to right in ``out``'s dtype (``(x₀ + x₁) + x₂``), the order
    numpy uses for a short axis, so an unweighted sum is bit-identical to
    ``np.sum(image, axis=2, dtype=out.dtype)``.

    Parameters
    ----------
    image : ndarray, shape (H, W, C), uint8, uint16, float32 or float64, C-contiguous
    out : ndarray, shape (H, W) or (H, W, 1), float32 or float64, C-contiguous
    weights : sequence of 1 … min(16, C) floats, optional
    """
    _require()
    _contiguous(image, "image", 3, (np.dtype(np.uint8), np.dtype(np.uint16), *_FLOATS))
    _contiguous(out, "out", out.ndim)
    if out.shape[:2] != image.shape[:2] or out.size != image.shape[0] * image.shape[1]:
        raise ValueError(f"out {out.shape} does not match image {image.shape}")
    rows, cols, channels = image.shape
    _c.channel_sum(image, out, rows * cols, channels, None if weights is None else list(weights))
    return out


def reduce_maps(stacked: np.ndarray, out: np.ndarray, reduce: str) -> np.ndarray:
    """Reduce ``(H, W, F, C_k)`` maps over F into ``out`` ``(H, W, C_k)``.

    ``magnitude``: ``sqrt(Σ_f x²)``; ``max`` / ``min`` (NaN propagates, as in
    numpy); ``sum``. float32 or float64, C-contiguous, same dtype.
    """
    _require()
    _contiguous(stacked, "maps", 4)
    _contiguous(out, "out", 3, (stacked.dtype,))
    rows, cols, n_filters, channels = stacked.shape
    if out.shape != (rows, cols, channels):
        raise ValueError(f"out {out.shape} does not match maps {stacked.shape}")
    _c.reduce_maps(stacked, out, rows * cols, n_filters, channels, REDUCE_OPS[reduce])
    return out


def png_filter(rows: np.ndarray, previous: np.ndarray, out: np.ndarray, bpp: int, paeth: bool) -> np.ndarray:
    """PNG-filter ``rows`` into ``out``: the bytes of :func:`convcli.png._filter_rows`, computed in one pass.

    Row ``i`` of ``out`` is its filter type followed by the filtered bytes of
    the candidate (Sub, Up and, with ``paeth``, Paeth, in that order) whose
    sum of ``|byte as int8|`` is smallest (the first on ties).

    Parameters
    ----------
    rows : ndarray, shape (n, B), uint8, C-contiguous
    previous : ndarray, shape (B,), uint8
        The row above ``rows[0]`` (zeros for the image's first row).
    out : ndarray, shape (n, B + 1), uint8, C-contiguous
    bpp : int
        Bytes per pixel (1 … 8), the distance of Sub's and Paeth's left byte.
    paeth : bool
    """
    _require()
    uint8 = (np.dtype(np.uint8),)
    _contiguous(rows, "rows", 2, uint8)
    _contiguous(previous, "previous", 1, uint8)
    _contiguous(out, "out", 2, uint8)
    n, row_bytes = rows.shape
    if previous.shape != (row_bytes,) or out.shape != (n, row_bytes + 1):
        raise ValueError(f"rows {rows.shape}, previous {previous.shape} and out {out.shape} do not match")
    _c.png_filter(rows, previous, out, n, row_bytes, bpp, bool(paeth))
    return out


def display_map(values: np.ndarray, out: np.ndarray, *, absolute: bool, shift: float, multiplier: float,
                max_value: int) -> np.ndarray:
    """Pixels ``round(clip(((|x| or x) + shift) · multiplier, 0, M))`` of ``values``, into ``out``.

    The steps of :func:`convcli.display.apply_mapping` in ``values``' dtype
    (``shift`` and ``multiplier`` rounded to it first, the add skipped when
    ``shift == 0``, the product when ``multiplier == 1``, everything 0 when
    ``multiplier == 0``), rounded half to even, NaN → 0, ±inf saturate:
    bit-identical to the numpy steps.

    Parameters
    ----------
    values : ndarray, float32 or float64, at most 4-d, any strides (native byte order)
    out : ndarray, uint8 or uint16 (``M`` must fit), the shape of ``values``, any strides, writable
    absolute : bool
        ``abs`` mode (``|x|``), else ``clip``.
    shift, multiplier : float
    max_value : int
        ``M`` (255 or 65535).

    Raises
    ------
    TypeError, ValueError
        Other dtypes, shapes that differ, ``M`` not fitting ``out``.
    """
    _require()
    if not isinstance(values, np.ndarray) or not isinstance(out, np.ndarray) or values.shape != out.shape:
        raise ValueError("values and out must be arrays of the same shape")
    if values.dtype not in _FLOATS or out.dtype not in (np.dtype(np.uint8), np.dtype(np.uint16)):
        raise TypeError(f"values {values.dtype} / out {out.dtype}: expected float32/float64 and uint8/uint16")
    _c.display_map(values, out, bool(absolute), float(shift), shift != 0, float(multiplier), multiplier != 1,
                   float(max_value))
    return out


def band_stats(values: np.ndarray, sample: np.ndarray, first: int, step: int) -> tuple[float, float, bool]:
    """One pass over ``values``: (min, max) of its finite values, whether it holds a NaN, and the sample.

    ``sample[:] = |values.ravel()[first::step]|`` with NaN as 0 (``sample``
    of ``values``' dtype and exactly that length). Returns ``(inf, -inf,
    has_nan)`` when no value is finite.

    Parameters
    ----------
    values : ndarray, float32 or float64, C-contiguous
    sample : ndarray, 1-d, values' dtype, C-contiguous, writable
    first, step : int
        ``first ≥ 0``, ``step ≥ 1``.

    Raises
    ------
    TypeError, ValueError
        Other dtypes, a non-contiguous array, a sample of the wrong length.
    """
    _require()
    _contiguous(values, "values", values.ndim if isinstance(values, np.ndarray) else 1)
    _contiguous(sample, "sample", 1, (values.dtype,))
    low, high, has_nan = _c.band_stats(values, sample, int(first), int(step))
    return low, high, has_nan
