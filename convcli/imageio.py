"""Read images and arrays into float maps; write outputs atomically.

This is the only convcli module that imports Pillow. Reading gives a
:class:`LoadedImage` whose ``array`` is ``(H, W, C)`` in the image's native
range (0–255 for 8-bit, 0–65535 for 16-bit), so the core's results are in the
same units as the input. Writing goes through :func:`write_output`, which
never leaves a partial file and never overwrites an input.

Supported inputs
----------------
PNG, JPEG, TIFF, BMP, WebP, GIF (first frame; first page of a TIFF) in the
Pillow modes below, ``.npy`` arrays ``(H, W)`` or ``(H, W, C)`` (told apart by
their magic bytes, not by their name), and ``"-"`` for standard input.

=======================  ===================  =========  ==================
Pillow mode              channels             bit_depth  values
=======================  ===================  =========  ==================
1                        L                    8          0 or 255
L                        L                    8          0–255
LA, La                   L A                  8          0–255
P, PA (gray palette)     L or L A             8          0–255
P (colour palette)       R G B                8          0–255
P with transparency, PA  R G B A              8          0–255
RGB, RGBX, YCbCr, CMYK   R G B                8          0–255
RGBA, RGBa               R G B A              8          0–255
I;16, I;16B, I;16L       L                    16         0–65535
I (32-bit integers)      L                    16 or 32   as stored
F (32-bit float)         L                    32         as stored
16-bit RGB/RGBA/LA PNG   R G B [A] / L A      16         0–65535
npy                      c0, c1, …            32         as stored
=======================  ===================  =========  ==================

Pillow itself reduces 16-bit colour PNGs to 8 bits; this module decodes them
at full depth (the rows are decoded twice by Pillow's own inflater, once for
the high and once for the low bytes, see :func:`_load_png16`) and reports the
mode as ``RGB;16``, ``RGBA;16`` or ``LA;16``. The EXIF orientation tag is
applied (as :func:`PIL.ImageOps.exif_transpose` does). PNG chunk CRCs are
verified (Pillow skips those of IDAT).
"""

from __future__ import annotations

import contextlib
import functools
import io
import os
import struct
import sys
import tempfile  # noqa: F401 - the tests patch tempfile.NamedTemporaryFile through this name
import threading
import warnings
import zlib
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

import numpy as np
from PIL import Image, ImageFile

from convcli import atomic
from convcli.errors import ConvcliError, ImageError, OptionError
from convcli.png import DEFAULT_PNG_LEVEL, PNG_SIGNATURE, encode_png

__all__ = [
    "DEFAULT_MAX_PIXELS",
    "DEFAULT_PNG_LEVEL",
    "FORMATS",
    "LoadedImage",
    "encode_npy",
    "encode_npz",
    "encode_png",
    "encode_tiff",
    "format_from_suffix",
    "read_image",
    "read_size",
    "save_image",
    "write_output",
]

DEFAULT_MAX_PIXELS: int = Image.MAX_IMAGE_PIXELS or 89_478_485
"""Pillow's decompression-bomb limit (about 89.5 million pixels)."""

FORMATS = ("png", "tiff", "npy", "npz")
"""Output formats that :func:`save_image` writes."""

_SUFFIX_FORMATS = {".png": "png", ".tif": "tiff", ".tiff": "tiff", ".npy": "npy", ".npz": "npz"}
_NPY_MAGIC = b"\x93NUMPY"
_STDIN = "-"
_SUPPORTED = "PNG, JPEG, TIFF, BMP, WebP, GIF or .npy"
_pillow_lock = threading.Lock()


