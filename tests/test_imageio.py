"""Image input/output: every mode and format against Pillow, errors, atomic writes, PNG encoder."""

from __future__ import annotations

import errno
import io
import os
import struct
import sys
import tempfile
import types
import zlib
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from PIL import Image, ImageFile, ImageOps
from reference import reference_png_decode

from convcli.errors import ConvcliError, ImageError, OptionError, OutputError, ShapeError
from convcli.imageio import (
    DEFAULT_MAX_PIXELS,
    FORMATS,
    _decode_jpeg_direct,
    encode_npy,
    encode_npz,
    encode_tiff,
    format_from_suffix,
    read_image,
    read_size,
    save_image,
    write_output,
)
from convcli.png import adler32_combine, encode_png

SAMPLES = Path(__file__).resolve().parent.parent / "sample_images"
RNG = np.random.default_rng(20240601)


def _random(shape, dtype=np.uint8):
    return RNG.integers(0, np.iinfo(dtype).max + 1, shape, dtype=dtype)


@pytest.mark.parametrize("dtype", [np.uint8, np.uint16])
@pytest.mark.parametrize("channels", [1, 2, 3, 4])
@pytest.mark.parametrize("size", [(1, 1), (2, 3), (13, 7)])
@pytest.mark.parametrize("level", [0, 1, 4, 9])
def test_encode_png_matches_reference_decoder(dtype, channels, size, level):
    pixels = _random((*size, channels), dtype)
    decoded = reference_png_decode(encode_png(pixels, compress_level=level))
    np.testing.assert_array_equal(decoded, pixels)


@pytest.mark.parametrize("dtype", [np.uint8, np.uint16])
@pytest.mark.parametrize("channels", [1, 2, 3, 4])
def test_encode_png_decodes_with_pillow(dtype, channels):
    # 700 × 511 × C spans several 1 MiB deflate blocks for C ≥ 2 at 16 bits.
    smooth = np.add.outer(np.arange(700), np.arange(511))[:, :, None] * np.arange(1, channels + 1)
    pixels = ((smooth * 37) % (np.iinfo(dtype).max + 1)).astype(dtype)
    pixels[::7] = _random(pixels[::7].shape, dtype)
    data = encode_png(pixels)
    with Image.open(io.BytesIO(data)) as image:
        decoded = np.asarray(image)
    if decoded.ndim == 2:
        decoded = decoded[:, :, None]
    if dtype == np.uint16 and channels == 2:
        # Pillow opens 16-bit LA as 8-bit RGBA (L repeated) with the high bytes only.
        np.testing.assert_array_equal(decoded[:, :, [0, 3]], pixels >> 8)
    elif dtype == np.uint16 and channels > 1:
        # Pillow keeps only the high byte of 16-bit colour samples; read_image keeps all.
        np.testing.assert_array_equal(decoded, pixels >> 8)
    elif channels == 2:  # LA
        np.testing.assert_array_equal(decoded, pixels)
    else:
        np.testing.assert_array_equal(decoded.reshape(pixels.shape), pixels)


@pytest.mark.parametrize("level", [1, 4])
def test_png_deflates_with_zlib_ng_or_the_standard_zlib_to_the_same_pixels(monkeypatch, level):
    """zlib-ng (a core dependency) does the deflate; the standard library's zlib is the fallback, and
    either gives a valid multi-block stream of the same pixels."""
    import zlib

    from convcli import png

    assert png._deflate.__name__ == "zlib_ng.zlib_ng"
    pixels = np.add.outer(np.arange(900), np.arange(700))[:, :, None] * np.array([1, 3, 7])
    pixels = (pixels % 251).astype(np.uint8)
    pixels[::5] = _random(pixels[::5].shape)
    fast = encode_png(pixels, compress_level=level)
    monkeypatch.setattr(png, "_deflate", zlib)
    plain = encode_png(pixels, compress_level=level)
    for data in (fast, plain):
        np.testing.assert_array_equal(reference_png_decode(data), pixels)
    assert abs(len(fast) - len(plain)) < 0.05 * len(plain)


