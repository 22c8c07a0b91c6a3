"""Sources: the native pixels of an input, read a band of rows at a time.

A :class:`Source` describes an input image as it is *seen* (orientation
applied) and hands out its rows: ``read_rows(start, stop)`` returns the
``(stop − start, W, C)`` pixels of rows ``start .. stop − 1`` in the image's
own dtype. Only the formats that store rows by region are read by region;
the others are decoded once.

=================  ================  ===============================================
format             class             what ``read_rows`` reads
=================  ================  ===============================================
TIFF, BigTIFF,     :class:`TiffSource`   only the strips/tiles the rows touch (through
OME-TIFF                             tifffile + imagecodecs), with a small LRU cache
                                     of decoded segments; whole page when the
                                     Orientation tag is not 1
``.npy``           :class:`NpySource`    ``seek`` + ``readinto`` of the rows' bytes
                                     (C order; Fortran order is read whole once)
zarr directory     :class:`ZarrSource`   the chunks the rows touch (zarr-python)
PNG, JPEG, WebP,   :class:`PillowSource` decoded once by :func:`convcli.imageio.read_image`;
GIF, BMP, exotic                     rows are views of those pixels
TIFF, stdin
in-memory array    :class:`ArraySource`  views of the array
=================  ================  ===============================================

Formats are told apart by their magic bytes (TIFF ``II*\\0``/``MM\\0*`` and the
BigTIFF ``II+\\0``/``MM\\0+``, npy ``\\x93NUMPY``), not by their names; a
directory is a zarr array when it holds a ``zarr.json`` (format 3) or
``.zarray`` (format 2) describing an array.

Dtypes and depths follow :class:`convcli.imageio.LoadedImage`: 8/16-bit
integer images give uint8/uint16 (``bit_depth`` 8/16); float32, float64 and
int32 TIFFs give those dtypes (``bit_depth`` 32); ``.npy`` and zarr arrays
give float32 (float64 stays float64), exactly as ``read_image`` reads ``.npy``
today, with channels ``c0, c1, …`` and ``bit_depth`` 8 or 16 when they hold
uint8 / uint16 values (an 8/16-bit image stored as an array: its output is
8/16-bit by default, as a TIFF's would be), 32 otherwise.

Sources are picklable and open their file lazily: construction reads the
header (and closes it), the first ``read_rows`` (re)opens the file, and
``__getstate__`` drops open handles and caches, so a worker process or a Dask
worker can receive one.

Every fault a user can cause is an :class:`~convcli.errors.ImageError` with one
line naming the file and, for faults found while reading rows, the strip, tile
or chunk and its rows: ``"a.tif: cannot decode strip 12 (rows 384-415): …"``.
"""

from __future__ import annotations

import io
import itertools
import json
import os
import threading
from collections import OrderedDict
from pathlib import Path
from typing import Any, BinaryIO

import numpy as np

from convcli import imageio
from convcli.errors import ImageError, OptionError

__all__ = [
    "ArraySource",
    "NpySource",
    "PillowSource",
    "Source",
    "TiffSource",
    "ZarrSource",
    "is_tiff",
    "is_zarr_array",
    "open_source",
    "read_shape",
]

_STDIN = "-"
_NPY_MAGIC = b"\x93NUMPY"
_TIFF_MAGICS = (b"II*\x00", b"MM\x00*", b"II+\x00", b"MM\x00+")
_ZARR_MISSING = "reading .zarr needs the zarr extra: pip install 'convcli[zarr]'"
_GRAY_NAMES = {1: ("L",), 2: ("L", "A")}
_COLOUR_NAMES = {3: ("R", "G", "B"), 4: ("R", "G", "B", "A")}


def _numbered(channels: int) -> tuple[str, ...]:
    return tuple(f"c{index}" for index in range(channels))


def _array_bit_depth(stored: np.dtype) -> int:
    """``bit_depth`` of an ``.npy`` / zarr array: 8 (uint8), 16 (uint16), else 32."""
    return 8 if stored == np.uint8 else 16 if stored == np.uint16 else 32


def _float_dtype(dtype: np.dtype) -> np.dtype:
    """The dtype ``read_image`` gives a ``.npy`` of ``dtype``: native float64 stays, all else
    (big-endian float64 included, as ``read_image`` does) becomes float32."""
    return np.dtype(np.float64) if dtype == np.float64 else np.dtype(np.float32)


def _native(array: np.ndarray) -> np.ndarray:
    """``array`` in native byte order (Pillow gives ``>u2`` for mode ``I;16B``)."""
    return array if array.dtype.isnative else array.astype(array.dtype.newbyteorder("="))


def _stem(name: str) -> str:
    return "stdin" if name == _STDIN else Path(name.rstrip("/" + os.sep) or name).stem


def _rows_text(first: int, last: int) -> str:
    return f"row {first}" if first == last else f"rows {first}-{last}"


def _columns_text(first: int, last: int) -> str:
    return f"column {first}" if first == last else f"columns {first}-{last}"


# ---------------------------------------------------------------------------
# the base class


