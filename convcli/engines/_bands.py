"""Shared machinery of the banded strategies: local padding, tiling, threads.

A banded strategy computes the output in tiles of whole output rows. Each
tile needs the padded rows ``s·i0 .. s·(i1 − 1) + d·(kh − 1)``; those rows are
built on their own (:func:`padded_rows`) from two index maps, so the image is
never padded as a whole. The index maps are ``numpy.pad`` applied to
``arange`` (``-1`` marks a constant fill), which makes every border mode,
including pads larger than the image, agree with :func:`convcli.borders.pad_image`
by construction: ``pad[i, j] = image[rows[i], cols[j]]``.

Tiles run on a small thread pool (numpy and BLAS release the GIL). OpenBLAS
with its own threads stalls on the skinny matrix products used here
(measured: 16–128 ms vs 0.4–3.8 ms for ``(61440×27)@(27×8)`` products),
while one BLAS thread per worker runs them at full speed; so the pool holds
OpenBLAS to one thread while it runs (:mod:`convcli.engines._blas`).
"""

from __future__ import annotations

import os
import threading
from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import TypeVar

import numpy as np

from convcli.borders import Border
from convcli.engines._blas import single_threaded_blas

__all__ = [
    "ColumnPhases",
    "Padder",
    "accumulate",
    "axis_map",
    "by_row_blocks",
    "copy_cells",
    "multiply_add",
    "n_workers",
    "padded_rows",
    "parallel_map",
    "release_scratch",
    "row_tiles",
    "scratch",
]

T = TypeVar("T")
R = TypeVar("R")

_POOL: ThreadPoolExecutor | None = None
_POOL_LOCK = threading.Lock()
_LOCAL = threading.local()
_ALL_BUFFERS: list[dict] = []  # every thread's scratch dict, for release_scratch


def n_workers() -> int:
    """Worker threads used by the strategies: ``CONVCLI_THREADS`` if set, else the cores (at most 8)."""
    threads = os.environ.get("CONVCLI_THREADS", "")
    if threads.isdigit() and int(threads) > 0:
        return int(threads)
    return max(1, min(8, os.cpu_count() or 1))


def _pool() -> ThreadPoolExecutor:
    global _POOL
    with _POOL_LOCK:
        if _POOL is None:
            _POOL = ThreadPoolExecutor(max_workers=n_workers(), thread_name_prefix="convcli")
        return _POOL


def parallel_map(work: Callable[[T], R], items: Iterable[T], *, blas: bool = True) -> list[R]:
    """``[work(item) for item in items]`` on the worker pool (always off the main thread).

    Calls made from a worker thread run inline, so nested use cannot deadlock.
    With ``blas`` (work that calls BLAS), every BLAS is held to one thread
    meanwhile (:func:`convcli.engines._blas.single_threaded_blas`); work that
    does not (compiled kernels, element-wise passes) skips that, and so
    never wakes BLAS threads nor loads threadpoolctl.
    """
    items = list(items)
    if threading.current_thread().name.startswith("convcli"):
        return [work(item) for item in items]
    if not blas:
        return list(_pool().map(work, items))
    with single_threaded_blas():
        return list(_pool().map(work, items))


