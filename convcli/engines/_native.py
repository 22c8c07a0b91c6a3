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

__all__ = ["AVAILABLE", "ERROR", "REDUCE_OPS", "band_stats", "channel_sum", "correlate", "display_map",
           "reduce_maps", "status"]

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


def correlate(
    band: np.ndarray, weights: np.ndarray, out: np.ndarray, stride: tuple[int, int],
    dilation: tuple[int, int], depthwise: bool,
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
    out : ndarray, shape (R, W', F·C or F), the band's dtype, C-contiguous
    stride, dilation : (rows, cols)
    depthwise : bool

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
    rows, cols, n_out = out.shape
    if band.shape[2] != channels or n_out != (n_filters * channels if depthwise else n_filters):
        raise ValueError(f"band {band.shape}, weights {weights.shape} and out {out.shape} do not match")
    _c.correlate(band, weights, out, band.shape[1], channels, n_filters, kh, kw, rows, cols,
                 stride[0], stride[1], dilation[0], dilation[1], bool(depthwise))
    return out


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