class Source:
    """An input image whose rows are read on demand.

    Attributes
    ----------
    name : str
        The path as given, ``"-"`` for standard input, or a label for an array.
    stem : str
        File stem for output names (``"stdin"`` for ``"-"``).
    shape : tuple of int
        ``(H, W, C)`` of the image as seen (orientation applied), channels last.
    dtype : numpy.dtype
        Dtype of :meth:`read_rows` results (native byte order).
    bit_depth : int
        8 or 16 for integer images, 32 for float, int32 and array inputs.
    mode : str
        As :attr:`convcli.imageio.LoadedImage.mode`: ``"L"``, ``"RGB"``,
        ``"RGB;16"``, ``"I;16"``, ``"F"``, ``"npy"``, ``"zarr"``, ``"tiff"``, …
    channel_names : tuple of str
        ``("L",)``, ``("L", "A")``, ``("R", "G", "B")``, ``("R", "G", "B", "A")``
        or ``("c0", "c1", …)``.
    metadata : dict
        What writers may carry over: ``"icc_profile"`` (bytes), ``"exif"``
        (bytes, as stored: its orientation tag has already been applied to
        the pixels), ``"dpi"`` (``(x, y)`` floats), ``"text"`` (str → str).
        Empty when there is none.
    """

    name: str
    stem: str
    shape: tuple[int, int, int]
    dtype: np.dtype
    bit_depth: int
    mode: str
    channel_names: tuple[str, ...]
    metadata: dict[str, Any]

    def read_rows(self, start: int, stop: int) -> np.ndarray:
        """Pixels of rows ``start .. stop − 1``.

        Parameters
        ----------
        start, stop : int
            ``0 <= start < stop <= H``.

        Returns
        -------
        ndarray, (stop − start, W, C), :attr:`dtype`
            Possibly a read-only view; callers must not write to it.

        Raises
        ------
        ImageError
            The file cannot be read or decoded there (naming the file and
            the strip, tile or chunk with its rows).
        ValueError
            ``start``/``stop`` out of range (a caller bug, not a user error).
        """
        raise NotImplementedError

    def close(self) -> None:
        """Release open files and caches; a later :meth:`read_rows` reopens."""

    def __enter__(self) -> Source:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def __repr__(self) -> str:
        height, width, channels = self.shape
        return (f"{type(self).__name__}({self.name!r}, {height}×{width}×{channels}, "
                f"{self.dtype}, mode={self.mode!r})")

    def _check_rows(self, start: int, stop: int) -> None:
        if not 0 <= start < stop <= self.shape[0]:
            raise ValueError(f"{self.name}: rows {start}:{stop} outside 0:{self.shape[0]} (or empty)")


# ---------------------------------------------------------------------------
# in-memory pixels


class ArraySource(Source):
    """Rows of an ``(H, W, C)`` array held in memory; ``read_rows`` gives read-only views."""

    def __init__(self, pixels: np.ndarray, *, name: str, stem: str | None = None, mode: str,
                 bit_depth: int, channel_names: tuple[str, ...],
                 metadata: dict[str, Any] | None = None) -> None:
        if pixels.ndim != 3:
            raise ValueError(f"{name}: pixels must be (H, W, C), got shape {pixels.shape}")
        pixels = _native(pixels)
        self._pixels: np.ndarray | None = pixels
        self.name = name
        self.stem = stem if stem is not None else _stem(name)
        self.shape = tuple(int(n) for n in pixels.shape)  # type: ignore[assignment]
        self.dtype = pixels.dtype
        self.mode = mode
        self.bit_depth = bit_depth
        self.channel_names = tuple(channel_names)
        self.metadata = dict(metadata or {})

    @classmethod
    def from_array(cls, array: np.ndarray, name: str = "array") -> ArraySource:
        """Wrap an in-memory ``(H, W)`` or ``(H, W, C)`` array (library use, tests).

        uint8/uint16 arrays count as 8/16-bit images with 1–4 channels named
        as the image modes L, LA, RGB, RGBA (mode ``"L"``, ``"RGB;16"``, …);
        every other dtype (bool, integers, floats) is taken as ``read_image``
        takes an ``.npy``: float32 (float64 stays), ``bit_depth`` 32, mode
        ``"array"``, channels ``c0, c1, …``.

        Raises
        ------
        ImageError
            Not 2-D/3-D, an empty axis, or a dtype that is not bool, integer or float.
        """
        array = np.asarray(array)
        if array.dtype.kind in "biuf":
            array = _native(array)
        if array.ndim == 2:
            array = array[:, :, np.newaxis]
        if array.ndim != 3 or 0 in array.shape:
            raise ImageError(f"{name}: array must be (H, W) or (H, W, C) with no empty axis, "
                             f"got {array.shape}")
        if array.dtype.kind not in "biuf":
            raise ImageError(f"{name}: array dtype {array.dtype} is not supported; "
                             "use bool, integer or float")
        channels = array.shape[2]
        if array.dtype in (np.uint8, np.uint16) and channels <= 4:
            names = _GRAY_NAMES.get(channels) or _COLOUR_NAMES[channels]
            mode = "".join(names)
            depth = 8 * array.dtype.itemsize
            if depth == 16:
                mode = "I;16" if mode == "L" else f"{mode};16"
            return cls(np.ascontiguousarray(array), name=name, mode=mode, bit_depth=depth,
                       channel_names=names)
        pixels = np.ascontiguousarray(array, dtype=_float_dtype(array.dtype))
        return cls(pixels, name=name, mode="array", bit_depth=32, channel_names=_numbered(channels))

    def _load(self) -> np.ndarray:
        assert self._pixels is not None
        return self._pixels

    def read_rows(self, start: int, stop: int) -> np.ndarray:
        self._check_rows(start, stop)
        view = self._load()[start:stop]
        view.flags.writeable = False
        return view


class PillowSource(ArraySource):
    """An image decoded whole by :func:`convcli.imageio.read_image` (PNG, JPEG, WebP,
    GIF, BMP, TIFFs that tifffile cannot region-read, and standard input).

    The pixels are the ``LoadedImage.pixels`` (native uint8/uint16/int32/float32,
    EXIF orientation applied). Pickling a source read from a real file drops
    the pixels; the receiver decodes the file again on its first
    :meth:`read_rows` (and raises :class:`ImageError` if it changed size).
    """

    def __init__(self, loaded: imageio.LoadedImage, *, metadata: dict[str, Any] | None = None) -> None:
        super().__init__(loaded.pixels, name=loaded.source, stem=loaded.stem, mode=loaded.mode,
                         bit_depth=loaded.bit_depth, channel_names=loaded.channel_names,
                         metadata=dict(loaded.metadata) if metadata is None else metadata)
        self._from_file = loaded.source != _STDIN

    def _load(self) -> np.ndarray:
        if self._pixels is None:
            pixels = _native(imageio.read_image(self.name, max_pixels=None).pixels)
            if pixels.shape != self.shape or pixels.dtype != self.dtype:
                raise ImageError(f"{self.name}: changed since it was opened "
                                 f"(now {pixels.shape} {pixels.dtype})")
            self._pixels = pixels
        return self._pixels

    def close(self) -> None:
        if self._from_file:
            self._pixels = None

    def __getstate__(self) -> dict[str, Any]:
        state = self.__dict__.copy()
        if self._from_file:
            state["_pixels"] = None
        return state