def by_row_blocks(work: Callable[[tuple[int, int]], R], array: np.ndarray) -> list[R]:
    """``work((r0, r1))`` for row blocks covering ``array``: 8 blocks on the pool when it holds
    at least 1 Mi values, else one block inline (for an element-wise pass or a reduction)."""
    rows = array.shape[0] if array.ndim else 1
    if array.size < 1 << 20:
        return [work((0, rows))]
    return parallel_map(work, row_tiles(rows, max(1, -(-rows // 8))), blas=False)


def scratch(name: str, shape: Sequence[int], dtype: np.dtype) -> np.ndarray:
    """A per-thread reusable buffer of at least ``shape`` (contents undefined).

    Buffers are keyed by ``name`` and grow when needed; the returned array is
    a C-contiguous view with exactly ``shape``.
    """
    buffers = getattr(_LOCAL, "buffers", None)
    if buffers is None:
        buffers = _LOCAL.buffers = {}
        with _POOL_LOCK:
            _ALL_BUFFERS.append(buffers)
    size = int(np.prod(shape, dtype=np.int64))
    key = (name, np.dtype(dtype).str)
    buffer = buffers.get(key)
    if buffer is None or buffer.size < size:
        buffer = np.empty(max(size, 1), dtype=dtype)
        buffers[key] = buffer
    return buffer[:size].reshape(shape)


def release_scratch() -> None:
    """Drop every thread's scratch buffers (they are rebuilt on demand)."""
    with _POOL_LOCK:
        for buffers in _ALL_BUFFERS:
            buffers.clear()


def row_tiles(n_rows: int, tile: int) -> list[tuple[int, int]]:
    """Split ``range(n_rows)`` into ``[i0, i1)`` tiles of at most ``tile`` rows."""
    tile = max(1, tile)
    return [(start, min(start + tile, n_rows)) for start in range(0, n_rows, tile)]


def axis_map(size: int, before: int, after: int, border: Border) -> np.ndarray:
    """Source index of every padded position along one axis (``-1``: constant fill).

    ``numpy.pad`` applied to ``arange(size)``, so it follows ``numpy.pad``
    exactly, for pads of any size.
    """
    index = np.arange(size, dtype=np.intp)
    if border.numpy_mode == "constant":
        return np.pad(index, (before, after), mode="constant", constant_values=-1)
    return np.pad(index, (before, after), mode=border.numpy_mode)


def padded_rows(
    image: np.ndarray,
    rows: np.ndarray,
    cols: np.ndarray,
    left: int,
    border: Border,
    out: np.ndarray,
    span: tuple[int, int] | None = None,
) -> np.ndarray:
    """Fill ``out`` with the padded rows ``pad[rows_slice, :, :]`` of an image.

    Parameters
    ----------
    image : ndarray, shape (H, W, C)
    rows : ndarray of int, shape (P,)
        Source row of each output row (a slice of :func:`axis_map`), ``-1``
        for a constant row.
    cols : ndarray of int, shape (Wp,)
        The full column map; ``cols[left : left + count]`` is
        ``first .. first + count − 1``.
    left : int
        Left pad: where the image's columns start in ``out``.
    border : Border
        Only its kind (constant or not) and constant value are used.
    out : ndarray, shape (P, Wp', C) with Wp' >= Wp
        Destination; columns past ``Wp`` are set to zero.
    span : (first, count), optional
        The image columns copied (default: all). Only constant borders may
        leave image columns out (the crop of a transposed convolution).

    Returns
    -------
    ndarray
        ``out``.
    """
    first, width = (0, image.shape[1]) if span is None else span
    constant = border.numpy_mode == "constant"
    fill = border.value
    n_cols = cols.shape[0]
    count = rows.shape[0]
    start = 0
    while start < count:
        source = rows[start]
        stop = start + 1
        if source >= 0:
            while stop < count and rows[stop] == source + (stop - start):
                stop += 1
            copy_cells(
                out[start:stop, left : left + width],
                image[source : source + stop - start, first : first + width],
            )
        else:
            while stop < count and rows[stop] < 0:
                stop += 1
            out[start:stop, :n_cols] = fill
        start = stop
    right = left + width
    if constant:
        out[:, :left] = fill
        out[:, right:n_cols] = fill
    else:
        if left:
            out[:, :left] = out[:, left + cols[:left]]
        if n_cols > right:
            out[:, right:n_cols] = out[:, left + cols[right:]]
    if out.shape[1] > n_cols:
        out[:, n_cols:] = 0
    return out


def copy_cells(dst: np.ndarray, src: np.ndarray) -> None:
    """``dst[...] = src`` for arrays whose last axis is a short contiguous cell.

    numpy copies short inner axes (a pixel's C floats, an im2col run of
    ``taps·C`` floats) element by element; viewing each cell as one opaque
    ``void`` item copies it with one ``memcpy``, about 2× faster.
    """
    item = dst.itemsize
    if (
        dst.ndim
        and dst.shape == src.shape
        and dst.dtype == src.dtype
        and dst.strides[-1] == item
        and src.strides[-1] == item
    ):
        cell = np.dtype(f"V{dst.shape[-1] * item}")
        np.copyto(dst.view(cell), src.view(cell))
    else:
        np.copyto(dst, src)


class ColumnPhases:
    """Strided column windows of a band as 2-D views with a contiguous inner axis.

    For a column stride ``s > 1`` the band ``(P, W, C)`` is split once into
    ``s`` contiguous phase copies ``band[:, φ::s]``; the window of a tap at
    column offset ``o`` is then phase ``o % s`` from column ``o // s``. Each
    window is returned as ``(rows, out_cols·C)``.
    """

    def __init__(self, band: np.ndarray, stride: int, offsets: Iterable[int], name: str) -> None:
        self.stride = stride
        rows, width, channels = band.shape
        self.channels = channels
        if stride == 1:
            self.phases = {0: band.reshape(rows, width * channels)}
            return
        self.phases = {}
        for phase in sorted({offset % stride for offset in offsets}):
            count = len(range(phase, width, stride))
            copy = scratch(f"{name}-phase{phase}", (rows, count, channels), band.dtype)
            copy_cells(copy, band[:, phase::stride])
            self.phases[phase] = copy.reshape(rows, count * channels)

    def window(
        self, row_start: int, row_stride: int, n_rows: int, col_offset: int, n_cols: int
    ) -> np.ndarray:
        """Rows ``row_start + row_stride·r``, output columns ``s·j + col_offset``."""
        source = self.phases[col_offset % self.stride]
        first = (col_offset // self.stride) * self.channels
        stop = row_start + row_stride * (n_rows - 1) + 1
        return source[row_start:stop:row_stride, first : first + n_cols * self.channels]


def multiply_add(
    acc: np.ndarray, window: np.ndarray, weight: np.ndarray | float, tmp: np.ndarray, first: bool
) -> None:
    """``acc = window·weight`` (first) or ``acc += window·weight``, without temporaries.

    ``weight`` is a scalar or a row vector broadcast over the rows; ±1 skip the
    multiplication.
    """
    scalar = np.ndim(weight) == 0
    if first:
        if scalar and weight == 1:
            np.copyto(acc, window)
        elif scalar and weight == -1:
            np.negative(window, out=acc)
        else:
            np.multiply(window, weight, out=acc)
        return
    if scalar and weight == 1:
        np.add(acc, window, out=acc)
    elif scalar and weight == -1:
        np.subtract(acc, window, out=acc)
    else:
        np.multiply(window, weight, out=tmp)
        np.add(acc, tmp, out=acc)


def _unit_rank(term: tuple[np.ndarray, np.ndarray | float]) -> int:
    weight = term[1]
    if np.ndim(weight):
        return 3
    return 0 if weight == 1 else 1 if weight == -1 else 2


def accumulate(
    acc: np.ndarray, terms: Sequence[tuple[np.ndarray, np.ndarray | float]], tmp: np.ndarray,
    first: bool,
) -> bool:
    """``acc = Σ weight·window`` (``first``) or ``acc += Σ weight·window`` over ``terms``.

    Terms of weight ``+1`` run first, then ``−1``, then the rest: unit
    weights cost one pass over the band instead of two, and when ``first``
    the first two unit terms are combined in one pass (``a + b`` or
    ``a − b``), so a ``[1, 2, 1]`` column costs 3 passes and ``[−1, 0, 1]``
    one. Returns False (``acc`` untouched) when there are no terms.
    """
    ordered = sorted(terms, key=_unit_rank)
    if not ordered:
        return False
    if first and len(ordered) >= 2 and _unit_rank(ordered[0]) == 0 and _unit_rank(ordered[1]) <= 1:
        (plus, _), (other, weight) = ordered[:2]
        (np.add if weight == 1 else np.subtract)(plus, other, out=acc)
        ordered, first = ordered[2:], False
    for window, weight in ordered:
        multiply_add(acc, window, weight, tmp, first)
        first = False
    return True


class Padder:
    """Builds padded row bands of one problem's image on demand.

    Parameters
    ----------
    image : ndarray, shape (H, W, C)
        Float, or uint8/uint16 pixels: each band is converted to ``dtype``.
    pads : (top, bottom, left, right)
    border : Border
    dtype : dtype, optional
        The bands' dtype (default: the image's).
    """

    def __init__(self, image: np.ndarray, pads: Sequence[int], border: Border,
                 dtype: np.dtype | None = None) -> None:
        rows, cols, _ = image.shape
        top, bottom, left, right = pads
        self.image = image
        self.dtype = np.dtype(image.dtype if dtype is None else dtype)
        self.border = border
        self.left = left
        self.rows = axis_map(rows, top, bottom, border)
        self.cols = axis_map(cols, left, right, border)
        self.width = self.cols.shape[0]
        #: the compiled kernels may read the image rows in place (``rows`` and
        #: ``cols`` describe the band): the image already has the bands' dtype and
        #: is C-contiguous (:func:`convcli.engines._native.correlate_image`)
        self.in_place = image.dtype == self.dtype and image.flags.c_contiguous and image.size > 0

    def band(self, start: int, stop: int, name: str, width: int | None = None) -> np.ndarray:
        """Padded rows ``[start, stop)`` as a per-thread scratch ``(P, width, C)`` array.

        ``width`` (default: the padded width) may exceed the padded width; the
        extra columns are zeros.
        """
        width = self.width if width is None else width
        out = scratch(name, (stop - start, width, self.image.shape[2]), self.dtype)
        return padded_rows(self.image, self.rows[start:stop], self.cols, self.left, self.border, out)
