"""Sinks: write an image band by band, atomically.

A sink is opened for an image of known shape ``(H, W, C)`` and dtype, receives
its rows top to bottom in bands of any heights (:meth:`Sink.write_rows`),
and at :meth:`Sink.commit` finishes the file and moves it into place. Memory
does not grow with H: each format keeps at most a few blocks of rows.

==========  ==========================  ==========================================
format      dtypes                      written as bands arrive
==========  ==========================  ==========================================
png         uint8, uint16; C 1..4       rows filtered and deflated in ~1 MiB blocks
                                        on all cores, overlapping the caller
                                        (:class:`convcli.png.PngEncoder`), one IDAT
                                        per block
tiff        uint8, uint16, float32      tiles (:func:`tile_shape`) deflated by
                                        tifffile on all cores, one row of tiles at a
                                        time; BigTIFF when the pixels pass
                                        :data:`BIGTIFF_THRESHOLD` bytes
npy         uint8, uint16, float32,     the ``np.lib.format`` header, then each
            float64                     band's bytes (C order)
zarr        uint8, uint16, float32,     a zarr v3 array, written one row of chunks
            float64                     at a time (each chunk written once)
==========  ==========================  ==========================================

Atomicity (:mod:`convcli.atomic`): the checks run in :func:`open_sink`,
before any pixel is computed; the data goes to a temporary ``.convcli-*.tmp``
file (a directory for zarr) in the target's directory, renamed into place by
:meth:`Sink.commit` (without ``force``, never over a file that appeared
meanwhile). :meth:`Sink.abort`, run by the context manager on any exception
(Ctrl-C included) and on leaving without commit, removes the temporary. An
``OSError`` while writing (disk full, …) becomes an :class:`OutputError`
naming the target, after the temporary is removed.

The TIFF sink bridges push to pull: tifffile's ``TiffWriter.write`` pulls
tiles from an iterator (row of tiles by row of tiles, left to right, edge
tiles zero-padded by tifffile), so it runs in a writer thread fed through a
queue of one row of tiles; an exception in that thread is raised
again by the next :meth:`~Sink.write_rows` or by :meth:`~Sink.commit`.

``"-"`` writes to standard output: PNG and ``.npy`` as bands arrive, TIFF
(which seeks back to write its directory) buffered in memory and written at
commit; zarr (a directory) cannot go to standard output.
"""

from __future__ import annotations

import contextlib
import io
import math
import os
import queue
import sys
import threading
from collections.abc import Iterator, Mapping, Sequence
from typing import Any, BinaryIO

import numpy as np

from convcli import atomic, png
from convcli.errors import ConvcliError, OptionError, OutputError, ShapeError

__all__ = [
    "BIGTIFF_THRESHOLD",
    "DEFAULT_TILE",
    "FORMATS",
    "TILE_ROW_BYTES",
    "Sink",
    "open_sink",
    "tile_shape",
]

FORMATS = ("png", "tiff", "npy", "zarr")
"""Formats :func:`open_sink` writes band by band."""

DEFAULT_TILE = 128
"""Largest side of a TIFF tile unless given; wide images get shorter, wider tiles (:func:`tile_shape`)."""
TILE_ROW_BYTES = 4 << 20
"""Bytes of one row of tiles that :func:`tile_shape` aims at: the sink holds about three (the rows
being filled, the queued row, tifffile's buffer), so its memory does not grow with the width."""
DEFAULT_CHUNK = 256
"""Side of a zarr chunk (rows and columns) unless given."""

BIGTIFF_THRESHOLD = 2**32 - 2**25
"""Uncompressed pixel bytes above which a TIFF is written as BigTIFF.

Classic TIFF addresses 4 GiB (32-bit offsets). Deflate can make
incompressible data slightly larger (5 bytes per 16 KiB stored block, plus the
tile directory), so the switch comes 32 MiB early. A module constant so that
tests can lower it.
"""