@dataclass(frozen=True)
class LoadedImage:
    """An input image as float maps plus what the writer needs to know about it.

    Attributes
    ----------
    pixels : ndarray, (H, W, C)
        The decoded values as stored: uint8 or uint16 for 8/16-bit images,
        int32/float32 for modes I/F, float32 or float64 for ``.npy``.
    array : ndarray, (H, W, C)
        :attr:`pixels` as float32 in the native range (0–255 for 8-bit,
        0–65535 for 16-bit, mode I/F values as stored); ``.npy`` input keeps
        float64 if it was. Made on first use: a caller that can take the
        integer pixels (``conv2d`` converts them band by band) never pays
        for a float copy of the whole image.
    source : str
        The path as given, or ``"-"`` for standard input.
    stem : str
        File stem for output names (``"stdin"`` for ``"-"``).
    mode : str
        Pillow mode of the file (``"L"``, ``"RGB"``, ``"I;16"``, …),
        ``"RGB;16"``/``"RGBA;16"``/``"LA;16"`` for 16-bit colour PNG, or ``"npy"``.
    bit_depth : int
        8 or 16 for integer images (1-bit and P count as 8; mode I is 16 when its
        values fit 0..65535, else 32); 32 for float images and every npy.
    channel_names : tuple of str
        ``("L",)``, ``("L", "A")``, ``("R", "G", "B")``, ``("R", "G", "B", "A")``,
        or ``("c0", "c1", …)`` for npy.
    """

    pixels: np.ndarray
    source: str
    stem: str
    mode: str
    bit_depth: int
    channel_names: tuple[str, ...]

    @functools.cached_property
    def array(self) -> np.ndarray:
        """:attr:`pixels` as contiguous float32 (float64 stays float64)."""
        dtype = np.float64 if self.pixels.dtype == np.float64 else np.float32
        return np.ascontiguousarray(self.pixels, dtype=dtype)

    @property
    def shape(self) -> tuple[int, int, int]:
        """``(H, W, C)`` of :attr:`pixels`."""
        return self.pixels.shape  # type: ignore[return-value]


# ---------------------------------------------------------------------------
# reading


@contextlib.contextmanager
def _pillow_guard() -> Iterator[None]:
    """Disable Pillow's own bomb check (we check ``max_pixels`` ourselves) and
    make sure truncated files fail instead of being padded with gray."""
    with _pillow_lock:
        saved = Image.MAX_IMAGE_PIXELS, ImageFile.LOAD_TRUNCATED_IMAGES
        Image.MAX_IMAGE_PIXELS = None
        ImageFile.LOAD_TRUNCATED_IMAGES = False
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", Image.DecompressionBombWarning)
                yield
        finally:
            Image.MAX_IMAGE_PIXELS, ImageFile.LOAD_TRUNCATED_IMAGES = saved


def _open_source(source: str | os.PathLike) -> tuple[str, BinaryIO]:
    """Return (name for messages, binary file object positioned at 0)."""
    if isinstance(source, str) and source == _STDIN:
        data = sys.stdin.buffer.read()
        if not data:
            raise ImageError("stdin: no input (0 bytes); pipe an image or .npy into `-`")
        return "stdin", io.BytesIO(data)
    name = os.fspath(source)
    if os.path.isdir(name):
        raise ImageError(f"{name}: is a directory, not an image")
    try:
        handle = open(name, "rb")  # noqa: SIM115 - returned to the caller, closed there
    except FileNotFoundError:
        raise ImageError(f"{name}: no such file") from None
    except PermissionError:
        raise ImageError(f"{name}: permission denied") from None
    except OSError as error:
        raise ImageError(f"{name}: cannot open ({error.strerror or error})") from None
    if os.fstat(handle.fileno()).st_size == 0:
        handle.close()
        raise ImageError(f"{name}: empty file (0 bytes), not an image")
    return name, handle  # type: ignore[return-value]


def _check_pixels(name: str, height: int, width: int, max_pixels: int | None) -> None:
    if max_pixels is not None and height * width > max_pixels:
        raise ImageError(
            f"{name}: {height}×{width} (H×W) = {width * height} pixels exceeds the limit of "
            f"{max_pixels} (--max-pixels); refusing to decode it"
        )


def _npy_header(name: str, handle: BinaryIO) -> tuple[tuple[int, ...], np.dtype]:
    """Shape and dtype of an npy stream, from its header only."""
    fmt = np.lib.format
    try:
        version = fmt.read_magic(handle)
        if version == (1, 0):
            shape, _, dtype = fmt.read_array_header_1_0(handle)
        elif version == (2, 0):
            shape, _, dtype = fmt.read_array_header_2_0(handle)
        else:
            shape, _, dtype = fmt._read_array_header(handle, version)
    except Exception as error:  # numpy raises ValueError, OSError, SyntaxError, …
        raise ImageError(f"{name}: not a valid .npy file ({error})") from None
    if dtype.hasobject:
        raise ImageError(f"{name}: .npy holds Python objects (pickled data), which are never loaded")
    if dtype.kind not in "biuf":
        raise ImageError(f"{name}: .npy dtype {dtype} is not supported; use bool, integer or float")
    if len(shape) not in (2, 3) or 0 in shape:
        raise ImageError(f"{name}: .npy must be (H, W) or (H, W, C) with no empty axis, got {shape}")
    return shape, dtype