def test_encode_png_2d_input_and_errors():
    pixels = _random((5, 6))
    with Image.open(io.BytesIO(encode_png(pixels))) as image:
        assert image.mode == "L"
        np.testing.assert_array_equal(np.asarray(image), pixels)
    with pytest.raises(ShapeError, match="uint8 or uint16"):
        encode_png(pixels.astype(np.float32))
    with pytest.raises(ShapeError, match=r"C in 1\.\.4"):
        encode_png(_random((4, 4, 5)))
    with pytest.raises(ShapeError):
        encode_png(np.zeros((0, 4), np.uint8))
    for level in (-1, 10, 2.5, True):
        with pytest.raises(OptionError, match="compress_level"):
            encode_png(pixels, compress_level=level)


@given(st.binary(max_size=300), st.binary(max_size=300))
def test_adler32_combine_matches_zlib(first, second):
    combined = adler32_combine(zlib.adler32(first), zlib.adler32(second), len(second))
    assert combined == zlib.adler32(first + second)


# ---------------------------------------------------------------------------
# reading every mode and format (Pillow is the reference)

SOURCE_RGB = _random((9, 11, 3))
SOURCE_L = _random((9, 11))
LOSSLESS = {"PNG", "TIFF", "BMP", "GIF"}


def _expected_from_pillow(path: Path, target: str) -> np.ndarray:
    with Image.open(path) as image:
        image = ImageOps.exif_transpose(image)
        return np.asarray(image.convert(target) if image.mode != target else image)


CASES = [  # (mode, format, expected channels, bit depth)
    ("1", "PNG", ("L",), 8), ("1", "BMP", ("L",), 8), ("1", "TIFF", ("L",), 8),
    ("L", "PNG", ("L",), 8), ("L", "JPEG", ("L",), 8), ("L", "TIFF", ("L",), 8),
    ("L", "BMP", ("L",), 8), ("L", "GIF", ("L",), 8),
    ("LA", "PNG", ("L", "A"), 8), ("LA", "TIFF", ("L", "A"), 8),
    ("P", "PNG", ("R", "G", "B"), 8), ("P", "GIF", ("R", "G", "B"), 8),
    ("P", "BMP", ("R", "G", "B"), 8), ("P", "TIFF", ("R", "G", "B"), 8),
    ("RGB", "PNG", ("R", "G", "B"), 8), ("RGB", "JPEG", ("R", "G", "B"), 8),
    ("RGB", "TIFF", ("R", "G", "B"), 8), ("RGB", "BMP", ("R", "G", "B"), 8),
    ("RGB", "WEBP", ("R", "G", "B"), 8),
    ("RGBA", "PNG", ("R", "G", "B", "A"), 8), ("RGBA", "TIFF", ("R", "G", "B", "A"), 8),
    ("RGBA", "WEBP", ("R", "G", "B", "A"), 8),
    ("CMYK", "JPEG", ("R", "G", "B"), 8), ("CMYK", "TIFF", ("R", "G", "B"), 8),
]


def _make_image(mode: str) -> Image.Image:
    if mode == "1":
        return Image.fromarray(SOURCE_L > 127)
    if mode == "L":
        return Image.fromarray(SOURCE_L)
    if mode == "P":
        return Image.fromarray(SOURCE_RGB).quantize(16)
    if mode == "RGBA":
        return Image.fromarray(np.dstack([SOURCE_RGB, SOURCE_L]))
    return Image.fromarray(SOURCE_RGB).convert(mode) if mode != "LA" else \
        Image.fromarray(np.dstack([SOURCE_L, SOURCE_L[::-1]]))


@pytest.mark.parametrize(("mode", "fmt", "names", "depth"), CASES)
def test_read_image_modes_and_formats(tmp_path, mode, fmt, names, depth):
    path = tmp_path / f"image.{fmt.lower()}"
    save_options = {"lossless": True} if fmt == "WEBP" else {}
    _make_image(mode).save(path, format=fmt, **save_options)
    loaded = read_image(path)
    target = {1: "L", 2: "LA", 3: "RGB", 4: "RGBA"}[len(names)]
    expected = _expected_from_pillow(path, target).reshape(9, 11, len(names))
    assert loaded.array.dtype == np.float32
    assert loaded.array.flags.c_contiguous
    np.testing.assert_array_equal(loaded.array, expected)
    assert loaded.channel_names == names
    assert loaded.bit_depth == depth
    assert loaded.source == str(path) and loaded.stem == "image"
    if mode in ("1", "L", "RGB", "RGBA") and fmt in LOSSLESS | {"WEBP"} and not \
            (fmt == "GIF" and mode != "L"):
        source = {"1": np.where(SOURCE_L > 127, 255, 0), "L": SOURCE_L}.get(mode)
        if source is not None:
            np.testing.assert_array_equal(loaded.array[:, :, 0], source)
        elif mode == "RGB":
            np.testing.assert_array_equal(loaded.array, SOURCE_RGB)


