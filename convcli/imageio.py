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
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, BinaryIO

import numpy as np
from PIL import Image, ImageFile

from convcli import atomic
from convcli.errors import ConvcliError, ImageError, OptionError
from convcli.png import DEFAULT_PNG_LEVEL, PNG_SIGNATURE, encode_png

__all__ = [
    "DEFAULT_MAX_PIXELS",
    "DEFAULT_PNG_LEVEL",
    "DEFAULT_QUALITY",
    "FORMATS",
    "LoadedImage",
    "encode_jpeg",
    "encode_npy",
    "encode_npz",
    "encode_png",
    "encode_tiff",
    "encode_tiff_pages",
    "encode_webp",
    "format_from_suffix",
    "frame_count",
    "frame_stem",
    "parse_frames",
    "read_frames",
    "read_image",
    "read_metadata",
    "read_size",
    "save_image",
    "select_frames",
    "write_output",
]

DEFAULT_MAX_PIXELS: int = Image.MAX_IMAGE_PIXELS or 89_478_485
"""Pillow's decompression-bomb limit (about 89.5 million pixels)."""

FORMATS = ("png", "tiff", "jpeg", "webp", "npy", "npz")
"""Output formats that :func:`save_image` writes."""

_SUFFIX_FORMATS = {".png": "png", ".tif": "tiff", ".tiff": "tiff", ".jpg": "jpeg", ".jpeg": "jpeg",
                   ".webp": "webp", ".npy": "npy", ".npz": "npz"}