def _read_npy(name: str, handle: BinaryIO, source: str, stem: str,
              max_pixels: int | None) -> LoadedImage:
    shape, dtype = _npy_header(name, handle)
    _check_pixels(name, shape[0], shape[1], max_pixels)
    handle.seek(0)
    try:
        array = np.load(handle, allow_pickle=False)
    except Exception as error:
        raise ImageError(f"{name}: truncated or corrupt .npy file ({error})") from None
    if array.ndim == 2:
        array = array[:, :, np.newaxis]
    out_dtype = np.float64 if dtype == np.float64 else np.float32
    array = np.ascontiguousarray(array, dtype=out_dtype)
    names = tuple(f"c{index}" for index in range(array.shape[2]))
    return LoadedImage(array, source, stem, "npy", 32, names)


def _verify_png_crcs(name: str, handle: BinaryIO) -> None:
    """Walk the PNG chunks and check every CRC-32 (Pillow does not check IDAT's)."""
    handle.seek(len(PNG_SIGNATURE))
    while True:
        head = handle.read(8)
        if len(head) < 8:
            raise ImageError(f"{name}: truncated PNG (no IEND chunk)")
        length, kind = struct.unpack(">I4s", head)
        crc = zlib.crc32(kind)
        remaining = length
        while remaining:
            piece = handle.read(min(remaining, 1 << 20))
            if not piece:
                raise ImageError(f"{name}: truncated PNG (chunk {kind!r} cut short)")
            crc = zlib.crc32(piece, crc)
            remaining -= len(piece)
        stored = handle.read(4)
        if len(stored) < 4:
            raise ImageError(f"{name}: truncated PNG (chunk {kind!r} has no CRC)")
        if struct.unpack(">I", stored)[0] != crc:
            raise ImageError(f"{name}: corrupt PNG (bad CRC in chunk {kind!r})")
        if kind == b"IEND":
            return


def _orientation(image: Image.Image, *, header_only: bool = False) -> int:
    """The EXIF orientation tag (1 if absent). ``header_only``: for a PNG whose
    eXIf chunk comes after the pixels, give 1 rather than decode the pixels."""
    if header_only and image.format == "PNG" and "exif" not in image.info:
        return 1
    try:
        return int(image.getexif().get(0x0112, 1))
    except Exception:  # a broken EXIF block must not stop the image from loading
        return 1


def _orient(array: np.ndarray, orientation: int) -> np.ndarray:
    """Apply an EXIF orientation (1–8) to ``(H, W, C)``, as ImageOps.exif_transpose."""
    if orientation == 2:
        return array[:, ::-1]
    if orientation == 3:
        return array[::-1, ::-1]
    if orientation == 4:
        return array[::-1]
    if orientation == 5:
        return array.transpose(1, 0, 2)
    if orientation == 6:
        return np.rot90(array, -1)
    if orientation == 7:
        return array.transpose(1, 0, 2)[::-1, ::-1]
    if orientation == 8:
        return np.rot90(array, 1)
    return array


_RGB_MODES = {"RGB": "RGB", "RGBX": "RGB", "YCbCr": "RGB", "CMYK": "RGB",
              "RGBA": "RGBA", "RGBa": "RGBA", "LA": "LA", "La": "LA",
              "L": "L", "1": "L"}
_CHANNELS = {"L": ("L",), "LA": ("L", "A"), "RGB": ("R", "G", "B"), "RGBA": ("R", "G", "B", "A")}
_PNG16_RAWMODES = {"RGB;16B": "RGB;16", "RGBA;16B": "RGBA;16", "LA;16B": "LA;16"}


def _tile_rawmode(image: Image.Image) -> str | None:
    if len(image.tile) != 1:
        return None
    args = image.tile[0].args
    return args if isinstance(args, str) else (args[0] if args else None)


def _with_rawmode(image: Image.Image, rawmode: str) -> None:
    tile = image.tile[0]
    args = rawmode if isinstance(tile.args, str) else (rawmode, *tile.args[1:])
    image.tile = [tile._replace(args=args)]