def test_gray_palette_gives_gray(tmp_path):
    path = tmp_path / "gray.gif"
    Image.fromarray(SOURCE_L).save(path)
    with Image.open(path) as image:
        assert image.mode in ("P", "L")
    loaded = read_image(path)
    assert loaded.channel_names == ("L",)
    np.testing.assert_array_equal(loaded.array[:, :, 0], SOURCE_L)


def test_one_bit_is_0_or_255(tmp_path):
    path = tmp_path / "bits.png"
    Image.fromarray(np.array([[True, False], [False, True]])).save(path)
    loaded = read_image(path)
    assert loaded.mode == "1"
    np.testing.assert_array_equal(loaded.array[:, :, 0], [[255, 0], [0, 255]])


@pytest.mark.parametrize("fmt", ["PNG", "GIF"])
def test_palette_with_transparency_gives_rgba(tmp_path, fmt):
    image = Image.fromarray(SOURCE_RGB).quantize(8)
    path = tmp_path / f"p.{fmt.lower()}"
    image.save(path, format=fmt, transparency=0)
    loaded = read_image(path)
    assert loaded.mode == "P" and loaded.channel_names == ("R", "G", "B", "A")
    np.testing.assert_array_equal(loaded.array, _expected_from_pillow(path, "RGBA"))
    assert (loaded.array[:, :, 3] == 0).any() and (loaded.array[:, :, 3] == 255).any()


@pytest.mark.parametrize("fmt", ["PNG", "TIFF"])
def test_sixteen_bit_gray(tmp_path, fmt):
    pixels = _random((6, 7), np.uint16)
    path = tmp_path / f"g16.{fmt.lower()}"
    Image.fromarray(pixels).save(path, format=fmt)
    loaded = read_image(path)
    assert loaded.bit_depth == 16 and loaded.mode.startswith("I;16")
    np.testing.assert_array_equal(loaded.array[:, :, 0], pixels)


def test_sixteen_bit_big_endian_mode(tmp_path):
    pixels = _random((4, 5), np.uint16)
    path = tmp_path / "be.tiff"
    Image.frombytes("I;16B", (5, 4), pixels.astype(">u2").tobytes()).save(path)
    loaded = read_image(path)
    assert loaded.bit_depth == 16
    np.testing.assert_array_equal(loaded.array[:, :, 0], pixels)


@pytest.mark.parametrize(("channels", "mode"), [(2, "LA;16"), (3, "RGB;16"), (4, "RGBA;16")])
def test_sixteen_bit_colour_png_keeps_full_depth(tmp_path, channels, mode):
    pixels = _random((17, 23, channels), np.uint16)
    path = tmp_path / "c16.png"
    path.write_bytes(encode_png(pixels))
    loaded = read_image(path)
    assert loaded.mode == mode and loaded.bit_depth == 16
    np.testing.assert_array_equal(loaded.array, pixels)
    np.testing.assert_array_equal(loaded.array, reference_png_decode(path.read_bytes()))


def test_mode_i_and_f(tmp_path):
    small = np.arange(12, dtype=np.int32).reshape(3, 4) * 5000
    big = small * 100 - 7
    floats = np.linspace(-1.5, 2.5, 12, dtype=np.float32).reshape(3, 4)
    for name, array, depth in [("small", small, 16), ("big", big, 32), ("float", floats, 32)]:
        path = tmp_path / f"{name}.tiff"
        Image.fromarray(array).save(path)
        loaded = read_image(path)
        assert loaded.mode == ("F" if name == "float" else "I")
        assert loaded.bit_depth == depth
        np.testing.assert_array_equal(loaded.array[:, :, 0], array.astype(np.float32))