# ---------------------------------------------------------------------------
# .npy


class NpySource(Source):
    """Rows of a C-order ``.npy`` file, read by ``seek`` + ``readinto`` (never a memory map).

    Row ``r`` starts at byte ``offset + r·W·C·itemsize``. The result is
    float32 (float64 stays float64), as :func:`convcli.imageio.read_image`
    reads ``.npy``; mode ``"npy"``, bit depth 32, channels ``c0, c1, …``. A
    Fortran-order array is read whole on the first :meth:`read_rows` and
    kept (its rows are not contiguous in the file).
    """

    def __init__(self, path: str, *, max_pixels: int | None = imageio.DEFAULT_MAX_PIXELS) -> None:
        self.name = path
        self.stem = _stem(path)
        name, handle = imageio._open_source(path)
        with handle:
            stored_shape, stored = imageio._npy_header(name, handle)  # validates, same messages
            header_end = handle.tell()
            handle.seek(0)
            fmt = np.lib.format
            version = fmt.read_magic(handle)
            read_header = fmt.read_array_header_1_0 if version == (1, 0) else fmt.read_array_header_2_0
            _, fortran, _ = read_header(handle)
            size = os.fstat(handle.fileno()).st_size
        imageio._check_pixels(name, stored_shape[0], stored_shape[1], max_pixels)
        height, width = stored_shape[:2]
        channels = stored_shape[2] if len(stored_shape) == 3 else 1
        self._offset = header_end
        self._stored = stored
        self._fortran = bool(fortran)
        self._row_items = width * channels
        row_bytes = self._row_items * stored.itemsize
        needed = header_end + height * row_bytes
        if size < needed:
            first_short = (size - header_end) // row_bytes if row_bytes else 0
            raise ImageError(f"{name}: truncated .npy: the header says {stored_shape} {stored} "
                             f"({needed} bytes) but the file has {size}; row {first_short} of "
                             f"{height} is cut short")
        self.shape = (height, width, channels)
        self.dtype = _float_dtype(stored)
        self.bit_depth = _array_bit_depth(stored)
        self.mode = "npy"
        self.channel_names = _numbered(channels)
        self.metadata = {}
        self._handle: BinaryIO | None = None
        self._whole: np.ndarray | None = None
        self._lock = threading.Lock()

    def __getstate__(self) -> dict[str, Any]:
        state = self.__dict__.copy()
        state.update(_handle=None, _whole=None, _lock=None)
        return state

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__dict__.update(state)
        self._lock = threading.Lock()

    def _file(self) -> BinaryIO:
        if self._handle is None:
            try:
                self._handle = open(self.name, "rb")  # noqa: SIM115 - closed in close()
            except OSError as error:
                raise ImageError(f"{self.name}: cannot open ({error.strerror or error})") from None
        return self._handle

    def read_rows(self, start: int, stop: int) -> np.ndarray:
        self._check_rows(start, stop)
        height, width, channels = self.shape
        with self._lock:
            if self._fortran:
                return self._read_fortran()[start:stop]
            raw = np.empty((stop - start) * self._row_items, dtype=self._stored)
            handle = self._file()
            try:
                handle.seek(self._offset + start * self._row_items * self._stored.itemsize)
                got = handle.readinto(memoryview(raw).cast("B"))
            except OSError as error:
                raise ImageError(f"{self.name}: cannot read {_rows_text(start, stop - 1)} "
                                 f"({error.strerror or error})") from None
        if got != raw.nbytes:
            row = start + got // max(1, self._row_items * self._stored.itemsize)
            raise ImageError(f"{self.name}: truncated .npy: row {row} of {height} is cut short "
                             "(the file shrank after it was opened)")
        rows = raw.reshape(stop - start, width, channels)
        return rows if rows.dtype == self.dtype else rows.astype(self.dtype)

    def _read_fortran(self) -> np.ndarray:
        if self._whole is None:
            array = imageio._load_npy(self.name, self._file())
            self._whole = np.ascontiguousarray(array, dtype=self.dtype)
            self._whole.flags.writeable = False
        return self._whole

    def close(self) -> None:
        if self._handle is not None:
            self._handle.close()
        self._handle = None
        self._whole = None


# ---------------------------------------------------------------------------
# zarr


def _zarr_kind(path: str) -> str | None:
    """``"array"``, ``"group"`` or None for a directory that is not a zarr node."""
    for meta in ("zarr.json", ".zarray", ".zgroup"):
        file = os.path.join(path, meta)
        if not os.path.isfile(file):
            continue
        if meta == ".zarray":
            return "array"
        if meta == ".zgroup":
            return "group"
        try:
            with open(file, encoding="utf-8") as handle:
                node = json.load(handle)
        except (OSError, ValueError) as error:
            raise ImageError(f"{path}: unreadable zarr.json ({error})") from None
        return "array" if isinstance(node, dict) and node.get("node_type") == "array" else "group"
    return None


def is_zarr_array(path: str | os.PathLike) -> bool:
    """True for a directory holding one zarr array (format 3 ``zarr.json`` or format 2 ``.zarray``).

    An unreadable ``zarr.json`` counts as an array, so :func:`open_source` reports it.
    """
    name = os.fspath(path)
    if not os.path.isdir(name):
        return False
    try:
        return _zarr_kind(name) == "array"
    except ImageError:
        return True