def _load_png16(handle: BinaryIO, image: Image.Image, rawmode: str) -> np.ndarray:
    """Full-depth pixels of a 16-bit colour PNG, as (H, W, C) uint16.

    Pillow's ``RGB;16B`` unpacker keeps the first (high) byte of each
    big-endian sample and ``RGB;16L`` the second (low) one; both unfilter the
    rows with the same 6- (or 8-) byte pixel stride, so two decodes give both
    halves. 16-bit LA has the stride of 8-bit RGBA and is read as such.
    """
    if rawmode == "LA;16B":
        _with_rawmode(image, "RGBA")
        image.load()
        return np.asarray(image).view(">u2").astype(np.uint16)
    image.load()
    high = np.asarray(image)
    handle.seek(0)
    with Image.open(handle) as again:
        _with_rawmode(again, rawmode.replace(";16B", ";16L"))
        again.load()
        low = np.asarray(again)
    return (high.astype(np.uint16) << 8) | low


def _gray_palette(image: Image.Image) -> bool:
    """True when every palette entry is a gray (R = G = B), e.g. a gray GIF."""
    palette = image.getpalette("RGB")
    if not palette:
        return False
    colours = np.asarray(palette, np.uint8).reshape(-1, 3)
    return bool((colours[:, 0] == colours[:, 1]).all() and (colours[:, 1] == colours[:, 2]).all())


def _native_pixels(handle: BinaryIO,
                   image: Image.Image) -> tuple[np.ndarray, str, int, tuple[str, ...]]:
    """Decode ``image`` → (native array, mode name, bit depth, channel names)."""
    mode = image.mode
    rawmode = _tile_rawmode(image)
    if image.format == "PNG" and rawmode in _PNG16_RAWMODES:
        pixels = _load_png16(handle, image, rawmode)
        mode = _PNG16_RAWMODES[rawmode]
        return pixels, mode, 16, _CHANNELS[mode.split(";")[0]]
    image.load()
    if mode in ("I;16", "I;16L", "I;16B", "I;16N"):
        return np.asarray(image), mode, 16, ("L",)
    if mode == "I":
        pixels = np.asarray(image)
        fits = pixels.min() >= 0 and pixels.max() <= 65535
        return pixels, mode, 16 if fits else 32, ("L",)
    if mode == "F":
        return np.asarray(image), mode, 32, ("L",)
    if mode in ("P", "PA"):
        transparent = mode == "PA" or image.has_transparency_data
        target = ("LA" if transparent else "L") if _gray_palette(image) else \
            ("RGBA" if transparent else "RGB")
    elif mode in _RGB_MODES:
        target = _RGB_MODES[mode]
    else:
        raise ImageError(f"image mode {mode!r} is not supported")
    converted = image if mode == target else image.convert(target)
    return np.asarray(converted), mode, 8, _CHANNELS[target]


def _read_pillow(name: str, handle: BinaryIO, source: str, stem: str,
                 max_pixels: int | None) -> LoadedImage:
    with _pillow_guard():
        try:
            image = Image.open(handle)
        except Image.UnidentifiedImageError:
            raise ImageError(f"{name}: not a recognised image file ({_SUPPORTED})") from None
        except Exception as error:
            raise ImageError(f"{name}: cannot read image header ({error})") from None
        with image:
            width, height = image.size
            _check_pixels(name, height, width, max_pixels)
            if image.format == "PNG":
                _verify_png_crcs(name, handle)
                handle.seek(0)
            try:
                pixels, mode, bit_depth, channel_names = _native_pixels(handle, image)
            except ImageError as error:
                raise ImageError(f"{name}: {error}") from None
            except MemoryError:
                raise ImageError(f"{name}: not enough memory to decode {height}×{width} (H×W)") from None
            except Exception as error:
                raise ImageError(f"{name}: corrupt or truncated image ({error})") from None
            orientation = _orientation(image)  # after decoding: a PNG's getexif() loads it
    if pixels.ndim == 2:
        pixels = pixels[:, :, np.newaxis]
    return LoadedImage(np.ascontiguousarray(_orient(pixels, orientation)), source, stem, mode,
                       bit_depth, channel_names)