_DTYPES: dict[str, tuple[np.dtype, ...]] = {
    "png": (np.dtype(np.uint8), np.dtype(np.uint16)),
    "tiff": (np.dtype(np.uint8), np.dtype(np.uint16), np.dtype(np.float32)),
    "npy": tuple(np.dtype(t) for t in (np.uint8, np.uint16, np.float32, np.float64)),
    "zarr": tuple(np.dtype(t) for t in (np.uint8, np.uint16, np.float32, np.float64)),
}
_TILE_MULTIPLE = 16  # TIFF requires tile sides that are multiples of 16
_QUEUE_ROWS = 1      # rows of tiles queued for the TIFF writer thread
_POLL_SECONDS = 0.05
_ZARR_EXTRA = "pip install 'convcli[zarr]'"


# ---------------------------------------------------------------------------
# where the bytes go


class _Stdout:
    """Standard output as a sink's destination; ``buffered`` collects in memory for seeking formats."""

    def __init__(self, *, buffered: bool) -> None:
        self._buffer = io.BytesIO() if buffered else None
        self.stream: BinaryIO = self._buffer if buffered else sys.stdout.buffer

    def commit(self) -> None:
        stream = sys.stdout.buffer
        if self._buffer is not None:
            atomic.write_all(stream, self._buffer.getbuffer())
            self._buffer = None
        stream.flush()

    def abort(self) -> None:
        self._buffer = None


# ---------------------------------------------------------------------------
# the sinks


class Sink:
    """Base class: receives the rows of a ``(H, W, C)`` image in order and writes them.

    Use it as a context manager (``with open_sink(...) as sink:``): leaving
    the block by an exception, or without :meth:`commit`, calls
    :meth:`abort`.

    Attributes
    ----------
    target : str
        The output path (``"-"`` for standard output).
    format : str
        One of :data:`FORMATS`.
    shape : (H, W, C)
    dtype : numpy.dtype
    rows_written : int
        Rows received so far.
    """

    format = ""

    def __init__(self, target: str, shape: tuple[int, int, int], dtype: np.dtype) -> None:
        self.target = target
        self.shape = shape
        self.dtype = dtype
        self.rows_written = 0
        self._state = "open"  # "open" → "committed" | "aborted"
        self._to_stdout = target == atomic.STDOUT

    # -- public protocol -----------------------------------------------------

    def write_rows(self, band: np.ndarray) -> None:
        """Write the next ``h`` rows: ``band`` of shape ``(h, W, C)`` and the sink's dtype.

        Raises
        ------
        ShapeError
            ``band`` has the wrong width, channels or dtype, or passes row H.
        OutputError
            The sink is finished, or writing failed (disk full, …); the
            temporary has then been removed.
        """
        if self._state != "open":
            raise OutputError(f"{self.target}: output already {self._state}")
        band = self._check_band(band)
        if band.shape[0] == 0:
            return
        self._guard(self._write, band)
        self.rows_written += band.shape[0]

    def commit(self) -> None:
        """Finish the file (all H rows written) and move it into place.

        Raises
        ------
        ShapeError
            Fewer than H rows were written (the output is aborted).
        OutputError
            Finishing or moving failed; nothing is left behind.
        """
        if self._state != "open":
            raise OutputError(f"{self.target}: output already {self._state}")
        if self.rows_written != self.shape[0]:
            self.abort()
            raise ShapeError(f"{self.target}: {self.rows_written} of {self.shape[0]} rows written; "
                             "nothing was saved")
        self._guard(self._finish)
        self._state = "committed"

    def abort(self) -> None:
        """Remove the temporary file or directory. Idempotent; never raises."""
        if self._state != "open":
            return
        self._state = "aborted"
        with contextlib.suppress(Exception):
            self._discard()

    def __enter__(self) -> Sink:
        return self

    def __exit__(self, *exc_info: object) -> None:
        if self._state == "open":
            self.abort()

    def __repr__(self) -> str:
        return (f"<{type(self).__name__} {self.target!r} {self.shape} {self.dtype} "
                f"{self.rows_written} rows, {self._state}>")

    # -- for subclasses ------------------------------------------------------

    def _write(self, band: np.ndarray) -> None:
        raise NotImplementedError

    def _finish(self) -> None:
        raise NotImplementedError

    def _discard(self) -> None:
        raise NotImplementedError

    def _check_band(self, band: np.ndarray) -> np.ndarray:
        band = np.asarray(band)
        height, width, channels = self.shape
        if band.ndim == 2 and channels == 1:
            band = band[:, :, np.newaxis]
        if band.ndim != 3 or band.shape[1:] != (width, channels):
            raise ShapeError(f"{self.target}: a band must have shape (h, {width}, {channels}), "
                             f"got {band.shape}")
        if band.dtype != self.dtype:
            raise ShapeError(f"{self.target}: a band must be {self.dtype}, got {band.dtype}")
        if self.rows_written + band.shape[0] > height:
            raise ShapeError(f"{self.target}: rows {self.rows_written}..{self.rows_written + band.shape[0]} "
                             f"pass the image's {height} rows")
        return band

    def _guard(self, step: Any, *args: Any) -> None:
        """Run ``step``; on any exception abort, and raise an ``OSError`` as :class:`OutputError`."""
        try:
            step(*args)
        except BaseException as error:
            self.abort()
            if isinstance(error, OSError) and not isinstance(error, ConvcliError) \
                    and not (self._to_stdout and isinstance(error, BrokenPipeError)):
                raise atomic.output_error(self.target, error) from None
            raise