def test_gif_first_frame(tmp_path):
    frames = [Image.fromarray(np.full((4, 4), value, np.uint8)) for value in (10, 200)]
    path = tmp_path / "anim.gif"
    frames[0].save(path, save_all=True, append_images=frames[1:])
    np.testing.assert_array_equal(read_image(path).array, 10)


@pytest.mark.parametrize("orientation", range(1, 9))
def test_exif_orientation_applied(tmp_path, orientation):
    image = Image.fromarray(_random((8, 6, 3)))
    exif = Image.Exif()
    exif[0x0112] = orientation
    path = tmp_path / "o.jpg"
    image.save(path, exif=exif, quality=95)
    loaded = read_image(path)
    expected = _expected_from_pillow(path, "RGB")
    np.testing.assert_array_equal(loaded.array, expected)
    assert loaded.array.shape[:2] == ((6, 8) if orientation >= 5 else (8, 6))
    assert read_size(path) == loaded.array.shape[:2]


def test_unsupported_mode(tmp_path):
    path = tmp_path / "lab.tiff"
    Image.new("LAB", (4, 4)).save(path)
    with pytest.raises(ImageError, match=r"lab\.tiff.*'LAB' is not supported"):
        read_image(path)


# ---------------------------------------------------------------------------
# npy and stdin


def _fake_stdin(monkeypatch, data: bytes) -> None:
    monkeypatch.setattr(sys, "stdin", types.SimpleNamespace(buffer=io.BytesIO(data)))


def test_npy_from_path(tmp_path):
    two_d = np.linspace(-1, 1, 12).reshape(3, 4)  # float64 stays float64
    np.save(tmp_path / "a.npy", two_d)
    loaded = read_image(tmp_path / "a.npy")
    assert loaded.array.dtype == np.float64 and loaded.array.shape == (3, 4, 1)
    assert loaded.mode == "npy" and loaded.channel_names == ("c0",) and loaded.stem == "a"
    np.testing.assert_array_equal(loaded.array[:, :, 0], two_d)
    three_d = np.arange(24, dtype=np.int16).reshape(2, 3, 4) - 5
    np.save(tmp_path / "b.npy", three_d)
    loaded = read_image(tmp_path / "b.npy")
    assert loaded.array.dtype == np.float32
    assert loaded.channel_names == ("c0", "c1", "c2", "c3")
    np.testing.assert_array_equal(loaded.array, three_d)
    assert read_size(tmp_path / "b.npy") == (2, 3)


def test_npy_told_by_magic_not_name(tmp_path):
    path = tmp_path / "really_npy.png"
    np.save(path.with_suffix(".tmp.npy"), np.ones((2, 2), np.float32))
    path.write_bytes(path.with_suffix(".tmp.npy").read_bytes())
    assert read_image(path).mode == "npy"


def test_npy_from_stdin(monkeypatch):
    array = np.arange(6, dtype=np.float32).reshape(1, 2, 3)
    _fake_stdin(monkeypatch, encode_npy(array))
    loaded = read_image("-")
    assert loaded.source == "-" and loaded.stem == "stdin" and loaded.mode == "npy"
    np.testing.assert_array_equal(loaded.array, array)


def test_png_from_stdin(monkeypatch):
    pixels = _random((3, 5, 3))
    _fake_stdin(monkeypatch, encode_png(pixels))
    loaded = read_image("-")
    assert loaded.mode == "RGB" and loaded.stem == "stdin"
    np.testing.assert_array_equal(loaded.array, pixels)


def test_empty_stdin(monkeypatch):
    _fake_stdin(monkeypatch, b"")
    with pytest.raises(ImageError, match="stdin: no input"):
        read_image("-")


def test_text_on_stdin(monkeypatch):
    _fake_stdin(monkeypatch, b"hello, world\n")
    with pytest.raises(ImageError, match="stdin: not a recognised image"):
        read_image("-")