def read_image(source: str | os.PathLike, *,
               max_pixels: int | None = DEFAULT_MAX_PIXELS) -> LoadedImage:
    """Read an image file, an ``.npy`` array or standard input as float maps.

    Parameters
    ----------
    source : str or path-like
        A file path, or ``"-"`` to read all of standard input (binary); npy
        and images are told apart by their magic bytes.
    max_pixels : int or None
        Refuse images with more than ``H·W`` pixels, checked from the header
        before any pixel is decoded. Default: Pillow's decompression-bomb
        limit. ``None`` disables the check.

    Returns
    -------
    LoadedImage
        ``array`` is (H, W, C) float32 in the native range (see the module
        table for modes, channels and bit depths).

    Raises
    ------
    ImageError
        Naming the file: missing, a directory, empty, not an image, truncated,
        bad PNG CRC, too many pixels, unsupported mode, npy of the wrong
        shape or dtype, or pickled npy.
    """
    if max_pixels is not None and max_pixels < 1:
        raise OptionError(f"`max_pixels` must be a positive integer or None, got {max_pixels}")
    name, handle = _open_source(source)
    is_stdin = name == "stdin"
    source_text = _STDIN if is_stdin else os.fspath(source)
    stem = "stdin" if is_stdin else Path(source_text).stem
    with handle:
        magic = handle.read(len(_NPY_MAGIC))
        handle.seek(0)
        if magic == _NPY_MAGIC:
            return _read_npy(name, handle, source_text, stem, max_pixels)
        return _read_pillow(name, handle, source_text, stem, max_pixels)


def read_size(source: str | os.PathLike) -> tuple[int, int]:
    """``(H, W)`` of an image or ``.npy`` file from its header, without decoding pixels.

    An EXIF orientation that swaps the axes (5–8) is taken into account.
    Standard input (``"-"``) is read fully; prefer :func:`read_image` there.
    """
    name, handle = _open_source(source)
    with handle:
        if handle.read(len(_NPY_MAGIC)) == _NPY_MAGIC:
            handle.seek(0)
            shape, _ = _npy_header(name, handle)
            return shape[0], shape[1]
        handle.seek(0)
        with _pillow_guard():
            try:
                with Image.open(handle) as image:
                    width, height = image.size
                    swapped = _orientation(image, header_only=True) in (5, 6, 7, 8)
            except Image.UnidentifiedImageError:
                raise ImageError(f"{name}: not a recognised image file ({_SUPPORTED})") from None
            except Exception as error:
                raise ImageError(f"{name}: cannot read image header ({error})") from None
    return (width, height) if swapped else (height, width)


# ---------------------------------------------------------------------------
# writing


# The atomic-write machinery lives in convcli.atomic (shared with the streaming
# sinks); these names stay for this module's callers.
_same_file = atomic.same_file
_output_error = atomic.output_error
_file_mode = atomic.file_mode
_write_all = atomic.write_all
_link_no_clobber = atomic.link_no_clobber


def check_output_target(target: str | os.PathLike, *, force: bool = False,
                        protect: Iterable[str | os.PathLike] = ()) -> None:
    """Raise :class:`OutputError` if :func:`write_output` would refuse ``target``.

    The checks of :func:`write_output` without writing, so that a command can
    check every output of a run before it writes the first one: not an
    input, not a directory, not existing (without ``force``), in an existing
    directory. ``"-"`` (stdout) always passes.
    """
    atomic.check_output_target(target, force=force, protect=protect)


def write_output(target: str | os.PathLike, data: bytes | Callable[[BinaryIO], None], *,
                 force: bool = False, protect: Iterable[str | os.PathLike] = ()) -> None:
    """Write ``data`` to ``target`` atomically, or to standard output for ``"-"``.

    The bytes go to a temporary file ``.convcli-*`` in the target's directory,
    are flushed and fsynced, and the file is renamed into place; on any error
    or interrupt the temporary file is removed, so ``target`` is either
    untouched or complete (:class:`convcli.atomic.AtomicFile`).

    Parameters
    ----------
    target : str or path-like
        Output path, or ``"-"`` for ``sys.stdout.buffer`` (a closed pipe
        raises ``BrokenPipeError`` for the CLI to handle).
    data : bytes or callable
        The content, or a function that writes it to a binary file object.
    force : bool
        Replace an existing file. Without it an existing target is an error.
    protect : iterable of paths
        Inputs that must never be overwritten, not even with ``force``.

    Raises
    ------
    OutputError
        Target exists (without ``force``), is an input or a directory, its
        directory is missing or not writable, or the disk is full.
    """
    if isinstance(target, str) and target == _STDIN:
        stream = sys.stdout.buffer
        if callable(data):
            data(stream)
        else:
            _write_all(stream, data)
        stream.flush()
        return
    path = os.fspath(target)
    check_output_target(path, force=force, protect=protect)
    output = atomic.AtomicFile(path, force=force)
    try:
        if callable(data):
            data(output.stream)
        else:
            output.stream.write(data)
    except BaseException as error:
        output.abort()
        if isinstance(error, OSError) and not isinstance(error, ConvcliError):
            raise _output_error(path, error) from None
        raise
    output.commit()