def _import_zarr() -> Any:
    try:
        import zarr
    except ImportError:
        raise ImageError(_ZARR_MISSING) from None
    return zarr


ZARR_KEPT_BYTES = 256 * 2**20
"""A zarr source keeps its last decoded chunk row (stored dtype) when it is at most this many bytes."""
_ZARR_DECODE_BYTES = 16 * 2**20  # a kept chunk row is decoded this many bytes of chunks at a time


class ZarrSource(Source):
    """Rows of a zarr array ``(H, W)`` or ``(H, W, C)`` stored as a directory (format 3 or 2).

    Reads go through ``zarr.open_array(path, mode="r")`` one chunk row at a
    time, so only the chunks the rows touch are decoded; the last chunk row
    decoded is kept (in the stored dtype, up to :data:`ZARR_KEPT_BYTES`), so
    bands shorter than a chunk decode each chunk once. A chunk that was
    never written reads as the array's fill value. A chunk file that exists
    but cannot be decoded is an :class:`ImageError` naming its store key
    (``"in.zarr: cannot decode chunk c/3/0 (rows 6144-8191, columns
    0-2047): …"``). Values come back as
    float32 (float64 stays), mode ``"zarr"``, bit depth 32, channels
    ``c0, c1, …``.
    """

    def __init__(self, path: str, *, max_pixels: int | None = imageio.DEFAULT_MAX_PIXELS) -> None:
        self.name = path
        self.stem = _stem(path)
        array = self._open()
        shape, stored = tuple(array.shape), np.dtype(array.dtype)
        if stored.kind not in "biuf":
            raise ImageError(f"{path}: zarr dtype {stored} is not supported; use bool, integer or float")
        if len(shape) not in (2, 3) or 0 in shape:
            raise ImageError(f"{path}: zarr array must be (H, W) or (H, W, C) with no empty axis, "
                             f"got {shape}")
        imageio._check_pixels(path, shape[0], shape[1], max_pixels)
        channels = shape[2] if len(shape) == 3 else 1
        self.shape = (shape[0], shape[1], channels)
        self.chunk_rows = int(array.chunks[0])
        self._row_bytes = shape[1] * channels * stored.itemsize
        self._kept: tuple[int, np.ndarray] | None = None
        self.dtype = _float_dtype(stored)
        self.bit_depth = _array_bit_depth(stored)
        self.mode = "zarr"
        self.channel_names = _numbered(channels)
        self.metadata = {}
        self._array: Any = None  # validation does not keep the array open

    def _open(self) -> Any:
        zarr = _import_zarr()
        try:
            return zarr.open_array(self.name, mode="r")
        except Exception as error:
            raise ImageError(f"{self.name}: cannot open zarr array ({error})") from None

    def __getstate__(self) -> dict[str, Any]:
        state = self.__dict__.copy()
        state["_array"] = None
        state["_kept"] = None
        return state

    def read_rows(self, start: int, stop: int) -> np.ndarray:
        self._check_rows(start, stop)
        if self._array is None:
            self._array = self._open()
        out = np.empty((stop - start, *self.shape[1:]), dtype=self.dtype)
        step = self.chunk_rows
        for chunk_start in range(start // step * step, stop, step):
            first, last = max(start, chunk_start), min(stop, chunk_start + step)
            kept = self._kept_row(chunk_start)
            if kept is not None:
                block = kept[first - chunk_start:last - chunk_start]
            else:
                block = self._decode(first, last)
            out[first - start:last - start] = block.reshape(last - first, *self.shape[1:])
            kept = block = None  # the next chunk row is decoded without this one alive
        return out

    def _decode(self, first: int, last: int, columns: slice = slice(None)) -> np.ndarray:
        try:
            return np.asarray(self._array[first:last, columns])
        except Exception as error:
            raise self._chunk_error(first, last, error) from None

    def _kept_row(self, chunk_start: int) -> np.ndarray | None:
        """The stored values of the chunk row starting at ``chunk_start``, decoded once and kept until
        another chunk row is read; None when a chunk row is over :data:`ZARR_KEPT_BYTES`.

        Bands are much shorter than chunks (59 rows of a 2048-row chunk for a
        50000-wide Gaussian), so without it every band would decode its
        whole chunk row again (35 times each).
        """
        kept = self._kept
        if kept is not None and kept[0] == chunk_start:
            return kept[1]
        stop = min(self.shape[0], chunk_start + self.chunk_rows)
        if self._row_bytes * (stop - chunk_start) > ZARR_KEPT_BYTES:
            return None
        kept = self._kept = None  # the old row is freed before the new one is decoded
        array = self._array
        values = np.empty((stop - chunk_start, *array.shape[1:]), dtype=array.dtype)
        # a few chunks at a time: zarr's decode buffers stay small beside the kept row
        chunk_bytes = max(1, self._row_bytes * (stop - chunk_start) // self.shape[1] * int(array.chunks[1]))
        width = int(array.chunks[1]) * max(1, _ZARR_DECODE_BYTES // chunk_bytes)
        for left in range(0, self.shape[1], width):
            values[:, left:left + width] = self._decode(chunk_start, stop, slice(left, left + width))
        self._kept = (chunk_start, values)
        return values

    def _chunk_error(self, first: int, last: int, error: Exception) -> ImageError:
        """The error of rows ``first .. last − 1``, naming the stored chunk that fails to decode.

        The chunks (shards, for a sharded array) of those rows are read one
        by one; the first that fails is named by its store key, e.g.
        ``c/3/0`` (format 3) or ``3.0`` (format 2), with its rows and
        columns: ``"in.zarr: cannot decode chunk c/3/0 (rows 6144-8191,
        columns 0-2047): …"``. When no single chunk fails alone, the rows are named.
        """
        array = self._array
        try:
            grid = tuple(int(size) for size in (getattr(array, "shards", None) or array.chunks))
            encode = array.metadata.encode_chunk_key
        except Exception:  # not a zarr-python 3 array: name the rows only
            grid = ()
        if grid:
            index = first // grid[0]
            rows = slice(index * grid[0], min(self.shape[0], (index + 1) * grid[0]))
            # every chunk of this chunk row: (column chunks) × (channel chunks of a 3-d array)
            spans = [range(0, size, step) for size, step in zip(array.shape[1:], grid[1:])]
            for starts in itertools.product(*spans):
                region = (rows, *(slice(at, min(size, at + step))
                                  for at, size, step in zip(starts, array.shape[1:], grid[1:])))
                try:
                    array[region]
                except Exception as failure:
                    coords = (index, *(at // step for at, step in zip(starts, grid[1:])))
                    where = (f"{_rows_text(rows.start, rows.stop - 1)}, "
                             f"{_columns_text(region[1].start, region[1].stop - 1)}")
                    return ImageError(f"{self.name}: cannot decode chunk {encode(coords)} ({where}): "
                                      f"{failure}")
        return ImageError(f"{self.name}: cannot decode the chunks of {_rows_text(first, last - 1)}: {error}")

    def close(self) -> None:
        self._array = None
        self._kept = None


# ---------------------------------------------------------------------------
# TIFF


class _NotStreamable(Exception):
    """A TIFF page that tifffile cannot region-read here (falls back to Pillow)."""


# int32 pages go through Pillow (mode I): their bit depth (16 when every value fits
# 0..65535, else 32) needs all the values, as convcli has always read them.
_TIFF_DTYPES = {("u", 1): np.uint8, ("u", 2): np.uint16,
                ("f", 4): np.float32, ("f", 8): np.float64}
_JPEG_COMPRESSIONS = {7, 33007, 34892}
_RESOLUTION_INCH, _RESOLUTION_CM = 2, 3


def _import_tifffile() -> Any:
    try:
        import tifffile
    except ImportError:
        raise _NotStreamable("tifffile is not installed") from None
    return tifffile


def _rational(value: Any) -> float | None:
    try:
        if isinstance(value, tuple):
            return float(value[0]) / float(value[1]) if value[1] else None
        return float(value)
    except (TypeError, ValueError, IndexError):
        return None


def _tiff_metadata(page: Any) -> dict[str, Any]:
    tags = page.tags
    metadata: dict[str, Any] = {}
    icc = tags.valueof(34675)
    if isinstance(icc, bytes | bytearray) and icc:
        metadata["icc_profile"] = bytes(icc)
    unit = int(tags.valueof(296, _RESOLUTION_INCH) or 0)
    x, y = _rational(tags.valueof(282)), _rational(tags.valueof(283))
    if unit in (_RESOLUTION_INCH, _RESOLUTION_CM) and x and y:
        factor = 2.54 if unit == _RESOLUTION_CM else 1.0
        metadata["dpi"] = (x * factor, y * factor)
    return metadata


class TiffSource(Source):
    """Rows of one TIFF page (classic or BigTIFF, either byte order), read by region.

    The strips or tiles that rows ``[start, stop)`` touch are read from their
    ``StripOffsets``/``TileOffsets`` and decoded by the page's own tifffile
    decoder (LZW, deflate, JPEG, zstd, … through imagecodecs, predictors,
    planar or contiguous samples); the last decoded segments stay in an LRU
    cache (``cache_bytes``) so the halo rows two neighbouring bands share
    are decoded once. Uncompressed strips (tifffile writes an uncompressed
    page as one strip) are not decoded whole: the rows' bytes are read at
    ``offset + row·W·S·itemsize``. A compressed page stored as a single
    strip can only be decoded whole; it is then decoded once and kept in
    the cache (whatever its size) while bands are read from it.
    :attr:`segments_decoded` counts decodes (and direct row reads),
    :attr:`bytes_read` the bytes read from the file for pixels.

    When the page's Orientation tag (274) is 2–8 the page is decoded whole on
    the first :meth:`read_rows` and oriented as EXIF orientation is
    (:func:`convcli.imageio._orient`); :attr:`shape` is the oriented one from
    the header alone.

    Supported pages: 8/16-bit unsigned, int32, float32 or float64 samples,
    1–4 samples per pixel, photometric min-is-black or RGB (or YCbCr with
    JPEG compression, decoded to RGB), one plane deep. :func:`open_source`
    reads other TIFFs (palette, 1-bit, min-is-white, CMYK, subsampled
    YCbCr, …) through Pillow as before.

    Parameters
    ----------
    path : str
        The file (or ``"-"`` when ``data`` holds the bytes of standard input).
    frame : int
        Page index (0 = first); :attr:`n_frames` is the number of pages.
    data : bytes, optional
        The whole file in memory (standard input); kept when pickled.
    max_pixels : int or None
        As :func:`open_source`.
    cache_bytes : int
        Budget of the decoded-segment cache (at least one row of segments is kept).

    Raises
    ------
    ImageError
        Unreadable file, page out of range, too many pixels, a strip or tile
        that lies past the end of the file (checked from the header).
    """

    def __init__(self, path: str, *, frame: int = 0, data: bytes | None = None,
                 max_pixels: int | None = imageio.DEFAULT_MAX_PIXELS,
                 cache_bytes: int = 32 << 20) -> None:
        self.name = path
        self.stem = _stem(path)
        self.frame = int(frame)
        self.cache_bytes = int(cache_bytes)
        self._data = data
        self._label = "stdin" if path == _STDIN else path
        self.segments_decoded = 0
        self.bytes_read = 0
        self._state_init()
        tif, page = self._open_page()
        try:
            self.n_frames = len(tif.pages)
            self._layout(page, max_pixels)
            self.metadata = _tiff_metadata(page)
            self._check_offsets(page.dataoffsets, page.databytecounts)
            self._probe(tif, page)
        finally:
            tif.close()

    # -- opening ----------------------------------------------------------

    def _state_init(self) -> None:
        self._tif: Any = None
        self._offsets: Any = None
        self._counts: Any = None
        self._decode: Any = None
        self._decode_args: dict[str, Any] = {}
        self._fill: Any = 0
        self._cache: OrderedDict[int, np.ndarray] = OrderedDict()
        self._cached_bytes = 0
        self._whole: np.ndarray | None = None
        self._lock = threading.RLock()

    def __getstate__(self) -> dict[str, Any]:
        state = self.__dict__.copy()
        for key in ("_tif", "_offsets", "_counts", "_decode", "_decode_args", "_fill", "_cache",
                    "_cached_bytes", "_whole", "_lock"):
            state.pop(key)
        return state

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__dict__.update(state)
        self._state_init()

    def _open_page(self) -> tuple[Any, Any]:
        tifffile = _import_tifffile()
        try:
            tif = tifffile.TiffFile(io.BytesIO(self._data) if self._data is not None else self.name)
        except FileNotFoundError:
            raise ImageError(f"{self._label}: no such file") from None
        except PermissionError:
            raise ImageError(f"{self._label}: permission denied") from None
        except Exception as error:
            raise _NotStreamable(f"not a TIFF tifffile can read ({error})") from None
        try:
            if not 0 <= self.frame < len(tif.pages):
                raise ImageError(f"{self._label}: has {len(tif.pages)} page(s); "
                                 f"page {self.frame} does not exist")
            page = tif.pages[self.frame]
        except ImageError:
            tif.close()
            raise
        except Exception as error:
            tif.close()
            raise _NotStreamable(f"cannot read page {self.frame} ({error})") from None
        return tif, page

    def _layout(self, page: Any, max_pixels: int | None) -> None:
        """Check the page is streamable and set shape, dtype, mode and segment geometry."""
        tifffile = _import_tifffile()
        separate, depth, height, width, contig = page.shaped
        dtype = page.dtype
        if dtype is None or depth != 1:
            raise _NotStreamable("unsupported sample format or volume")
        native = _TIFF_DTYPES.get((dtype.kind, dtype.itemsize))
        if native is None or page.bitspersample != 8 * dtype.itemsize:
            raise _NotStreamable(f"{page.bitspersample}-bit {dtype} samples")
        channels = separate * contig
        photometric = int(page.photometric)
        rgb = photometric == 2 or (photometric == 6 and page.compression in _JPEG_COMPRESSIONS)
        if not (1 <= channels <= 4) or (photometric not in (1,) and not rgb) or (rgb and channels < 3):
            raise _NotStreamable(f"photometric {photometric} with {channels} samples")
        if page.is_subsampled and page.compression not in _JPEG_COMPRESSIONS:
            raise _NotStreamable("chroma subsampling")
        if page.compression == 6:
            raise _NotStreamable("old-style JPEG compression")
        if page.compression != 1 and page.compression not in tifffile.TIFF.DECOMPRESSORS:
            raise _NotStreamable(f"compression {page.compression} has no decoder")
        if native == np.uint8 and 1 in tuple(page.extrasamples):
            raise _NotStreamable("premultiplied alpha")  # Pillow un-premultiplies RGBa
        imageio._check_pixels(self._label, height, width, max_pixels)
        orientation = int(page.tags.valueof(274, 1) or 1)
        self._orientation = orientation if 1 <= orientation <= 8 else 1
        self._stored_shape = (height, width, channels)
        self.shape = (width, height, channels) if self._orientation >= 5 else (height, width, channels)
        self.dtype = np.dtype(native)
        self._stored_dtype = np.dtype(dtype).newbyteorder(page.parent.byteorder)  # as in the file
        self._separate = separate > 1
        self._tiled = bool(page.is_tiled)
        # uncompressed strips are read row by row (tifffile writes them as ONE strip)
        self._raw_strips = (not self._tiled and page.compression == 1 and page.predictor == 1
                            and page.fillorder == 1)
        if self._tiled:
            self._seg_rows, self._seg_cols = int(page.tilelength), int(page.tilewidth)
        else:
            self._seg_rows, self._seg_cols = int(min(page.rowsperstrip, height)), width
        self._down = -(-height // self._seg_rows)
        self._across = -(-width // self._seg_cols)
        self.bit_depth = 8 if native == np.uint8 else 16 if native == np.uint16 else 32
        if rgb:
            names = _COLOUR_NAMES[channels]
        elif channels <= 2:
            names = _GRAY_NAMES[channels]
        else:
            names = _numbered(channels)
        self.channel_names = names
        base = "".join(names) if names[0] != "c0" else "tiff"
        if self.bit_depth == 8:
            self.mode = base
        elif self.bit_depth == 16:
            self.mode = "I;16" if base == "L" else f"{base};16"
        else:
            self.mode = {np.int32: "I", np.float32: "F", np.float64: "F;64"}[native]
            if base != "L":
                self.mode = f"{base};{self.mode}"

    def _check_offsets(self, offsets: Any, counts: Any) -> None:
        size = len(self._data) if self._data is not None else os.path.getsize(self.name)
        needed = self._down * self._across * (self._stored_shape[2] if self._separate else 1)
        offsets = np.asarray(offsets, dtype=np.int64)
        counts = np.asarray(counts, dtype=np.int64)
        if len(offsets) < needed or len(counts) < needed:
            raise ImageError(f"{self._label}: corrupt TIFF: {needed} strips/tiles expected, "
                             f"the header lists {min(len(offsets), len(counts))}")
        bad = np.flatnonzero((offsets[:needed] > 0) & (counts[:needed] > 0)
                             & (offsets[:needed] + counts[:needed] > size))
        if bad.size:
            index = int(bad[0])
            raise ImageError(f"{self._label}: truncated TIFF: {self._segment_text(index)} lies "
                             f"past the end of the file (bytes {offsets[index]}-"
                             f"{offsets[index] + counts[index] - 1} of {size})")

    def _probe(self, tif: Any, page: Any) -> None:
        """Decode the first strip/tile of a compressed page (when ≤ 4 MB) so that a codec
        variant tifffile does not handle falls back to Pillow at open, not at a band."""
        offset, count = int(page.dataoffsets[0]), int(page.databytecounts[0])
        if page.compression == 1 or offset <= 0 or count <= 0 or count > 4 << 20:
            return
        try:
            tif.filehandle.seek(offset)
            data = tif.filehandle.read(count)
            args = {key: value for key in ("jpegtables", "jpegheader")
                    if (value := getattr(page, key)) is not None}
            page.decode(data, 0, **args)
        except Exception as error:
            raise _NotStreamable(f"cannot decode {self._segment_text(0)}: {error}") from None

    def _ensure_open(self) -> None:
        if self._tif is not None:
            return
        tif, page = self._open_page()
        try:
            separate, _, height, width, contig = page.shaped
            if (height, width, separate * contig) != self._stored_shape:
                raise ImageError(f"{self._label}: changed since it was opened")
            self._offsets = page.dataoffsets
            self._counts = page.databytecounts
            self._decode = page.decode
            args = {}
            if page.jpegtables is not None:
                args["jpegtables"] = page.jpegtables
            if page.jpegheader is not None:
                args["jpegheader"] = page.jpegheader
            self._decode_args = args
            self._fill = page.nodata
        except BaseException:
            tif.close()
            raise
        self._tif = tif

    def close(self) -> None:
        with self._lock:
            if self._tif is not None:
                self._tif.close()
            self._state_init()

    # -- segments -----------------------------------------------------------

    def _segment_text(self, index: int) -> str:
        per_plane = self._down * self._across
        sample, within = divmod(index, per_plane)
        down, across = divmod(within, self._across)
        first = down * self._seg_rows
        last = min(first + self._seg_rows, self._stored_shape[0]) - 1
        where = f"strip {within}" if not self._tiled else f"tile ({down}, {across})"
        plane = f", sample {sample}" if self._separate else ""
        return f"{where} ({_rows_text(first, last)}{plane})"

    def _segment(self, index: int) -> np.ndarray | None:
        """Decoded segment ``index`` as ``(rows, cols, samples)`` native dtype, or None (empty)."""
        cached = self._cache.get(index)
        if cached is not None:
            self._cache.move_to_end(index)
            return cached
        offset, count = int(self._offsets[index]), int(self._counts[index])
        if offset <= 0 or count <= 0:
            return None
        data = self._read_bytes(index, offset, count)
        try:
            decoded = self._decode(data, index, **self._decode_args)[0]
        except Exception as error:
            reason = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
            raise ImageError(f"{self._label}: cannot decode {self._segment_text(index)}: "
                             f"{reason}") from None
        self.segments_decoded += 1
        segment = np.asarray(decoded)[0].astype(self.dtype, copy=False)
        self._remember(index, segment)
        return segment

    def _read_bytes(self, index: int, offset: int, count: int) -> bytes:
        handle = self._tif.filehandle
        try:
            handle.seek(offset)
            data = handle.read(count)
        except OSError as error:
            raise ImageError(f"{self._label}: cannot read {self._segment_text(index)}: "
                             f"{error.strerror or error}") from None
        self.bytes_read += len(data)
        if len(data) < count:
            raise ImageError(f"{self._label}: cannot decode {self._segment_text(index)}: truncated "
                             f"({len(data)} of {count} bytes)")
        return data

    def _raw_rows(self, index: int, first: int, last: int) -> np.ndarray | None:
        """Rows ``first .. last − 1`` (counted from the strip's top) of uncompressed strip
        ``index``, read directly: ``offset + first·W·S·itemsize``, as ``(rows, W, S)``."""
        offset, count = int(self._offsets[index]), int(self._counts[index])
        if offset <= 0 or count <= 0:
            return None
        width = self._stored_shape[1]
        samples = 1 if self._separate else self._stored_shape[2]
        row_bytes = width * samples * self._stored_dtype.itemsize
        if count < last * row_bytes:
            raise ImageError(f"{self._label}: cannot decode {self._segment_text(index)}: its byte "
                             f"count {count} is less than its rows need ({last * row_bytes})")
        data = self._read_bytes(index, offset + first * row_bytes, (last - first) * row_bytes)
        self.segments_decoded += 1
        rows = np.frombuffer(data, dtype=self._stored_dtype).reshape(last - first, width, samples)
        return rows.astype(self.dtype, copy=False)

    def _remember(self, index: int, segment: np.ndarray) -> None:
        self._cache[index] = segment
        self._cached_bytes += segment.nbytes
        keep = self._across * (self._stored_shape[2] if self._separate else 1)
        while self._cached_bytes > self.cache_bytes and len(self._cache) > keep:
            _, dropped = self._cache.popitem(last=False)
            self._cached_bytes -= dropped.nbytes

    def _read_stored(self, start: int, stop: int) -> np.ndarray:
        """Rows ``start .. stop − 1`` of the page as stored (no orientation)."""
        _, width, channels = self._stored_shape
        out = np.empty((stop - start, width, channels), dtype=self.dtype)
        planes = range(channels) if self._separate else (None,)
        per_plane = self._down * self._across
        for down in range(start // self._seg_rows, (stop - 1) // self._seg_rows + 1):
            top = down * self._seg_rows
            first, last = max(start, top), min(stop, top + self._seg_rows)
            for across in range(self._across):
                left = across * self._seg_cols
                right = min(width, left + self._seg_cols)
                for plane in planes:
                    index = (plane or 0) * per_plane + down * self._across + across
                    target = out[first - start:last - start, left:right]
                    if plane is not None:
                        target = target[:, :, plane:plane + 1]
                    if self._raw_strips:
                        segment, skip = self._raw_rows(index, first - top, last - top), 0
                    else:
                        segment, skip = self._segment(index), first - top
                    if segment is None:  # a segment never written: tifffile's fill value
                        target[...] = self._fill
                        continue
                    piece = segment[skip:skip + last - first, :right - left]
                    if piece.shape != target.shape:
                        raise ImageError(f"{self._label}: cannot decode {self._segment_text(index)}: "
                                         f"decoded to {segment.shape}, too small")
                    target[...] = piece
        return out

    def read_rows(self, start: int, stop: int) -> np.ndarray:
        """Rows ``start .. stop − 1`` (see :meth:`Source.read_rows`); decodes only the
        strips/tiles they touch, or the whole page once when it has an orientation."""
        self._check_rows(start, stop)
        with self._lock:
            self._ensure_open()
            if self._orientation == 1:
                return self._read_stored(start, stop)
            if self._whole is None:
                whole = imageio._orient(self._read_stored(0, self._stored_shape[0]), self._orientation)
                self._whole = np.ascontiguousarray(whole)
                self._whole.flags.writeable = False
                self._cache.clear()
                self._cached_bytes = 0
            return self._whole[start:stop]


# ---------------------------------------------------------------------------
# dispatch


def _pillow_source(path: str, max_pixels: int | None) -> PillowSource:
    loaded = imageio.read_image(path, max_pixels=max_pixels)
    return PillowSource(loaded)  # loaded.metadata: EXIF orientation reset to 1 (pixels are upright)


def _stdin_source(max_pixels: int | None) -> Source:
    name, handle = imageio._open_source(_STDIN)  # reads all of stdin; refuses 0 bytes
    data = handle.getvalue()  # type: ignore[attr-defined]
    if data[:4] in _TIFF_MAGICS:
        try:
            return TiffSource(_STDIN, data=data, max_pixels=max_pixels)
        except _NotStreamable:
            pass
    handle.seek(0)
    if data[:len(_NPY_MAGIC)] == _NPY_MAGIC:
        loaded = imageio._read_npy(name, handle, _STDIN, "stdin", max_pixels)
    else:
        loaded = imageio._read_pillow(name, handle, _STDIN, "stdin", max_pixels)
    return PillowSource(loaded)


def open_source(path: str | os.PathLike, *, max_pixels: int | None = imageio.DEFAULT_MAX_PIXELS,
                frame: int = 0, streamed_max_pixels: int | None = None) -> Source:
    """Open an input for reading by rows, after checking it from its header.

    Parameters
    ----------
    path : str or path-like
        An image or ``.npy`` file, a zarr array directory, or ``"-"`` for
        standard input (read whole).
    max_pixels : int or None
        Refuse inputs with more than ``H·W`` pixels (checked from the header,
        before any pixel is decoded); None disables the check.
    frame : int
        Page of a multi-page TIFF (ignored by other formats).
    streamed_max_pixels : int or None
        The limit for inputs read by region (TIFF, ``.npy``, zarr: their
        memory does not grow with their size), default none; ``max_pixels``
        (Pillow's decompression-bomb limit by default) guards the formats
        that are decoded whole.

    Returns
    -------
    Source
        :class:`TiffSource`, :class:`NpySource`, :class:`ZarrSource` or
        :class:`PillowSource`, chosen by magic bytes (a directory: by its
        zarr metadata).

    Raises
    ------
    ImageError
        One line naming the file: missing, unreadable, empty, a directory
        that is not a zarr array, not a recognised format, too many pixels,
        a truncated ``.npy`` or TIFF (from the header and the file size),
        an unsupported mode/dtype/shape; zarr not installed.
    OptionError
        ``max_pixels`` is not a positive integer or None.
    """
    if max_pixels is not None and max_pixels < 1:
        raise OptionError(f"`max_pixels` must be a positive integer or None, got {max_pixels}")
    if isinstance(path, str) and path == _STDIN:
        return _stdin_source(max_pixels)
    name = os.fspath(path)
    if os.path.isdir(name):
        kind = _zarr_kind(name)
        if kind == "array":
            return ZarrSource(name, max_pixels=streamed_max_pixels)
        if kind == "group":
            raise ImageError(f"{name}: is a zarr group, not an array; give the array's directory")
        raise ImageError(f"{name}: is a directory, not an image")
    _, handle = imageio._open_source(name)  # existence, permission, emptiness: same messages
    with handle:
        magic = handle.read(8)
    if magic.startswith(_NPY_MAGIC):
        return NpySource(name, max_pixels=streamed_max_pixels)
    if magic[:4] in _TIFF_MAGICS:
        try:
            return TiffSource(name, frame=frame, max_pixels=streamed_max_pixels)
        except _NotStreamable as reason:
            if frame != 0:
                raise ImageError(f"{name}: page {frame} cannot be read ({reason})") from None
            try:
                return _pillow_source(name, max_pixels)
            except ImageError as error:
                raise ImageError(f"{error} (tifffile: {reason})") from None
    return _pillow_source(name, max_pixels)


def is_tiff(path: str | os.PathLike) -> bool:
    """Whether ``path`` is a readable regular file that starts with a TIFF or BigTIFF signature."""
    try:
        with open(path, "rb") as handle:
            return handle.read(4) in _TIFF_MAGICS
    except OSError:
        return False


def read_shape(path: str | os.PathLike) -> tuple[int, int]:
    """``(H, W)`` of an input as ``convcli apply`` sees it, from its header only.

    TIFF (orientation tag applied), ``.npy`` and zarr arrays through the same
    sources that stream them, so ``convcli shape FILE`` and ``convcli apply``
    agree; other image formats through :func:`convcli.imageio.read_size`
    (EXIF orientation applied), which decodes no pixels.

    Raises
    ------
    ImageError
        As :func:`open_source` does.
    """
    name = os.fspath(path)
    if name != _STDIN and not os.path.isdir(name):
        _, handle = imageio._open_source(name)
        with handle:
            magic = handle.read(8)
        if not (magic.startswith(_NPY_MAGIC) or magic[:4] in _TIFF_MAGICS):
            return imageio.read_size(name)
    source = open_source(name, max_pixels=None)
    try:
        return source.shape[0], source.shape[1]
    finally:
        source.close()