@pytest.mark.parametrize(("array", "match"), [
    (np.zeros(5), r"\(H, W\) or \(H, W, C\)"),
    (np.zeros((2, 2, 2, 2)), r"\(H, W\) or \(H, W, C\)"),
    (np.zeros((0, 3)), "no empty axis"),
    (np.zeros((2, 2), np.complex64), "complex64 is not supported"),
    (np.array([["a", "b"]]), "not supported"),
])
def test_npy_bad_shape_or_dtype(tmp_path, array, match):
    np.save(tmp_path / "bad.npy", array)
    with pytest.raises(ImageError, match=match):
        read_image(tmp_path / "bad.npy")


def test_npy_pickled_is_refused(tmp_path):
    np.save(tmp_path / "obj.npy", np.array([[{"a": 1}, None]], dtype=object), allow_pickle=True)
    with pytest.raises(ImageError, match="pickled"):
        read_image(tmp_path / "obj.npy")


def test_npy_truncated_and_over_limit(tmp_path):
    data = encode_npy(np.ones((40, 50), np.float32))
    (tmp_path / "cut.npy").write_bytes(data[: len(data) // 2])
    with pytest.raises(ImageError, match=r"cut\.npy: truncated or corrupt"):
        read_image(tmp_path / "cut.npy")
    (tmp_path / "ok.npy").write_bytes(data)
    with pytest.raises(ImageError, match="exceeds the limit of 1999"):
        read_image(tmp_path / "ok.npy", max_pixels=1999)
    assert read_image(tmp_path / "ok.npy", max_pixels=2000).array.shape == (40, 50, 1)


# ---------------------------------------------------------------------------
# input errors


def _png_bytes(shape=(6, 8, 3)) -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(_random(shape)).save(buffer, format="PNG")
    return buffer.getvalue()


def _jpeg_bytes() -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(_random((64, 64, 3))).save(buffer, format="JPEG")
    return buffer.getvalue()


def test_missing_directory_empty_and_text(tmp_path):
    with pytest.raises(ImageError, match=r"nope\.png: no such file"):
        read_image(tmp_path / "nope.png")
    with pytest.raises(ImageError, match="is a directory"):
        read_image(tmp_path)
    (tmp_path / "empty.png").write_bytes(b"")
    with pytest.raises(ImageError, match=r"empty\.png: empty file"):
        read_image(tmp_path / "empty.png")
    (tmp_path / "text.png").write_text("this is not a picture\n")
    with pytest.raises(ImageError, match=r"text\.png: not a recognised image"):
        read_image(tmp_path / "text.png")
    for call in (read_size,):
        with pytest.raises(ImageError, match="no such file"):
            call(tmp_path / "nope.png")
        with pytest.raises(ImageError, match="not a recognised image"):
            call(tmp_path / "text.png")


@pytest.mark.parametrize("make", [_png_bytes, _jpeg_bytes], ids=["png", "jpeg"])
@pytest.mark.parametrize("keep", [0.3, 0.6, 0.95])
def test_truncated_files(tmp_path, make, keep):
    data = make()
    path = tmp_path / "cut.img"
    path.write_bytes(data[: int(len(data) * keep)])
    with pytest.raises(ImageError, match=r"cut\.img: .*(truncated|corrupt)"):
        read_image(path)


def _chunk_offset(data: bytes, kind: bytes) -> tuple[int, int]:
    """(offset of the chunk's length field, data length) of the first ``kind`` chunk."""
    pos = 8
    while True:
        length, found = struct.unpack(">I4s", data[pos:pos + 8])
        if found == kind:
            return pos, length
        pos += 12 + length


@pytest.mark.parametrize("kind", [b"IHDR", b"IDAT", b"IEND"])
def test_bad_crc(tmp_path, kind):
    data = bytearray(_png_bytes())
    pos, length = _chunk_offset(bytes(data), kind)
    data[pos + 8 + length] ^= 0x55  # damage the stored CRC only; the pixels are intact
    path = tmp_path / "crc.png"
    path.write_bytes(bytes(data))
    with pytest.raises(ImageError, match=r"crc\.png: .*(CRC|cannot identify|not a recognised)"):
        read_image(path)


def _huge_png_header(width: int, height: int) -> bytes:
    def chunk(kind, body):
        return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))
    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header)
            + chunk(b"IDAT", zlib.compress(b"\0" * 100)) + chunk(b"IEND", b""))