# ---------------------------------------------------------------------------
# encoders


def encode_npy(array: np.ndarray) -> bytes:
    """The ``.npy`` file of ``array`` (dtype and shape kept, no pickling)."""
    buffer = io.BytesIO()
    np.save(buffer, np.asarray(array), allow_pickle=False)
    return buffer.getvalue()


def encode_npz(arrays: Mapping[str, np.ndarray]) -> bytes:
    """An uncompressed ``.npz`` archive holding one named array per entry."""
    buffer = io.BytesIO()
    np.savez(buffer, **{name: np.asarray(array) for name, array in arrays.items()})
    return buffer.getvalue()


_TIFF_8BIT_CHANNELS = (1, 2, 3, 4)  # L, LA, RGB, RGBA pages


def encode_tiff(array: np.ndarray) -> bytes:
    """An uncompressed TIFF of ``array`` (H, W) or (H, W, C).

    - uint8: one page in mode L, LA, RGB or RGBA for C = 1..4;
    - uint16: mode I;16, one page per channel;
    - float (any float dtype, stored as float32): mode F, one page per channel.

    Multi-page files are read back page by page (``Image.seek``); other
    uint8 channel counts also become one page per channel.
    """
    array = np.asarray(array)
    if array.ndim == 2:
        array = array[:, :, np.newaxis]
    if array.ndim != 3 or 0 in array.shape:
        raise OptionError(f"TIFF output needs (H, W) or (H, W, C) data, got shape {array.shape}")
    channels = array.shape[2]
    if array.dtype == np.uint8 and channels in _TIFF_8BIT_CHANNELS:
        pages = [Image.fromarray(np.ascontiguousarray(array[:, :, 0] if channels == 1 else array))]
    elif array.dtype in (np.uint8, np.uint16):
        pages = [Image.fromarray(np.ascontiguousarray(array[:, :, c])) for c in range(channels)]
    elif array.dtype.kind == "f":
        pages = [Image.fromarray(np.ascontiguousarray(array[:, :, c], dtype=np.float32))
                 for c in range(channels)]
    else:
        raise OptionError(f"TIFF output needs uint8, uint16 or float data, got {array.dtype}")
    buffer = io.BytesIO()
    pages[0].save(buffer, format="TIFF", save_all=len(pages) > 1, append_images=pages[1:])
    return buffer.getvalue()


def format_from_suffix(path: str | os.PathLike) -> str | None:
    """``"png"``, ``"tiff"``, ``"npy"`` or ``"npz"`` from the file suffix, else None."""
    return _SUFFIX_FORMATS.get(Path(os.fspath(path)).suffix.lower())


def save_image(target: str | os.PathLike, pixels_or_float: np.ndarray | Mapping[str, np.ndarray],
               *, format: str, force: bool = False, protect: Iterable[str | os.PathLike] = (),
               compress_level: int = DEFAULT_PNG_LEVEL) -> None:
    """Encode in ``format`` (one of :data:`FORMATS`) and :func:`write_output` it.

    ``png`` takes uint8/uint16 pixels (see :func:`convcli.display.to_pixels`),
    ``tiff`` pixels or float maps, ``npy`` any array, ``npz`` a mapping of
    names to arrays (a single array is stored under the name ``"maps"``).
    """
    if format not in FORMATS:
        raise OptionError(f"`format` must be one of {', '.join(FORMATS)}, got {format!r}")
    if format == "npz":
        arrays = pixels_or_float if isinstance(pixels_or_float, Mapping) \
            else {"maps": pixels_or_float}
        data = encode_npz(arrays)
    elif isinstance(pixels_or_float, Mapping):
        raise OptionError(f"format {format!r} takes one array, not a mapping of arrays")
    elif format == "png":
        data = encode_png(pixels_or_float, compress_level=compress_level)
    elif format == "tiff":
        data = encode_tiff(pixels_or_float)
    else:
        data = encode_npy(pixels_or_float)
    write_output(target, data, force=force, protect=protect)