class _FileSink(Sink):
    """A sink writing one file through a stream (temporary file or standard output)."""

    def __init__(self, target: str, shape: tuple[int, int, int], dtype: np.dtype, *,
                 force: bool, buffered_stdout: bool = False) -> None:
        super().__init__(target, shape, dtype)
        self._output: atomic.AtomicFile | atomic.DeviceFile | _Stdout = (
            _Stdout(buffered=buffered_stdout) if self._to_stdout
            else atomic.open_output_file(target, force=force, buffered=buffered_stdout)
        )
        self._stream = self._output.stream

    def _emit(self, data: bytes | memoryview) -> None:
        atomic.write_all(self._stream, data)

    def _finish(self) -> None:
        self._output.commit()

    def _discard(self) -> None:
        self._output.abort()


class _PngSink(_FileSink):
    format = "png"

    def __init__(self, target: str, shape: tuple[int, int, int], dtype: np.dtype, *, force: bool,
                 compress_level: int, metadata: Mapping[str, Any] | None) -> None:
        super().__init__(target, shape, dtype, force=force)
        try:
            self._encoder = png.PngEncoder(self._emit, shape, dtype, compress_level=compress_level,
                                           metadata=metadata)
        except BaseException as error:
            self.abort()
            if isinstance(error, OSError) and not isinstance(error, ConvcliError):
                raise atomic.output_error(target, error) from None
            raise

    def _write(self, band: np.ndarray) -> None:
        self._encoder.write_rows(band)

    def _finish(self) -> None:
        self._encoder.finish()
        super()._finish()

    def _discard(self) -> None:
        encoder = getattr(self, "_encoder", None)
        if encoder is not None:
            encoder.close()
        super()._discard()


class _NpySink(_FileSink):
    format = "npy"

    def __init__(self, target: str, shape: tuple[int, int, int], dtype: np.dtype, *, force: bool) -> None:
        super().__init__(target, shape, dtype, force=force)
        header = io.BytesIO()
        np.lib.format.write_array_header_1_0(header, {
            "descr": np.lib.format.dtype_to_descr(dtype), "fortran_order": False, "shape": tuple(shape),
        })
        self._guard(self._emit, header.getbuffer())

    def _write(self, band: np.ndarray) -> None:
        self._emit(np.ascontiguousarray(band).data)


class _WriterStopped(Exception):
    """Raised inside the TIFF writer thread's tile iterator to stop it (abort)."""


_ABORT = object()