def test_max_pixels_checked_before_decoding(tmp_path, monkeypatch):
    path = tmp_path / "bomb.png"
    path.write_bytes(_huge_png_header(100_000, 100_000))  # 10^10 pixels, ~200 bytes
    decoded = []
    monkeypatch.setattr(Image.Image, "load", lambda self: decoded.append(self))
    monkeypatch.setattr(ImageFile.ImageFile, "load", lambda self: decoded.append(self))
    with pytest.raises(ImageError, match=r"bomb\.png: 100000×100000 .* exceeds the limit of 89478485"):
        read_image(path)
    assert decoded == []
    assert read_size(path) == (100_000, 100_000)
    assert DEFAULT_MAX_PIXELS == 89_478_485


def test_max_pixels_option(tmp_path):
    path = tmp_path / "small.png"
    path.write_bytes(_png_bytes((10, 10, 3)))
    with pytest.raises(ImageError, match="exceeds the limit of 99"):
        read_image(path, max_pixels=99)
    assert read_image(path, max_pixels=100).array.shape == (10, 10, 3)
    assert read_image(path, max_pixels=None).array.shape == (10, 10, 3)
    with pytest.raises(OptionError, match="max_pixels"):
        read_image(path, max_pixels=0)


def test_read_size_does_not_decode(tmp_path, monkeypatch):
    path = tmp_path / "s.png"
    path.write_bytes(_png_bytes((7, 9, 3)))
    monkeypatch.setattr(ImageFile.ImageFile, "load", lambda self: pytest.fail("decoded"))
    assert read_size(path) == (7, 9)


# ---------------------------------------------------------------------------
# fuzzing: nothing but convcli's own errors escapes

_PNG_SEED = _png_bytes((5, 7, 3))


def _read_bytes(data: bytes) -> None:
    with tempfile.TemporaryDirectory() as directory:
        path = Path(directory, "fuzz.png")
        path.write_bytes(data)
        try:
            loaded = read_image(path, max_pixels=1 << 20)
        except ConvcliError:
            return
        assert loaded.array.ndim == 3


@given(st.binary(max_size=400))
def test_fuzz_random_bytes(data):
    _read_bytes(data)


@given(st.lists(st.tuples(st.integers(0, len(_PNG_SEED) - 1), st.integers(0, 255)),
                min_size=1, max_size=6),
       st.integers(8, len(_PNG_SEED)))
def test_fuzz_mutated_png(mutations, cut):
    data = bytearray(_PNG_SEED)
    for position, value in mutations:
        data[position] = value
    _read_bytes(bytes(data[:cut]))


_NPY_SEED = encode_npy(np.arange(12, dtype=np.float32).reshape(3, 4))


@given(st.lists(st.tuples(st.integers(0, len(_NPY_SEED) - 1), st.integers(0, 255)),
                min_size=1, max_size=4))
def test_fuzz_mutated_npy(mutations):
    data = bytearray(_NPY_SEED)
    for position, value in mutations:
        data[position] = value
    _read_bytes(bytes(data))


# ---------------------------------------------------------------------------
# writing


def _leftovers(directory: Path) -> list[str]:
    return sorted(name for name in os.listdir(directory) if name.startswith(".convcli-"))


def test_write_output_bytes_and_callable(tmp_path):
    target = tmp_path / "out.bin"
    write_output(target, b"abc")
    assert target.read_bytes() == b"abc"
    umask = os.umask(0o022)
    os.umask(umask)
    assert target.stat().st_mode & 0o777 == 0o666 & ~umask
    write_output(tmp_path / "cb.bin", lambda stream: stream.write(b"xyz"))
    assert (tmp_path / "cb.bin").read_bytes() == b"xyz"
    assert _leftovers(tmp_path) == []


def test_no_overwrite_without_force(tmp_path):
    target = tmp_path / "out.png"
    target.write_bytes(b"old")
    with pytest.raises(OutputError, match=r"out\.png exists; use --force to overwrite"):
        write_output(target, b"new")
    assert target.read_bytes() == b"old"
    write_output(target, b"new", force=True)
    assert target.read_bytes() == b"new"
    assert _leftovers(tmp_path) == []