_NPY_MAGIC = b"\x93NUMPY"
_STDIN = "-"
_SUPPORTED = "PNG, JPEG, TIFF, BMP, WebP, GIF, .npy or a zarr array directory"
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
    metadata : dict
        What an output may carry over (:func:`read_metadata`): any of
        ``icc_profile`` (bytes), ``exif`` (bytes, ``Exif\\0\\0`` + TIFF block, its
        Orientation already reset to 1: the pixels are upright), ``dpi``
        ((x, y) floats, a PNG's 299.9994 given as 300) and ``text`` (dict of
        PNG text chunks). Empty for ``.npy``.
    frame : int or None
        Index of this frame in a multi-frame file (:func:`read_frames`), from 0;
        None for a single image.
    n_frames : int
        Frames (GIF/WebP) or pages (TIFF) in the file.
    """

    pixels: np.ndarray
    source: str
    stem: str
    mode: str
    bit_depth: int
    channel_names: tuple[str, ...]
    metadata: Mapping[str, Any] = field(default_factory=dict)
    frame: int | None = None
    n_frames: int = 1

    @functools.cached_property
    def array(self) -> np.ndarray:
        """:attr:`pixels` as contiguous float32 (float64 stays float64)."""
        dtype = np.float64 if self.pixels.dtype == np.float64 else np.float32
        return np.ascontiguousarray(self.pixels, dtype=dtype)

    @functools.cached_property
    def float_unit(self) -> bool:
        """True for a float image whose values all lie in ``[0, 1]`` (NaN ignored).

        Such an image is a ``[0, 1]`` image: its maps are shown ×255 (×65535)
        by :func:`convcli.display.plan_display` (``float_unit=True``), and its
        alpha, if any, is opaque at 1.
        """
        if self.pixels.dtype.kind != "f" or not self.pixels.size:
            return False
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)  # all NaN
            low, high = float(np.nanmin(self.pixels)), float(np.nanmax(self.pixels))
        return bool(low >= 0.0 and high <= 1.0)

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


def _open_input(source: str | os.PathLike,
                max_pixels: int | None) -> tuple[str, BinaryIO, str, str, bool]:
    """Check ``max_pixels`` and open ``source`` as :func:`read_image` and :func:`read_frames` do.

    Returns (name for messages, binary file object positioned at 0, the
    source as given or ``"-"``, stem for output names, whether it starts
    with the ``.npy`` magic). Raises :class:`OptionError` for ``max_pixels``
    < 1 and :class:`ImageError` as :func:`_open_source`.
    """
    if max_pixels is not None and max_pixels < 1:
        raise OptionError(f"`max_pixels` must be a positive integer or None, got {max_pixels}")
    name, handle = _open_source(source)
    is_stdin = name == "stdin"
    source_text = _STDIN if is_stdin else os.fspath(source)
    stem = "stdin" if is_stdin else Path(source_text).stem
    try:
        magic = handle.read(len(_NPY_MAGIC))
        handle.seek(0)
    except BaseException:
        handle.close()
        raise
    return name, handle, source_text, stem, magic == _NPY_MAGIC


def _open_pillow(name: str, handle: BinaryIO) -> Image.Image:
    """``Image.open(handle)`` (header only); :class:`ImageError` naming ``name`` if Pillow cannot."""
    try:
        return Image.open(handle)
    except Image.UnidentifiedImageError:
        raise ImageError(f"{name}: not a recognised image file ({_SUPPORTED})") from None
    except Exception as error:
        raise ImageError(f"{name}: cannot read image header ({error})") from None


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


def _load_npy(name: str, handle: BinaryIO) -> np.ndarray:
    """The whole ``.npy`` of ``handle`` (read from its start, no pickles) as (H, W, C), stored dtype.

    Raises :class:`ImageError` naming ``name`` when it is truncated or corrupt.
    """
    handle.seek(0)
    try:
        array = np.load(handle, allow_pickle=False)
    except Exception as error:
        raise ImageError(f"{name}: truncated or corrupt .npy file ({error})") from None
    return array[:, :, np.newaxis] if array.ndim == 2 else array


def _read_npy(name: str, handle: BinaryIO, source: str, stem: str,
              max_pixels: int | None) -> LoadedImage:
    shape, dtype = _npy_header(name, handle)
    _check_pixels(name, shape[0], shape[1], max_pixels)
    array = _load_npy(name, handle)
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


_JPEG_END = b"\xff\xd9"


def _decode_jpeg_direct(handle: BinaryIO, image: Image.Image) -> np.ndarray | None:
    """A baseline or progressive RGB / gray JPEG decoded by libjpeg-turbo (imagecodecs) straight
    into one numpy array, or None to let Pillow decode it.

    The pixels are Pillow's (the same libjpeg-turbo decoder and defaults; RGB
    and gray JPEGs of every subsampling, progressive and restart-marker
    layout are tested equal), at about a third of the time and without
    Pillow's RGBX image and its packed copy (a 12 MP photo peaked at 3.4× its
    size). Left to Pillow, which also words the errors: CMYK and Adobe
    JPEGs, data that does not end in EOI (truncated: Pillow refuses it,
    libjpeg would fill grey), and anything the fast decoder refuses.
    """
    if image.format != "JPEG" or image.mode not in ("RGB", "L") or "adobe" in image.info:
        return None
    try:
        import imagecodecs
    except ImportError:  # pragma: no cover - a core dependency
        return None
    handle.seek(0)
    data = handle.read()
    if not data.rstrip(b"\0").endswith(_JPEG_END):
        return None
    try:
        pixels = imagecodecs.jpeg8_decode(data)
    except Exception:  # Pillow decodes it, or says what is wrong
        return None
    width, height = image.size
    if pixels.dtype != np.uint8 or pixels.shape != ((height, width, 3) if image.mode == "RGB"
                                                     else (height, width)):
        return None
    return pixels


def _native_pixels(handle: BinaryIO,
                   image: Image.Image) -> tuple[np.ndarray, str, int, tuple[str, ...]]:
    """Decode ``image`` → (native array, mode name, bit depth, channel names)."""
    mode = image.mode
    direct = _decode_jpeg_direct(handle, image)
    if direct is not None:
        return direct, mode, 8, _CHANNELS[mode]
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


_EXIF_ORIENTATION = 0x0112
_EXIF_HEADER = b"Exif\x00\x00"


def _nice_dpi(value: float) -> float:
    """A resolution as the user gave it: PNG stores pixels per metre, so 300 dpi reads
    back as 299.9994 (11811 / 39.37); within 0.01 of a whole number it is that number."""
    nearest = round(float(value))
    return float(nearest) if abs(float(value) - nearest) < 0.01 else float(value)


def read_metadata(image: Image.Image) -> dict[str, Any]:
    """What an output carries over from an open Pillow image (see :attr:`LoadedImage.metadata`).

    ``exif`` is taken only from a real EXIF block (JPEG APP1, PNG eXIf, WebP
    EXIF), not from a TIFF's own tags; its Orientation is set to 1 because the
    pixels are read upright. A broken EXIF block is dropped, not fatal.
    """
    metadata: dict[str, Any] = {}
    info = image.info
    icc = info.get("icc_profile")
    if isinstance(icc, bytes) and icc:
        metadata["icc_profile"] = icc
    if image.format != "TIFF" and info.get("exif"):
        try:
            exif = image.getexif()
            if _EXIF_ORIENTATION in exif:
                exif[_EXIF_ORIENTATION] = 1
            data = exif.tobytes()
            if len(data) > len(_EXIF_HEADER) + 8:
                metadata["exif"] = data if data.startswith(_EXIF_HEADER) else _EXIF_HEADER + data
        except Exception:  # a broken EXIF block must not stop the image from loading
            pass
    dpi = info.get("dpi")
    if isinstance(dpi, tuple) and len(dpi) == 2:
        try:
            values = (_nice_dpi(dpi[0]), _nice_dpi(dpi[1]))
        except (TypeError, ValueError):
            values = (0.0, 0.0)
        if all(np.isfinite(v) and v > 0 for v in values):
            metadata["dpi"] = values
    text = getattr(image, "text", None) if image.format == "PNG" else None
    if text:
        metadata["text"] = {str(key): str(value) for key, value in text.items()}
    return metadata


def _read_pillow(name: str, handle: BinaryIO, source: str, stem: str,
                 max_pixels: int | None) -> LoadedImage:
    with _pillow_guard():
        image = _open_pillow(name, handle)
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
            metadata = read_metadata(image)
            n_frames = int(getattr(image, "n_frames", 1) or 1)
    if pixels.ndim == 2:
        pixels = pixels[:, :, np.newaxis]
    return LoadedImage(np.ascontiguousarray(_orient(pixels, orientation)), source, stem, mode,
                       bit_depth, channel_names, metadata, None, n_frames)


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
    name, handle, source_text, stem, is_npy = _open_input(source, max_pixels)
    with handle:
        if is_npy:
            return _read_npy(name, handle, source_text, stem, max_pixels)
        return _read_pillow(name, handle, source_text, stem, max_pixels)


_FRAMES_HELP = "`--frames` must be all, N or A-B (frames counted from 0)"


def parse_frames(spec: str | int) -> tuple[int, int | None]:
    """``--frames`` text → ``(first, last)``, both inclusive; ``last`` None means to the end.

    ``all`` → ``(0, None)``; ``N`` → ``(N, N)``; ``A-B`` → ``(A, B)`` with
    ``A ≤ B``; frames are counted from 0. Anything else raises
    :class:`OptionError`.
    """
    text = str(spec).strip().lower().replace(" ", "")
    if text == "all":
        return 0, None
    first_text, dash, last_text = text.partition("-")
    if not first_text.isdigit() or (dash and not last_text.isdigit()):
        raise OptionError(f"{_FRAMES_HELP}, got {spec!r}")
    first = int(first_text)
    last = int(last_text) if dash else first
    if last < first:
        raise OptionError(f"`--frames {spec}`: the range runs backwards (A-B needs A ≤ B)")
    return first, last


def select_frames(spec: str | int, n_frames: int, name: str) -> range:
    """The frame indices of ``spec`` (:func:`parse_frames`) in a file of ``n_frames`` frames.

    Raises :class:`OptionError` naming the file when a frame is past the end.
    """
    first, last = parse_frames(spec)
    if last is None:
        return range(n_frames)
    if last >= n_frames:
        has = "1 frame (0)" if n_frames == 1 else f"{n_frames} frames (0-{n_frames - 1})"
        raise OptionError(f"`--frames {spec}`: {name} has {has}")
    return range(first, last + 1)


def frame_count(source: str | os.PathLike) -> int:
    """Frames (GIF, WebP, APNG) or pages (TIFF) in an image file, from its headers; 1 for
    ``.npy``, standard input and anything Pillow cannot open (the read reports those)."""
    if isinstance(source, str) and source == _STDIN:
        return 1
    try:
        _, handle = _open_source(source)
    except ImageError:
        return 1
    with handle:
        magic = handle.read(len(_NPY_MAGIC))
        if magic == _NPY_MAGIC:
            return 1
        handle.seek(0)
        if magic[:4] in (b"II*\x00", b"MM\x00*", b"II+\x00", b"MM\x00+"):
            # tifffile counts the pages of every TIFF variant (Pillow misreads big-endian
            # BigTIFF: one page, and warnings on stderr); the pages are read by tifffile too
            try:
                import tifffile

                with tifffile.TiffFile(handle) as tif:
                    return max(1, len(tif.pages))
            except Exception:
                handle.seek(0)
        with _pillow_guard():
            try:
                with Image.open(handle) as image:
                    return max(1, int(getattr(image, "n_frames", 1) or 1))
            except Exception:
                return 1


def frame_stem(stem: str, frame: int | None, last: int) -> str:
    """``stem.fNNN`` for ``frame`` of a multi-frame input, the index zero-padded to the width of
    ``last`` (the last frame written): frames 0-12 give ``photo.f00`` … ``photo.f12``; ``stem``
    itself for a single image (``frame`` None)."""
    if frame is None:
        return stem
    return f"{stem}.f{frame:0{len(str(max(last, frame)))}d}"


def _unify_channels(decoded: list[tuple[np.ndarray, str, int, tuple[str, ...]]]
                    ) -> list[tuple[np.ndarray, str, int, tuple[str, ...]]]:
    """Give every 8/16-bit frame the same channels: gray → RGB if any frame has colour,
    an opaque alpha if any frame has alpha (a GIF's first frame may be gray or opaque)."""
    names = {frame[3] for frame in decoded}
    depths = {frame[2] for frame in decoded}
    if len(names) == 1 or not depths <= {8, 16} or len(depths) != 1 \
            or not names <= set(_CHANNELS.values()):
        return decoded
    colour = any(len(n) >= 3 for n in names)
    alpha = any(n[-1] == "A" for n in names)
    target = ("R", "G", "B") if colour else ("L",)
    target += ("A",) * alpha
    opaque = 255 if depths == {8} else 65535
    unified = []
    for pixels, mode, depth, frame_names in decoded:
        if pixels.ndim == 2:
            pixels = pixels[:, :, np.newaxis]
        value = pixels[:, :, :-1] if frame_names[-1] == "A" else pixels
        if colour and value.shape[2] == 1:
            value = np.repeat(value, 3, axis=2)
        if alpha:
            alpha_plane = pixels[:, :, -1:] if frame_names[-1] == "A" \
                else np.full((*pixels.shape[:2], 1), opaque, pixels.dtype)
            value = np.concatenate([value, alpha_plane], axis=2)
        unified.append((value, mode, depth, target))
    return unified


def read_frames(source: str | os.PathLike, frames: str | int = "all", *,
                max_pixels: int | None = DEFAULT_MAX_PIXELS) -> list[LoadedImage]:
    """Every frame of an animated GIF/WebP/PNG or every page of a multi-page TIFF.

    Frames are composited as a viewer shows them: Pillow pastes a GIF frame
    stored as a partial rectangle over the previous frame after that
    frame's disposal (and so do libwebp and the APNG reader), and gives the
    frame from its second on in RGB or RGBA. All frames of one file get the
    same channels (a gray or opaque first frame is widened to the others').
    TIFF pages are read as they are, each with its own size and mode.

    Parameters
    ----------
    source : str or path-like
        As :func:`read_image` (``"-"`` for standard input).
    frames : str or int
        ``all`` (default), ``N`` or ``A-B`` (inclusive), counted from 0.
    max_pixels : int or None
        Per frame, as :func:`read_image`.

    Returns
    -------
    list of LoadedImage
        In frame order; ``frame`` is the index in the file and ``n_frames``
        the file's count (a one-frame file gives ``frame=None``). Metadata
        and the EXIF orientation of the file apply to every frame.

    Raises
    ------
    ImageError
        As :func:`read_image`.
    OptionError
        A bad ``frames`` spec, or a frame past the end of the file.
    """
    parse_frames(frames)  # a bad spec fails before the file is opened
    name, handle, source_text, stem, is_npy = _open_input(source, max_pixels)
    with handle:
        if is_npy:
            select_frames(frames, 1, name)
            return [_read_npy(name, handle, source_text, stem, max_pixels)]
        with _pillow_guard():
            image = _open_pillow(name, handle)
            with image:
                n_frames = int(getattr(image, "n_frames", 1) or 1)
                indices = select_frames(frames, n_frames, name)
                if image.format == "PNG":
                    _verify_png_crcs(name, handle)
                    handle.seek(0)
                decoded = []
                for index in indices:
                    try:
                        image.seek(index)
                        _check_pixels(name, image.size[1], image.size[0], max_pixels)
                        if index == 0 or image.format != "PNG":
                            decoded.append(_native_pixels(handle, image))
                        else:  # APNG frames after the first: no 16-bit re-decode of the file
                            image.load()
                            decoded.append(_native_pixels(handle, image.copy()))
                    except (ImageError, OptionError) as error:
                        raise type(error)(f"{name}: frame {index}: {error}") from None
                    except MemoryError:
                        raise ImageError(f"{name}: frame {index}: not enough memory to decode") from None
                    except Exception as error:
                        raise ImageError(f"{name}: frame {index}: corrupt or truncated ({error})") from None
                image.seek(0)
                orientation = _orientation(image)
                metadata = read_metadata(image)
    results = []
    for index, (pixels, mode, bit_depth, channel_names) in zip(indices, _unify_channels(decoded)):
        if pixels.ndim == 2:
            pixels = pixels[:, :, np.newaxis]
        results.append(LoadedImage(np.ascontiguousarray(_orient(pixels, orientation)), source_text,
                                   stem, mode, bit_depth, channel_names, metadata,
                                   index if n_frames > 1 else None, n_frames))
    return results


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
            image = _open_pillow(name, handle)
            try:
                with image:
                    width, height = image.size
                    swapped = _orientation(image, header_only=True) in (5, 6, 7, 8)
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
    output = atomic.open_output_file(path, force=force, buffered=True)
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


def _metadata(metadata: Mapping[str, Any] | None, strip: bool) -> Mapping[str, Any]:
    return {} if strip or not metadata else metadata


def _to_8bit(pixels: np.ndarray, what: str, notes: list[str] | None) -> np.ndarray:
    """uint8 pixels; uint16 → ``rint(x / 257)`` with a note; anything else an OptionError."""
    pixels = np.asarray(pixels)
    if pixels.ndim == 2:
        pixels = pixels[:, :, np.newaxis]
    if pixels.ndim != 3 or pixels.shape[2] not in (1, 2, 3, 4) or 0 in pixels.shape:
        raise OptionError(f"{what} output needs (H, W) or (H, W, C) pixels with C in 1..4, got shape "
                          f"{pixels.shape}")
    if pixels.dtype == np.uint8:
        return pixels
    if pixels.dtype == np.uint16:
        if notes is not None:
            notes.append(f"{what} holds 8-bit samples only: the 16-bit map was converted to 8 bits")
        return np.rint(pixels / 257.0).astype(np.uint8)
    raise OptionError(f"{what} output needs uint8 (or uint16) pixels, got {pixels.dtype}; "
                      f"use -f tiff or npy for float maps")


def _check_quality(quality: int) -> int:
    if isinstance(quality, bool) or not isinstance(quality, (int, np.integer)) or not 1 <= quality <= 100:
        raise OptionError(f"`--quality` must be an integer 1..100, got {quality!r}")
    return int(quality)


DEFAULT_QUALITY = 90
"""JPEG/WebP quality when none is given (libvips and ImageMagick use 75-92)."""

_FULL_CHROMA_FROM = 90  # quality at and above which JPEG keeps full-resolution colour (4:4:4)


def encode_jpeg(pixels: np.ndarray, *, quality: int = DEFAULT_QUALITY,
                metadata: Mapping[str, Any] | None = None, strip: bool = False,
                background: Sequence[float] | None = None, notes: list[str] | None = None) -> bytes:
    """A baseline JPEG of 8-bit gray or RGB ``pixels``.

    Parameters
    ----------
    pixels : ndarray, uint8 (or uint16), (H, W) or (H, W, C), C in 1..4
        uint16 is converted to 8 bits (``rint(x / 257)``) with a note. An
        alpha channel (C = 2 or 4) is flattened, ``x · a + b · (1 − a)``, over
        ``background`` (8-bit values, one per colour channel; default black)
        with a note: JPEG has no alpha.
    quality : int, 1..100
        Default 90. At 90 and above the chroma is not subsampled (4:4:4), as
        libvips and ImageMagick do, so a thin red line stays red; below, 4:2:0.
    metadata : mapping or None
        :attr:`LoadedImage.metadata`: ICC profile, EXIF and dpi are written;
        PNG text chunks have no place in a JPEG (JFIF comments are not used).
    strip : bool
        Write no metadata at all.
    notes : list or None
        One-line notes for the user are appended here.

    Returns
    -------
    bytes
    """
    quality = _check_quality(quality)
    pixels = _to_8bit(pixels, "JPEG", notes)
    if pixels.shape[2] in (2, 4):
        colour = pixels[:, :, :-1].astype(np.float32)
        coverage = pixels[:, :, -1:].astype(np.float32) / 255.0
        back = np.zeros(colour.shape[2], np.float32) if background is None \
            else np.asarray(background, np.float32)
        pixels = np.clip(np.rint(colour * coverage + back * (1.0 - coverage)), 0, 255).astype(np.uint8)
        if notes is not None:
            notes.append("JPEG has no alpha: the map was flattened over "
                         + ("black" if background is None else "the background"))
    image = Image.fromarray(np.ascontiguousarray(pixels[:, :, 0] if pixels.shape[2] == 1 else pixels))
    options: dict[str, Any] = {"quality": quality,
                               "subsampling": 0 if quality >= _FULL_CHROMA_FROM else 2}
    kept = _metadata(metadata, strip)
    if kept.get("icc_profile"):
        options["icc_profile"] = kept["icc_profile"]
    if kept.get("exif"):
        options["exif"] = kept["exif"]
    if kept.get("dpi"):
        options["dpi"] = tuple(round(float(v)) for v in kept["dpi"])
    buffer = io.BytesIO()
    image.save(buffer, format="JPEG", **options)
    return buffer.getvalue()


def encode_webp(frames: np.ndarray | Sequence[np.ndarray], *, quality: int = DEFAULT_QUALITY,
                lossless: bool = False, metadata: Mapping[str, Any] | None = None,
                strip: bool = False, duration: int | Sequence[int] | None = None,
                notes: list[str] | None = None) -> bytes:
    """A WebP of 8-bit pixels, or an animated WebP of several frames.

    Parameters
    ----------
    frames : ndarray (H, W[, C]) or sequence of them, uint8 (or uint16), C in 1..4
        One image or the frames of an animation (same shape). Gray (C = 1, 2)
        is stored as RGB(A) (WebP has no gray mode); uint16 is converted to 8
        bits with a note.
    quality : int, 1..100
        Lossy quality, default 90 (with ``lossless``: the compression effort).
    lossless : bool
        Exact pixels; the colour under fully transparent pixels is kept too
        (libwebp's ``exact``), so ``--alpha channel`` maps survive.
    metadata : mapping or None
        ICC profile and EXIF are written (WebP has no dpi or text fields).
    strip : bool
        Write no metadata at all.
    duration : int or sequence of int or None
        Milliseconds per frame of an animation (default 100).
    notes : list or None
        One-line notes for the user are appended here.
    """
    quality = _check_quality(quality)
    stack = [frames] if isinstance(frames, np.ndarray) else list(frames)
    if not stack:
        raise OptionError("WebP output needs at least one frame")
    images = []
    for index, frame in enumerate(stack):
        pixels = _to_8bit(frame, "WebP", notes if index == 0 else None)
        if pixels.shape[2] in (1, 2):
            pixels = np.concatenate([np.repeat(pixels[:, :, :1], 3, axis=2), pixels[:, :, 1:]], axis=2)
        images.append(Image.fromarray(np.ascontiguousarray(pixels)))
    if len({image.size for image in images}) != 1 or len({image.mode for image in images}) != 1:
        raise OptionError("an animated WebP needs frames of one shape")
    options: dict[str, Any] = {"quality": quality, "lossless": bool(lossless), "exact": bool(lossless)}
    kept = _metadata(metadata, strip)
    if kept.get("icc_profile"):
        options["icc_profile"] = kept["icc_profile"]
    if kept.get("exif"):
        options["exif"] = kept["exif"]
    if len(images) > 1:
        options.update(save_all=True, append_images=images[1:],
                       duration=list(duration) if isinstance(duration, Sequence) else (duration or 100))
    buffer = io.BytesIO()
    images[0].save(buffer, format="WEBP", **options)
    return buffer.getvalue()


_TIFF_8BIT_CHANNELS = (1, 2, 3, 4)  # L, LA, RGB, RGBA pages
_TIFF_TEXT_TAGS = {"description": 270, "software": 305, "author": 315, "artist": 315,
                   "copyright": 33432, "title": 269}  # PNG text keys with a TIFF tag of their own


def _tiff_tags(metadata: Mapping[str, Any]) -> dict[str, Any]:
    """Pillow TIFF save options for ``metadata``: dpi, ICC profile, text as tags.

    Text keys Description, Software, Author/Artist, Copyright and Title go to
    their TIFF tags; the other keys are added to ImageDescription as
    ``key: value`` lines; non-ASCII text is stored as UTF-8. EXIF is not
    written into TIFF outputs.
    """
    options: dict[str, Any] = {}
    if metadata.get("dpi"):
        options["dpi"] = tuple(float(v) for v in metadata["dpi"])
    if metadata.get("icc_profile"):
        options["icc_profile"] = metadata["icc_profile"]
    tags: dict[int, str] = {}
    extra_lines = []
    for key, value in (metadata.get("text") or {}).items():
        tag = _TIFF_TEXT_TAGS.get(str(key).lower())
        if tag is not None and tag not in tags:
            tags[tag] = str(value)
        else:
            extra_lines.append(f"{key}: {value}")
    if extra_lines:
        tags[270] = "\n".join(([tags[270]] if 270 in tags else []) + extra_lines)
    if tags:  # ASCII tags; other text as UTF-8 bytes, as tifffile and exiftool write and read it
        options["tiffinfo"] = {tag: text if text.isascii() else text.encode()
                               for tag, text in tags.items()}
    return options


def encode_tiff(array: np.ndarray, *, metadata: Mapping[str, Any] | None = None,
                strip: bool = False) -> bytes:
    """An uncompressed TIFF of ``array`` (H, W) or (H, W, C).

    - uint8: one page in mode L, LA, RGB or RGBA for C = 1..4;
    - uint16: mode I;16, one page per channel;
    - float (any float dtype, stored as float32): mode F, one page per channel.

    Multi-page files are read back page by page (``Image.seek``); other
    uint8 channel counts also become one page per channel. ``metadata``
    (:attr:`LoadedImage.metadata`; ``strip`` drops it) gives every page its
    resolution (dpi; without it readers assume 72 or 1), ICC profile and text
    tags (:func:`_tiff_tags`).
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
    options = _tiff_tags(_metadata(metadata, strip))  # Pillow gives every page the same tags
    buffer = io.BytesIO()
    pages[0].save(buffer, format="TIFF", save_all=len(pages) > 1, append_images=pages[1:], **options)
    return buffer.getvalue()


def encode_tiff_pages(pages: Sequence[np.ndarray], *, metadata: Mapping[str, Any] | None = None,
                      strip: bool = False) -> bytes:
    """A multi-page TIFF: one page per frame, each ``(H, W, N)`` samples (uint8, uint16 or float32).

    Pages of 3 or 4 samples are RGB (the fourth an extra sample, alpha), others
    gray with extra samples; deflate-compressed. ``metadata`` gives every page
    its dpi and ICC profile (unless ``strip``).
    """
    import tifffile

    kept = _metadata(metadata, strip)
    options: dict[str, Any] = {"compression": "zlib", "metadata": None}
    if kept.get("dpi"):
        options["resolution"] = tuple(float(v) for v in kept["dpi"])
        options["resolutionunit"] = "INCH"
    if kept.get("icc_profile"):
        options["iccprofile"] = bytes(kept["icc_profile"])
    buffer = io.BytesIO()
    with tifffile.TiffWriter(buffer, bigtiff=sum(p.nbytes for p in pages) > 2**32 - 2**25) as writer:
        for page in pages:
            page = np.asarray(page)
            if page.ndim == 2:
                page = page[:, :, np.newaxis]
            if page.dtype.kind == "f":
                page = page.astype(np.float32, copy=False)
            elif page.dtype not in (np.uint8, np.uint16):
                raise OptionError(f"TIFF output needs uint8, uint16 or float data, got {page.dtype}")
            samples = page.shape[2]
            rgb = samples in (3, 4) and page.dtype.kind == "u"
            extra = {"extrasamples": ("unassalpha",)} if rgb and samples == 4 else {}
            writer.write(np.ascontiguousarray(page if samples > 1 else page[:, :, 0]),
                         photometric="rgb" if rgb else "minisblack",
                         planarconfig="contig" if samples > 1 else None, **extra, **options)
    return buffer.getvalue()


def format_from_suffix(path: str | os.PathLike) -> str | None:
    """``"png"``, ``"tiff"``, ``"jpeg"`` (.jpg/.jpeg), ``"webp"``, ``"npy"`` or ``"npz"`` from the
    file suffix (any case), else None."""
    return _SUFFIX_FORMATS.get(Path(os.fspath(path)).suffix.lower())


def save_image(target: str | os.PathLike, pixels_or_float: np.ndarray | Mapping[str, np.ndarray],
               *, format: str, force: bool = False, protect: Iterable[str | os.PathLike] = (),
               compress_level: int = DEFAULT_PNG_LEVEL, quality: int = DEFAULT_QUALITY,
               lossless: bool = False, metadata: Mapping[str, Any] | None = None, strip: bool = False,
               notes: list[str] | None = None) -> None:
    """Encode in ``format`` (one of :data:`FORMATS`) and :func:`write_output` it.

    ``png`` takes uint8/uint16 pixels (see :func:`convcli.display.to_pixels`),
    ``jpeg``/``webp`` uint8 (uint16 converted, with a note in ``notes``),
    ``tiff`` pixels or float maps, ``npy`` any array, ``npz`` a mapping of
    names to arrays (a single array is stored under the name ``"maps"``).
    ``metadata`` (:attr:`LoadedImage.metadata`) is written into PNG, JPEG,
    WebP and TIFF outputs unless ``strip``; ``quality`` is JPEG's and WebP's,
    ``lossless`` WebP's.
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
        data = encode_png(pixels_or_float, compress_level=compress_level,
                          metadata=_metadata(metadata, strip))
    elif format == "tiff":
        data = encode_tiff(pixels_or_float, metadata=metadata, strip=strip)
    elif format == "jpeg":
        data = encode_jpeg(pixels_or_float, quality=quality, metadata=metadata, strip=strip, notes=notes)
    elif format == "webp":
        data = encode_webp(pixels_or_float, quality=quality, lossless=lossless, metadata=metadata,
                           strip=strip, notes=notes)
    else:
        data = encode_npy(pixels_or_float)
    write_output(target, data, force=force, protect=protect)