class _TiffSink(_FileSink):
    format = "tiff"

    def __init__(self, target: str, shape: tuple[int, int, int], dtype: np.dtype, *, force: bool,
                 compress_level: int, metadata: Mapping[str, Any] | None, tile: int | None) -> None:
        import tifffile

        height, width, channels = shape
        self.bigtiff = height * width * channels * dtype.itemsize > BIGTIFF_THRESHOLD
        self._tile = tile_shape(shape, dtype.itemsize, tile)
        options = _tiff_options(shape, dtype, compress_level, metadata, self._tile)  # may raise: no file yet
        self._queue: queue.Queue[Any] = queue.Queue(maxsize=_QUEUE_ROWS)
        self._error: BaseException | None = None
        self._rows_buffer = np.empty((self._tile[0], width, channels), dtype)
        self._filled = 0
        super().__init__(target, shape, dtype, force=force, buffered_stdout=True)
        try:
            self._writer = tifffile.TiffWriter(self._stream, bigtiff=self.bigtiff)
        except BaseException as error:
            self.abort()
            if isinstance(error, OSError) and not isinstance(error, ConvcliError):
                raise atomic.output_error(target, error) from None
            raise
        self._thread = threading.Thread(target=self._run, args=(options,), name="convcli-tiff-writer",
                                        daemon=True)
        self._thread.start()

    # the writer thread ----------------------------------------------------

    def _tiles(self) -> Iterator[np.ndarray]:
        """Tiles in TIFF order: rows of tiles top to bottom, each left to right."""
        tile_width, width = self._tile[1], self.shape[1]
        for _ in range(math.ceil(self.shape[0] / self._tile[0])):
            rows = self._queue.get()
            if rows is _ABORT:
                raise _WriterStopped
            for column in range(0, width, tile_width):
                # (rows, columns, samples) even for one sample: tifffile pads edge tiles to
                # (*tile, samples) and predicts along axis −2, so a 2-D edge tile comes out wrong
                yield rows[:, column:column + tile_width]

    def _run(self, options: dict[str, Any]) -> None:
        try:
            self._writer.write(self._tiles(), **options)
        except BaseException as error:  # raised again in the caller's thread
            self._error = error

    # the caller's side ----------------------------------------------------

    def _raise_writer_error(self) -> None:
        error = self._error
        if error is not None and not isinstance(error, _WriterStopped):
            if isinstance(error, (OSError, ConvcliError)):
                raise error
            raise OutputError(f"{self.target}: TIFF writer failed ({type(error).__name__}: {error})") \
                from error

    def _put(self, rows: np.ndarray) -> None:
        while True:
            self._raise_writer_error()
            if not self._thread.is_alive():
                raise OutputError(f"{self.target}: TIFF writer stopped early")
            try:
                self._queue.put(rows, timeout=_POLL_SECONDS)
                return
            except queue.Full:
                continue

    def _write(self, band: np.ndarray) -> None:
        tile_height = self._tile[0]
        done, count = self.rows_written, band.shape[0]
        start = 0
        while start < count:
            take = min(tile_height - self._filled, count - start)
            self._rows_buffer[self._filled:self._filled + take] = band[start:start + take]
            self._filled += take
            start += take
            if self._filled == tile_height or done + start == self.shape[0]:
                full, self._filled = self._rows_buffer[:self._filled], 0
                self._put(full)
                if done + start < self.shape[0]:
                    self._rows_buffer = np.empty_like(self._rows_buffer)

    def _finish(self) -> None:
        while self._thread.is_alive():
            self._thread.join(_POLL_SECONDS)
        self._raise_writer_error()
        self._writer.close()
        super()._finish()

    def _discard(self) -> None:
        thread = getattr(self, "_thread", None)
        if thread is not None and thread.is_alive():
            with contextlib.suppress(queue.Empty):
                while True:
                    self._queue.get_nowait()
            with contextlib.suppress(queue.Full):
                self._queue.put_nowait(_ABORT)
            thread.join(timeout=10)
        super()._discard()