def test_never_overwrites_an_input(tmp_path, monkeypatch):
    source = tmp_path / "in.png"
    source.write_bytes(b"precious")
    monkeypatch.chdir(tmp_path)
    for target in (source, "in.png", tmp_path / "." / "in.png"):
        with pytest.raises(OutputError, match="refusing to overwrite an input"):
            write_output(target, b"x", force=True, protect=[str(source)])
    link = tmp_path / "link.png"
    link.symlink_to(source)
    with pytest.raises(OutputError, match="refusing to overwrite an input"):
        write_output(link, b"x", force=True, protect=["-", source])
    assert source.read_bytes() == b"precious"


def test_target_is_a_directory(tmp_path):
    with pytest.raises(OutputError, match="is a directory"):
        write_output(tmp_path, b"x", force=True)


def test_missing_directory_and_file_as_directory(tmp_path):
    with pytest.raises(OutputError, match="does not exist"):
        write_output(tmp_path / "no" / "such" / "out.png", b"x")
    (tmp_path / "file").write_bytes(b"")
    with pytest.raises(OutputError, match="is not a directory"):
        write_output(tmp_path / "file" / "out.png", b"x")


def test_unwritable_directory(locked_dir):
    with pytest.raises(OutputError, match="permission denied"):
        write_output(locked_dir / "out.png", b"x")


def test_writer_failing_midway_leaves_nothing(tmp_path):
    def broken(stream):
        stream.write(b"half a file")
        raise RuntimeError("encoder crashed")

    with pytest.raises(RuntimeError, match="encoder crashed"):
        write_output(tmp_path / "out.png", broken)
    assert os.listdir(tmp_path) == []


def test_interrupt_leaves_nothing_and_keeps_old_file(tmp_path):
    target = tmp_path / "out.png"
    target.write_bytes(b"old")

    def interrupted(stream):
        stream.write(b"partial")
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        write_output(target, interrupted, force=True)
    assert target.read_bytes() == b"old"
    assert _leftovers(tmp_path) == []


def test_disk_full_is_an_output_error(tmp_path):
    def full(stream):
        stream.write(b"some")
        raise OSError(errno.ENOSPC, "No space left on device")

    with pytest.raises(OutputError, match=r"out\.png: no space left on device"):
        write_output(tmp_path / "out.png", full)
    assert os.listdir(tmp_path) == []


def test_write_to_stdout(monkeypatch):
    buffer = io.BytesIO()
    monkeypatch.setattr(sys, "stdout", types.SimpleNamespace(buffer=buffer))
    write_output("-", b"data")
    write_output("-", lambda stream: stream.write(b"+more"))
    assert buffer.getvalue() == b"data+more"


# ---------------------------------------------------------------------------
# encoders and save_image


def test_encode_tiff_pages():
    rgb = _random((5, 6, 3))
    with Image.open(io.BytesIO(encode_tiff(rgb))) as image:
        assert image.mode == "RGB"
        np.testing.assert_array_equal(np.asarray(image), rgb)
    for array in (_random((5, 6, 2), np.uint16), np.linspace(-3, 3, 60).reshape(5, 6, 2)):
        with Image.open(io.BytesIO(encode_tiff(array))) as image:
            assert image.n_frames == 2
            for page in range(2):
                image.seek(page)
                np.testing.assert_array_equal(np.asarray(image),
                                              array[:, :, page].astype(np.asarray(image).dtype))
    with pytest.raises(OptionError):
        encode_tiff(np.zeros((2, 2), np.int64))


def test_encode_npy_npz():
    array = np.linspace(0, 1, 6, dtype=np.float32).reshape(1, 2, 3)
    np.testing.assert_array_equal(np.load(io.BytesIO(encode_npy(array))), array)
    with np.load(io.BytesIO(encode_npz({"sobel-x": array, "sobel-y": -array}))) as archive:
        assert sorted(archive.files) == ["sobel-x", "sobel-y"]
        np.testing.assert_array_equal(archive["sobel-y"], -array)


def test_format_from_suffix():
    assert [format_from_suffix(name) for name in
            ("a.png", "b.TIF", "c.tiff", "d.npy", "e.npz", "f.jpg", "h.webp", "i.bmp", "-", "g")] == \
        ["png", "tiff", "tiff", "npy", "npz", "jpeg", "webp", None, None, None]
    assert FORMATS == ("png", "tiff", "jpeg", "webp", "npy", "npz")