def _round_up(value: int, multiple: int) -> int:
    return -(-value // multiple) * multiple


def tile_shape(shape: tuple[int, int, int], itemsize: int, tile: int | None = None) -> tuple[int, int]:
    """(rows, columns) of the TIFF tiles for an image of ``shape`` (H, W, C) and ``itemsize`` bytes.

    ``tile`` given: square ``tile × tile`` tiles. Otherwise the rows are the
    largest multiple of 16 up to :data:`DEFAULT_TILE` whose row of tiles
    (``rows · W · C · itemsize``) fits :data:`TILE_ROW_BYTES` (16 at least),
    and the columns keep a tile of about 128 × 128 pixels (``16384 / rows``,
    128 … 1024): a 20000-pixel-wide RGB image gets 64 × 256 tiles, a
    40000-wide one 32 × 512. Both sides shrink to the image (rounded up to
    16, as TIFF requires).
    """
    height, width, channels = shape
    if tile is not None:
        rows = columns = int(tile)
    else:
        row_bytes = max(1, width * channels * itemsize)
        rows = max(_TILE_MULTIPLE, min(DEFAULT_TILE, TILE_ROW_BYTES // row_bytes // _TILE_MULTIPLE
                                       * _TILE_MULTIPLE))
        columns = min(1024, max(DEFAULT_TILE, _round_up(DEFAULT_TILE**2 // rows, _TILE_MULTIPLE)))
    return (min(rows, _round_up(height, _TILE_MULTIPLE)), min(columns, _round_up(width, _TILE_MULTIPLE)))


def _tiff_options(shape: tuple[int, int, int], dtype: np.dtype, compress_level: int,
                  metadata: Mapping[str, Any] | None, tile: tuple[int, int]) -> dict[str, Any]:
    """Keyword arguments of ``TiffWriter.write`` for the sink's image."""
    _, width, channels = shape
    options: dict[str, Any] = {
        "shape": shape if channels > 1 else shape[:2],
        "dtype": dtype,
        "tile": tile,
        "compression": "zlib",
        "compressionargs": {"level": compress_level},
        "predictor": True,  # horizontal differencing (integers) or floating-point predictor
        "photometric": "rgb" if channels in (3, 4) else "minisblack",
        "metadata": None,   # no tifffile JSON description
        "maxworkers": max(1, os.cpu_count() or 1),
        # tifffile collects ``buffersize`` bytes of tiles before deflating them in parallel:
        # one row of tiles keeps the memory bounded by the queue.
        "buffersize": tile[0] * _round_up(width, tile[1]) * channels * dtype.itemsize,
    }
    if channels > 1:
        options["planarconfig"] = "contig"
    if channels in (2, 4):
        options["extrasamples"] = ("unassalpha",)
    if metadata:
        dpi = metadata.get("dpi")
        if dpi is not None:
            x_dpi, y_dpi = (dpi, dpi) if np.isscalar(dpi) else tuple(dpi)
            if not (float(x_dpi) > 0 and float(y_dpi) > 0):
                raise OptionError(f"`dpi` must be positive, got {dpi!r}")
            options["resolution"] = (float(x_dpi), float(y_dpi))
            options["resolutionunit"] = "INCH"
        if metadata.get("icc_profile"):
            options["iccprofile"] = bytes(metadata["icc_profile"])
    return options


class _ZarrSink(Sink):
    format = "zarr"

    def __init__(self, target: str, shape: tuple[int, int, int], dtype: np.dtype, *, force: bool,
                 chunks: tuple[int, int, int], zarr: Any) -> None:
        super().__init__(target, shape, dtype)
        self._directory = atomic.AtomicDirectory(target, force=force)
        self._chunk_rows = chunks[0]
        self._rows_buffer = np.empty((chunks[0], shape[1], shape[2]), dtype)
        self._filled = 0
        self._guard(self._create, zarr, chunks)

    def _create(self, zarr: Any, chunks: tuple[int, int, int]) -> None:
        self._array = zarr.create_array(store=self._directory.name, shape=self.shape, chunks=chunks,
                                        dtype=self.dtype, fill_value=0, zarr_format=3)

    def _write(self, band: np.ndarray) -> None:
        done, count = self.rows_written, band.shape[0]
        start = 0
        while start < count:
            take = min(self._chunk_rows - self._filled, count - start)
            self._rows_buffer[self._filled:self._filled + take] = band[start:start + take]
            self._filled += take
            start += take
            if self._filled == self._chunk_rows or done + start == self.shape[0]:
                stop = done + start
                self._array[stop - self._filled:stop] = self._rows_buffer[:self._filled]
                self._filled = 0

    def _finish(self) -> None:
        self._directory.commit()

    def _discard(self) -> None:
        _wait_for_zarr_writes()
        self._directory.abort()


def _wait_for_zarr_writes(timeout: float = 10.0) -> None:
    """Wait until zarr's event loop has no chunk write left in flight (at most ``timeout`` s).

    zarr-python writes the chunks of one assignment as concurrent tasks on its
    own I/O thread; when one fails (a full disk) or the caller is interrupted
    (Ctrl-C), the others go on and would recreate files in a temporary
    directory that was just removed (and print "Task was destroyed but it is
    pending!" at exit). Reads zarr's loop from ``zarr.core.sync`` when it
    exists; otherwise does nothing (the directory's removal still repeats
    until it stays gone, :meth:`convcli.atomic.AtomicDirectory.abort`).
    """
    import asyncio
    import sys

    sync = sys.modules.get("zarr.core.sync")
    loop = getattr(sync, "loop", [None])[0] if sync is not None else None
    if loop is None or not loop.is_running():
        return

    async def settle() -> None:
        me = asyncio.current_task()
        pending = [task for task in asyncio.all_tasks() if task is not me and not task.done()]
        if pending:
            await asyncio.wait(pending, timeout=timeout)
        for task in pending:  # their errors were reported by the write that failed first
            if task.done() and not task.cancelled():
                task.exception()

    with contextlib.suppress(Exception):
        asyncio.run_coroutine_threadsafe(settle(), loop).result(timeout + 1.0)


# ---------------------------------------------------------------------------
# opening


def _import_zarr(target: str) -> Any:
    try:
        import zarr
    except ImportError:
        raise OptionError(f"{target}: writing zarr needs the zarr package: {_ZARR_EXTRA}") from None
    return zarr


def _check_zarr_target(path: str) -> None:
    """Refuse to replace a directory that is not a zarr store (``force`` would delete it)."""
    if os.path.isdir(path) and not os.path.islink(path):
        entries = os.listdir(path)
        if entries and not {"zarr.json", ".zarray", ".zgroup"} & set(entries):
            raise OutputError(f"{path}: is a directory that is not a zarr array; refusing to replace it")
    elif os.path.lexists(path):
        raise OutputError(f"{path}: exists and is not a directory; refusing to replace it with a zarr array")


def open_sink(target: str | os.PathLike, fmt: str, shape: tuple[int, int, int], dtype: Any, *,
              force: bool = False, protect: Sequence[str | os.PathLike] = (),
              compress_level: int = png.DEFAULT_PNG_LEVEL, metadata: Mapping[str, Any] | None = None,
              tile: int | None = None, chunks: tuple[int, int] | None = None) -> Sink:
    """Check the output and open a :class:`Sink` that writes ``target`` band by band.

    Every check happens here, before any pixel is computed, and no temporary
    is left behind if one fails.

    Parameters
    ----------
    target : str or path-like
        Output path; ``"-"`` for standard output (not for zarr).
    fmt : {"png", "tiff", "npy", "zarr"}
    shape : (H, W, C)
        The whole image; H, W ≥ 1; C in 1..4 for PNG, ≥ 1 otherwise.
    dtype : dtype-like
        png: uint8/uint16; tiff: uint8/uint16/float32; npy and zarr:
        uint8/uint16/float32/float64. Bands must be of exactly this dtype.
    force : bool
        Replace an existing target (for zarr: an existing zarr directory).
    protect : sequence of paths
        The inputs; none may be the target, not even with ``force``.
    compress_level : int, 0..9
        zlib level for PNG and TIFF (ignored for npy, zarr).
    metadata : mapping, optional
        ``"icc_profile"`` (bytes), ``"dpi"`` (number or (x, y)) for PNG and
        TIFF; ``"text"`` (str → str, tEXt/iTXt chunks) for PNG. Other keys
        and other formats: ignored.
    tile : int, optional
        TIFF tile side, a positive multiple of 16 (capped at the image
        rounded up to 16); default: :func:`tile_shape`, whose row of tiles
        stays near :data:`TILE_ROW_BYTES` at any width.
    chunks : (rows, columns), optional
        zarr chunk shape (the channels are one chunk); default
        ``(min(H, 256), min(W, 256))``.

    Returns
    -------
    Sink

    Raises
    ------
    OptionError
        Unknown format, dtype the format cannot hold, bad ``compress_level``,
        ``tile`` or ``chunks``, zarr to standard output or zarr not installed.
    ShapeError
        ``shape`` not ``(H, W, C)`` with positive sizes (C in 1..4 for PNG).
    OutputError
        The target exists (without ``force``), is an input or a directory,
        its directory is missing or not writable.
    """
    path = os.fspath(target)
    if fmt not in FORMATS:
        raise OptionError(f"`fmt` must be one of {', '.join(FORMATS)}, got {fmt!r}")
    if len(shape) != 3 or any(isinstance(n, bool) or not isinstance(n, (int, np.integer)) for n in shape) \
            or min(shape) < 1:
        raise ShapeError(f"{path}: output shape must be (H, W, C) with positive sizes, got {tuple(shape)}")
    shape = (int(shape[0]), int(shape[1]), int(shape[2]))
    try:
        dtype = np.dtype(dtype)
    except TypeError:
        raise OptionError(f"{path}: not a dtype: {dtype!r}") from None
    if dtype not in _DTYPES[fmt]:
        allowed = ", ".join(str(t) for t in _DTYPES[fmt])
        raise OptionError(f"{path}: {fmt} output holds {allowed} samples, not {dtype}")
    if fmt == "png" and shape[2] > 4:
        raise ShapeError(f"{path}: PNG holds 1 to 4 channels, got {shape[2]}")
    if fmt in ("png", "tiff"):
        png._check_level(compress_level)
    if tile is not None and (isinstance(tile, bool) or not isinstance(tile, (int, np.integer))
                             or tile < 1 or tile % _TILE_MULTIPLE):
        raise OptionError(f"`tile` must be a positive multiple of {_TILE_MULTIPLE}, got {tile!r}")
    if chunks is not None and (len(chunks) != 2 or any(
            isinstance(n, bool) or not isinstance(n, (int, np.integer)) or n < 1 for n in chunks)):
        raise OptionError(f"`chunks` must be two positive integers (rows, columns), got {chunks!r}")
    zarr = None
    if fmt == "zarr":
        if path == atomic.STDOUT:
            raise OptionError("zarr output is a directory; it cannot go to standard output")
        zarr = _import_zarr(path)
        atomic.check_output_target(path, force=force, protect=protect, directory_target=True)
        if force and os.path.lexists(path):
            _check_zarr_target(path)
    else:
        atomic.check_output_target(path, force=force, protect=protect)

    if fmt == "png":
        return _PngSink(path, shape, dtype, force=force, compress_level=int(compress_level),
                        metadata=metadata)
    if fmt == "tiff":
        return _TiffSink(path, shape, dtype, force=force, compress_level=int(compress_level),
                         metadata=metadata, tile=int(tile) if tile else None)
    if fmt == "npy":
        return _NpySink(path, shape, dtype, force=force)
    rows, columns = (int(n) for n in chunks) if chunks else (DEFAULT_CHUNK, DEFAULT_CHUNK)
    return _ZarrSink(path, shape, dtype, force=force, zarr=zarr,
                     chunks=(min(rows, shape[0]), min(columns, shape[1]), shape[2]))