@pytest.mark.parametrize("fmt", ["png", "tiff", "npy", "npz"])  # jpeg/webp: tests/test_photo.py
def test_save_image_round_trip(tmp_path, fmt):
    pixels = _random((4, 5, 3), np.uint16)
    target = tmp_path / f"out.{fmt}"
    save_image(target, pixels, format=fmt)
    if fmt == "npz":
        with np.load(target) as archive:
            np.testing.assert_array_equal(archive["maps"], pixels)
    elif fmt == "tiff":
        with Image.open(target) as image:
            np.testing.assert_array_equal(np.asarray(image), pixels[:, :, 0])
    else:
        np.testing.assert_array_equal(read_image(target).array, pixels)
    with pytest.raises(OutputError, match="exists"):
        save_image(target, pixels, format=fmt)
    with pytest.raises(OptionError, match="format"):
        save_image(tmp_path / "x.gif", pixels, format="gif")


def test_sample_images_are_readable():
    files = sorted(SAMPLES.glob("*.png"))
    assert {path.stem for path in files} >= {"chelsea", "coffee", "astronaut", "rocket",
                                             "checkerboard", "gradient", "gradient16", "zoneplate"}
    for path in files:
        loaded = read_image(path)
        assert loaded.bit_depth == (16 if path.stem == "gradient16" else 8)
    assert sum(path.stat().st_size for path in files) < 1_000_000


# ---------------------------------------------------------------- JPEG decoded straight into numpy


def _photo_like(shape: tuple[int, int, int], seed: int) -> np.ndarray:
    """Smooth gradients plus noise: JPEG blocks with real AC content (random noise alone is atypical)."""
    rng = np.random.default_rng(seed)
    rows, cols, _ = shape
    y, x = np.mgrid[0:rows, 0:cols]
    base = np.stack([(x * 3 + y) % 256, (y * 2) % 256, (x * y // 7) % 256], axis=2)
    return np.clip(base + rng.normal(0, 12, shape), 0, 255).astype(np.uint8)


@pytest.mark.parametrize("mode", ["RGB", "L"])
@pytest.mark.parametrize("subsampling", [0, 1, 2])
@pytest.mark.parametrize("progressive", [False, True])
@pytest.mark.parametrize("size", [(37, 61), (240, 320)])
def test_jpeg_pixels_equal_pillows(tmp_path, mode, subsampling, progressive, size):
    path = tmp_path / "p.jpg"
    image = Image.fromarray(_photo_like((*size, 3), size[0])).convert(mode)
    image.save(path, quality=80, subsampling=subsampling, progressive=progressive,
               restart_marker_rows=2 if progressive else 0)
    expected = np.asarray(Image.open(path))
    with open(path, "rb") as handle, Image.open(handle) as opened:
        direct = _decode_jpeg_direct(handle, opened)  # the fast path takes these files
    assert direct is not None
    np.testing.assert_array_equal(direct, expected)
    loaded = read_image(str(path))
    np.testing.assert_array_equal(loaded.array.reshape(expected.shape), expected)


def test_jpeg_with_exif_orientation_is_upright_like_pillows_exif_transpose(tmp_path):
    path = tmp_path / "o.jpg"
    exif = Image.Exif()
    exif[0x0112] = 6  # rotate 90° clockwise to display
    Image.fromarray(_photo_like((40, 70, 3), 1)).save(path, quality=90, exif=exif.tobytes())
    expected = np.asarray(ImageOps.exif_transpose(Image.open(path)))
    np.testing.assert_array_equal(read_image(str(path)).array, expected)


@pytest.mark.parametrize("cut", [2, 10, 2000])
def test_truncated_jpeg_is_still_refused(tmp_path, cut):
    """libjpeg would fill the missing rows grey; the fast path leaves such files to Pillow, which refuses."""
    data = io.BytesIO()
    Image.fromarray(_photo_like((200, 300, 3), 2)).save(data, format="JPEG", quality=90)
    path = tmp_path / "t.jpg"
    path.write_bytes(data.getvalue()[:-cut])
    with pytest.raises(ImageError, match=r"t\.jpg.*truncated"):
        read_image(str(path))
