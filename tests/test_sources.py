"""Sources (convcli.pipeline.sources): rows read by region equal the whole image
as independent readers see it (tifffile, Pillow, np.load, zarr)."""

from __future__ import annotations

import io
import os
import pickle
import re
import sys
import types
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from PIL import Image

from convcli import imageio
from convcli.errors import ImageError, OptionError
from convcli.pipeline.sources import (
    ArraySource,
    NpySource,
    PillowSource,
    Source,
    TiffSource,
    ZarrSource,
    open_source,
)

tifffile = pytest.importorskip("tifffile")
imagecodecs = pytest.importorskip("imagecodecs")

HEIGHT, WIDTH = 45, 37
WINDOWS = settings(max_examples=12, deadline=None)


def _windows(height: int) -> st.SearchStrategy[tuple[int, int]]:
    return st.integers(0, height - 1).flatmap(
        lambda start: st.tuples(st.just(start), st.integers(start + 1, height)))


def _data(dtype: str, channels: int, height: int = HEIGHT, width: int = WIDTH,
          seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    shape = (height, width, channels)
    if dtype == "uint8":
        return rng.integers(0, 256, shape, dtype=np.uint8)
    if dtype == "uint16":
        return rng.integers(0, 65536, shape, dtype=np.uint16)
    if dtype == "int32":
        return rng.integers(-(2**31), 2**31 - 1, shape, dtype=np.int32)
    return rng.normal(0, 100, shape).astype(dtype)


def _smooth(channels: int, height: int = HEIGHT, width: int = WIDTH) -> np.ndarray:
    """A gradient (JPEG-friendly) uint8 image."""
    rows, cols = np.mgrid[0:height, 0:width]
    planes = [(rows * 3 + cols * (2 + c) + 40 * c) % 256 for c in range(channels)]
    return np.stack(planes, axis=2).astype(np.uint8)


def _codec(name: str) -> bool:
    attribute = {"zlib": "ZLIB", "lzw": "LZW", "zstd": "ZSTD", "jpeg": "JPEG8"}[name]
    codec = getattr(imagecodecs, attribute, None)
    return codec is not None and codec.available


def _tiff_cases() -> list[tuple[str, str, int, dict]]:
    cases = []
    for dtype in ("uint8", "uint16", "float32"):  # int32 pages: Pillow (mode I), tested below
        for channels in (1, 2, 3, 4):
            cases.append((f"{dtype}-{channels}-plain", dtype, channels, {}))
            cases.append((f"{dtype}-{channels}-tiles", dtype, channels, {"tile": (16, 16)}))
            cases.append((f"{dtype}-{channels}-strips7-zlib", dtype, channels,
                          {"rowsperstrip": 7, "compression": "zlib"}))
            if channels > 1:
                cases.append((f"{dtype}-{channels}-planar", dtype, channels,
                              {"planarconfig": "separate", "rowsperstrip": 10}))
                cases.append((f"{dtype}-{channels}-planar-tiles", dtype, channels,
                              {"planarconfig": "separate", "tile": (16, 32)}))
    for compression in ("lzw", "zstd"):
        for dtype in ("uint8", "uint16", "float32"):
            cases.append((f"{dtype}-3-{compression}", dtype, 3,
                          {"rowsperstrip": 8, "compression": compression}))
            cases.append((f"{dtype}-1-{compression}-pred", dtype, 1,
                          {"tile": (16, 16), "compression": compression, "predictor": True}))
    cases.append(("uint16-3-be-bigtiff", "uint16", 3, {"byteorder": ">", "bigtiff": True,
                                                       "rowsperstrip": 6}))
    cases.append(("float32-1-be-bigtiff-tiles", "float32", 1,
                  {"byteorder": ">", "bigtiff": True, "tile": (16, 16), "compression": "zlib"}))
    cases.append(("uint8-4-be", "uint8", 4, {"byteorder": ">", "rowsperstrip": 13}))
    cases.append(("float64-2-plain", "float64", 2, {}))
    cases.append(("uint8-1-jpeg", "jpeg", 1, {"compression": "jpeg", "rowsperstrip": 16}))
    cases.append(("uint8-3-jpeg", "jpeg", 3, {"compression": "jpeg", "rowsperstrip": 16}))
    cases.append(("uint8-3-jpeg-tiles", "jpeg", 3, {"compression": "jpeg", "tile": (16, 16)}))
    return cases


TIFF_CASES = _tiff_cases()


def _write_tiff(path: str, pixels: np.ndarray, options: dict) -> None:
    options = dict(options)
    channels = pixels.shape[2]
    photometric = "rgb" if channels >= 3 and pixels.dtype in (np.uint8, np.uint16) else "minisblack"
    extrasamples = None
    if (photometric == "rgb" and channels == 4) or channels == 2:
        extrasamples = ["unassalpha"]
    data = pixels[:, :, 0] if channels == 1 else pixels
    if options.get("planarconfig") == "separate":
        data = pixels.transpose(2, 0, 1)
    elif channels > 1:
        options["planarconfig"] = "contig"  # else tifffile takes (H, W, C) gray as H pages
    tifffile.imwrite(path, data, photometric=photometric, extrasamples=extrasamples,
                     metadata=None, **options)


_REFERENCES: dict[str, np.ndarray] = {}


@pytest.fixture(scope="module")
def tiff_files(tmp_path_factory) -> dict[str, tuple[str, np.ndarray]]:
    directory = tmp_path_factory.mktemp("tiffs")
    files = {}
    for index, (case, dtype, channels, options) in enumerate(TIFF_CASES):
        compression = options.get("compression")
        if compression and not _codec(compression):
            continue
        pixels = _smooth(channels) if dtype == "jpeg" else _data(dtype, channels, seed=index)
        path = str(directory / f"{case}.tif")
        _write_tiff(path, pixels, options)
        files[case] = (path, pixels)
        _REFERENCES[path] = _reference(path)
    return files


def _reference(path: str) -> np.ndarray:
    array = tifffile.imread(path)
    page = tifffile.TiffFile(path)
    with page:
        separate = page.pages[0].planarconfig == 2 and page.pages[0].samplesperpixel > 1
    if separate:
        array = array.transpose(1, 2, 0)
    return array[:, :, np.newaxis] if array.ndim == 2 else array


@pytest.mark.parametrize("case", [case for case, *_ in TIFF_CASES])
@WINDOWS
@given(window=_windows(HEIGHT))
def test_tiff_rows_equal_tifffile(tiff_files, case, window):
    if case not in tiff_files:
        pytest.skip("codec not available")
    path, pixels = tiff_files[case]
    reference = _REFERENCES[path]
    if not case.startswith("uint8-") or "jpeg" not in case:
        np.testing.assert_array_equal(reference, pixels)  # the reference reads what was written
    source = open_source(path)
    assert isinstance(source, TiffSource)
    assert source.shape == reference.shape and source.dtype == reference.dtype.newbyteorder("=")
    start, stop = window
    rows = source.read_rows(start, stop)
    assert rows.shape == (stop - start, WIDTH, reference.shape[2]) and rows.dtype == source.dtype
    np.testing.assert_array_equal(rows, reference[start:stop])
    source.close()


def test_tiff_attributes(tiff_files):
    expected = {
        "uint8-1-plain": ("L", 8, ("L",)),
        "uint8-2-plain": ("LA", 8, ("L", "A")),
        "uint8-3-plain": ("RGB", 8, ("R", "G", "B")),
        "uint8-4-tiles": ("RGBA", 8, ("R", "G", "B", "A")),
        "uint16-1-plain": ("I;16", 16, ("L",)),
        "uint16-3-be-bigtiff": ("RGB;16", 16, ("R", "G", "B")),
        "uint16-4-plain": ("RGBA;16", 16, ("R", "G", "B", "A")),
        "float32-1-plain": ("F", 32, ("L",)),
        "float32-3-plain": ("tiff;F", 32, ("c0", "c1", "c2")),
    }
    for case, (mode, depth, names) in expected.items():
        source = open_source(tiff_files[case][0])
        assert (source.mode, source.bit_depth, source.channel_names) == (mode, depth, names), case
        assert source.n_frames == 1 and source.stem == case and source.metadata == {}


def test_tiff_rows_equal_pillow(tiff_files):
    """Where Pillow reads the same TIFF, it sees the same pixels (8-bit and 16-bit gray)."""
    for case in ("uint8-1-plain", "uint8-3-strips7-zlib", "uint8-4-tiles", "uint8-3-lzw",
                 "uint16-1-plain", "uint8-1-tiles"):
        path, _ = tiff_files[case]
        with Image.open(path) as image:
            reference = np.asarray(image)
        reference = reference[:, :, np.newaxis] if reference.ndim == 2 else reference
        np.testing.assert_array_equal(open_source(path).read_rows(0, HEIGHT), reference)


def test_16bit_rgb_tiff_is_read_at_16_bits(tiff_files):
    path, pixels = tiff_files["uint16-3-plain"]
    assert imageio.read_image(path).bit_depth == 8  # what Pillow gives (the reason for TiffSource)
    source = open_source(path)
    assert source.dtype == np.uint16 and source.bit_depth == 16
    np.testing.assert_array_equal(source.read_rows(0, HEIGHT), pixels)


def test_big_endian_bigtiff_opens(tiff_files):
    path, pixels = tiff_files["uint16-3-be-bigtiff"]
    with open(path, "rb") as handle:
        assert handle.read(4) == b"MM\x00+"
    np.testing.assert_array_equal(open_source(path).read_rows(0, HEIGHT), pixels)


@pytest.mark.parametrize("case", ["uint8-3-strips7-zlib", "uint16-3-planar-tiles", "jpeg"])
def test_tiff_pickle_round_trip(tiff_files, case):
    path, _ = tiff_files.get(case, tiff_files["uint8-3-plain"])
    source = open_source(path)
    before = source.read_rows(5, 30).copy()
    clone = pickle.loads(pickle.dumps(source))
    assert clone._tif is None and not clone._cache  # no handle or cache travels
    np.testing.assert_array_equal(clone.read_rows(5, 30), before)
    np.testing.assert_array_equal(clone.read_rows(0, HEIGHT), _reference(path))


def test_tiff_is_not_open_after_construction(tiff_files):
    source = open_source(tiff_files["uint8-3-plain"][0])
    assert source._tif is None
    source.read_rows(0, 1)
    assert source._tif is not None
    source.close()
    assert source._tif is None
    np.testing.assert_array_equal(source.read_rows(0, 2), tiff_files["uint8-3-plain"][1][:2])


# ---------------------------------------------------------------------------
# orientation, pages, metadata


def _orientation_tag(value: int) -> list:
    return [(274, "H", 1, value, True)]


@pytest.mark.parametrize("orientation", range(1, 9))
def test_tiff_orientation_as_pillow_applies_it(tmp_path, orientation):
    pixels = _data("uint8", 3, 20, 31, seed=orientation)
    path = str(tmp_path / "o.tif")
    tifffile.imwrite(path, pixels, photometric="rgb", rowsperstrip=4,
                     extratags=_orientation_tag(orientation))
    source = open_source(path)
    assert isinstance(source, TiffSource)
    reference = imageio.read_image(path).pixels  # Pillow decode + the EXIF rule
    assert source.shape == reference.shape
    np.testing.assert_array_equal(source.read_rows(0, source.shape[0]), reference)
    np.testing.assert_array_equal(source.read_rows(3, 9), reference[3:9])


def test_tiff_orientation_6_is_a_clockwise_turn(tmp_path):
    pixels = _data("uint16", 1, 20, 31)
    path = str(tmp_path / "o6.tif")
    tifffile.imwrite(path, pixels[:, :, 0], tile=(16, 16), extratags=_orientation_tag(6))
    source = open_source(path)
    assert source.shape == (31, 20, 1)
    np.testing.assert_array_equal(source.read_rows(0, 31), np.rot90(pixels, -1))
    clone = pickle.loads(pickle.dumps(source))
    np.testing.assert_array_equal(clone.read_rows(7, 8), np.rot90(pixels, -1)[7:8])


def test_tiff_pages(tmp_path):
    path = str(tmp_path / "pages.tif")
    first, second = _data("uint8", 1, 10, 12, seed=1), _data("uint16", 3, 14, 9, seed=2)
    with tifffile.TiffWriter(path) as writer:
        writer.write(first[:, :, 0])
        writer.write(second, photometric="rgb")
    source = open_source(path)
    assert source.n_frames == 2 and source.shape == (10, 12, 1)
    np.testing.assert_array_equal(source.read_rows(0, 10), first)
    other = open_source(path, frame=1)
    assert other.shape == (14, 9, 3) and other.dtype == np.uint16
    np.testing.assert_array_equal(pickle.loads(pickle.dumps(other)).read_rows(2, 14), second[2:])
    with pytest.raises(ImageError, match=r"pages\.tif: has 2 page\(s\); page 2 does not exist"):
        open_source(path, frame=2)


def test_ome_tiff(tmp_path):
    path = str(tmp_path / "image.ome.tif")
    pixels = _data("uint16", 1, 30, 20)
    tifffile.imwrite(path, pixels[np.newaxis, :, :, 0], ome=True, tile=(16, 16),
                     metadata={"axes": "CYX"})
    source = open_source(path)
    assert isinstance(source, TiffSource) and source.stem == "image.ome"
    np.testing.assert_array_equal(source.read_rows(3, 29), pixels[3:29])


def test_tiff_metadata(tmp_path):
    path = str(tmp_path / "meta.tif")
    icc = b"\x00\x00\x02\x0cfake icc profile bytes"
    pixels = _data("uint8", 3, 8, 8)
    tifffile.imwrite(path, pixels, photometric="rgb", resolution=(300, 150),
                     resolutionunit="INCH", iccprofile=icc)
    assert open_source(path).metadata == {"icc_profile": icc, "dpi": (300.0, 150.0)}
    tifffile.imwrite(path, pixels, photometric="rgb", resolution=(100, 100),
                     resolutionunit="CENTIMETER")
    x, y = open_source(path).metadata["dpi"]
    assert x == pytest.approx(254.0) and y == pytest.approx(254.0)


# ---------------------------------------------------------------------------
# TIFFs that go through Pillow (as today)


PILLOW_TIFF_MODES = ["1", "L", "P", "RGB", "RGBA", "CMYK", "I;16", "I", "F", "LA", "YCbCr"]


@pytest.mark.parametrize("mode", PILLOW_TIFF_MODES)
@pytest.mark.parametrize("compression",
                         [None, "tiff_lzw", "tiff_adobe_deflate", "jpeg", "packbits", "group4"])
def test_every_pillow_tiff_still_reads(tmp_path, mode, compression):
    """No TIFF that read_image reads today stops reading; where both read it, same pixels."""
    rng = np.random.default_rng(3)
    base = Image.fromarray(rng.integers(0, 256, (23, 19, 3), dtype=np.uint8))
    if mode == "I;16":
        image = Image.fromarray(rng.integers(0, 65536, (23, 19), dtype=np.uint16))
    elif mode == "I":
        image = Image.fromarray(rng.integers(-5000, 70000, (23, 19), dtype=np.int32))
    elif mode == "F":
        image = Image.fromarray(rng.normal(size=(23, 19)).astype(np.float32))
    elif mode == "P":
        image = base.convert("P", palette=Image.Palette.ADAPTIVE)
    else:
        image = base.convert(mode)
    path = str(tmp_path / f"pillow-{mode.replace(';', '')}.tif")
    try:
        image.save(path, compression=compression)
    except (OSError, ValueError, KeyError):
        pytest.skip(f"Pillow cannot write {mode} with {compression}")
    try:
        today = imageio.read_image(path)
    except ImageError:
        pytest.skip(f"read_image does not read {mode} with {compression} either")
    source = open_source(path)
    rows = source.read_rows(0, source.shape[0])
    assert rows.shape == today.pixels.shape
    if today.bit_depth == source.bit_depth or mode == "I":
        np.testing.assert_array_equal(rows.astype(np.float64), today.pixels.astype(np.float64))
    clone = pickle.loads(pickle.dumps(source))
    np.testing.assert_array_equal(clone.read_rows(2, 9), rows[2:9])


def test_palette_tiff_falls_back_to_pillow(tmp_path):
    path = str(tmp_path / "p.tif")
    Image.fromarray(_smooth(3, 10, 10)).convert("P").save(path)
    source = open_source(path)
    assert isinstance(source, PillowSource)
    np.testing.assert_array_equal(source.read_rows(0, 10), imageio.read_image(path).pixels)


# ---------------------------------------------------------------------------
# reading only what a band needs


def test_a_band_decodes_only_its_strips(tmp_path):
    height, width, rows_per_strip = 4000, 3000, 16
    rows = np.arange(height, dtype=np.uint32)[:, np.newaxis]
    pixels = ((rows + np.arange(width, dtype=np.uint32)) % 251).astype(np.uint8)
    path = str(tmp_path / "large.tif")
    tifffile.imwrite(path, pixels, rowsperstrip=rows_per_strip, compression="zlib")
    source = open_source(path)
    assert source.segments_decoded == 0  # opening reads the header only
    band = source.read_rows(1000, 1064)
    np.testing.assert_array_equal(band[:, :, 0], pixels[1000:1064])
    first, last = 1000 // rows_per_strip, 1063 // rows_per_strip
    assert source.segments_decoded == last - first + 1 == 5
    # the next band shares halo rows 1056..1063: that strip comes from the cache
    np.testing.assert_array_equal(source.read_rows(1056, 1120)[:, :, 0], pixels[1056:1120])
    assert source.segments_decoded == 5 + (1119 // rows_per_strip - last)
    assert source.segments_decoded < height // rows_per_strip / 10


def test_a_band_decodes_only_its_tile_row(tmp_path):
    pixels = _data("uint16", 3, 160, 96)
    path = str(tmp_path / "tiled.tif")
    tifffile.imwrite(path, pixels, photometric="rgb", tile=(32, 32), compression="zlib")
    source = open_source(path)
    np.testing.assert_array_equal(source.read_rows(40, 50), pixels[40:50])
    assert source.segments_decoded == 3  # one row of 3 tiles


# ---------------------------------------------------------------------------
# broken TIFFs


def _strip_layout(path: str) -> tuple[list[int], list[int]]:
    with tifffile.TiffFile(path) as tif:
        page = tif.pages[0]
        return list(page.dataoffsets), list(page.databytecounts)


def test_tiff_corrupt_strip_names_strip_and_rows(tmp_path):
    pixels = _data("uint8", 1, 64, 40)
    path = str(tmp_path / "bad.tif")
    tifffile.imwrite(path, pixels[:, :, 0], rowsperstrip=16, compression="zlib")
    offsets, counts = _strip_layout(path)
    with open(path, "r+b") as handle:
        handle.seek(offsets[2])
        handle.write(b"\xff" * counts[2])
    source = open_source(path)  # the header is fine
    np.testing.assert_array_equal(source.read_rows(0, 32), pixels[:32])
    with pytest.raises(ImageError, match=r"^.*bad\.tif: cannot decode strip 2 \(rows 32-47\): "):
        source.read_rows(30, 40)


def test_tiff_corrupt_tile_names_tile(tmp_path):
    pixels = _data("uint16", 1, 64, 64)
    path = str(tmp_path / "badtile.tif")
    tifffile.imwrite(path, pixels[:, :, 0], tile=(16, 16), compression="zlib")
    offsets, counts = _strip_layout(path)
    index = 2 * 4 + 3  # tile row 2, column 3
    with open(path, "r+b") as handle:
        handle.seek(offsets[index])
        handle.write(b"\x00" * counts[index])
    source = open_source(path)
    with pytest.raises(ImageError, match=r"badtile\.tif: cannot decode tile \(2, 3\) \(rows 32-47\)"):
        source.read_rows(40, 41)


def test_tiff_truncated_file(tmp_path):
    pixels = _data("uint8", 3, 64, 40)
    path = str(tmp_path / "cut.tif")
    tifffile.imwrite(path, pixels, photometric="rgb", rowsperstrip=8)
    offsets, counts = _strip_layout(path)
    end = offsets[-1] + counts[-1]
    with open(path, "r+b") as handle:
        handle.truncate(end - counts[-1] // 2)
    with pytest.raises(ImageError, match=r"cut\.tif: truncated TIFF: strip 7 \(rows 56-63\) lies past"):
        open_source(path)


def test_tiff_offset_past_end(tmp_path):
    pixels = _data("uint8", 1, 64, 40)
    path = str(tmp_path / "offset.tif")
    tifffile.imwrite(path, pixels[:, :, 0], rowsperstrip=16)
    offsets, _ = _strip_layout(path)
    raw = bytearray(Path(path).read_bytes())
    position = raw.find(np.array(offsets, "<u4").tobytes())  # the StripOffsets array
    assert position > 0
    raw[position + 4:position + 8] = np.array([10**8], "<u4").tobytes()  # strip 1
    Path(path).write_bytes(bytes(raw))
    with pytest.raises(ImageError, match=r"offset\.tif: truncated TIFF: strip 1 \(rows 16-31\)"):
        open_source(path)


def test_tiff_shrunk_after_open(tmp_path):
    pixels = _data("uint8", 1, 64, 40)
    path = str(tmp_path / "shrunk.tif")
    tifffile.imwrite(path, pixels[:, :, 0], rowsperstrip=16)
    offsets, _ = _strip_layout(path)
    source = open_source(path)
    with open(path, "r+b") as handle:
        handle.truncate(offsets[3] + 5)
    with pytest.raises(ImageError, match=r"shrunk\.tif: cannot decode strip 3 \(rows 48-63\): truncated"):
        source.read_rows(0, 64)


def test_not_a_tiff_at_all(tmp_path):
    path = tmp_path / "fake.tif"
    path.write_bytes(b"II*\x00" + b"\x00" * 20)
    with pytest.raises(ImageError, match=r"fake\.tif: "):
        open_source(str(path))


# ---------------------------------------------------------------------------
# .npy


NPY_CASES = [((HEIGHT, WIDTH), "uint8"), ((HEIGHT, WIDTH, 3), "float32"),
             ((HEIGHT, WIDTH, 2), ">f8"), ((HEIGHT, WIDTH, 1), "int16"), ((HEIGHT, WIDTH), "bool"),
             ((HEIGHT, WIDTH, 5), "<u2")]


@pytest.fixture(scope="module")
def npy_files(tmp_path_factory) -> list[str]:
    directory = tmp_path_factory.mktemp("npy")
    rng = np.random.default_rng(5)
    paths = []
    for index, (shape, dtype) in enumerate(NPY_CASES):
        array = (rng.normal(0, 50, shape) > 0) if dtype == "bool" else \
            (rng.normal(0, 50, shape) + (100 if "u" in dtype else 0)).astype(dtype)
        path = str(directory / f"a{index}.npy")
        np.save(path, array)
        paths.append(path)
    fortran = str(directory / "fortran.npy")
    np.save(fortran, np.asfortranarray(rng.normal(size=(HEIGHT, WIDTH, 3)).astype(np.float32)))
    paths.append(fortran)
    return paths


@pytest.mark.parametrize("index", range(len(NPY_CASES) + 1))
@WINDOWS
@given(window=_windows(HEIGHT))
def test_npy_rows_equal_np_load(npy_files, index, window):
    path = npy_files[index]
    reference = np.load(path)
    reference = reference[:, :, np.newaxis] if reference.ndim == 2 else reference
    expected_dtype = np.float64 if reference.dtype == np.float64 else np.float32
    source = open_source(path)
    assert isinstance(source, NpySource)
    assert source.shape == reference.shape and source.dtype == expected_dtype
    stored = np.load(path, mmap_mode="r").dtype
    depth = 8 if stored == np.uint8 else 16 if stored == np.uint16 else 32  # an 8/16-bit image as an array
    assert (source.mode, source.bit_depth) == ("npy", depth)
    assert source.channel_names == tuple(f"c{i}" for i in range(reference.shape[2]))
    start, stop = window
    rows = source.read_rows(start, stop)
    assert rows.dtype == expected_dtype
    np.testing.assert_array_equal(rows, reference[start:stop].astype(expected_dtype))
    # as read_image reads the same file
    np.testing.assert_array_equal(rows, imageio.read_image(path).pixels[start:stop])
    source.close()


def test_npy_reads_no_more_than_the_rows(npy_files, monkeypatch):
    source = open_source(npy_files[1])
    source.read_rows(0, 1)
    reads = []
    original = source._handle.readinto
    monkeypatch.setattr(source._handle, "readinto", lambda buffer: reads.append(len(buffer)) or
                        original(buffer), raising=False)
    source.read_rows(10, 13)
    assert reads == [3 * WIDTH * 3 * 4]


def test_npy_pickle(npy_files):
    source = open_source(npy_files[2])
    source.read_rows(0, 3)
    clone = pickle.loads(pickle.dumps(source))
    assert clone._handle is None
    np.testing.assert_array_equal(clone.read_rows(4, 20), np.load(npy_files[2])[4:20].astype(np.float32))


def test_npy_truncated(tmp_path):
    path = tmp_path / "short.npy"
    buffer = io.BytesIO()
    np.save(buffer, np.zeros((10, 4, 2), np.float32))
    path.write_bytes(buffer.getvalue()[:-40])  # 40 bytes = rows 8.75..9 missing
    with pytest.raises(ImageError, match=r"short\.npy: truncated \.npy: .*row 8 of 10 is cut short"):
        open_source(str(path))


def test_npy_shrunk_after_open(tmp_path):
    path = tmp_path / "shrink.npy"
    np.save(path, np.zeros((10, 4), np.float32))
    source = open_source(str(path))
    with open(path, "r+b") as handle:
        handle.truncate(os.path.getsize(path) - 16 * 3)
    np.testing.assert_array_equal(source.read_rows(0, 2), np.zeros((2, 4, 1)))
    with pytest.raises(ImageError, match=r"shrink\.npy: truncated \.npy: row 7 of 10"):
        source.read_rows(5, 10)


def test_npy_refusals_as_read_image(tmp_path):
    objects = tmp_path / "objects.npy"
    np.save(objects, np.array([[None, 1]], dtype=object), allow_pickle=True)
    with pytest.raises(ImageError, match="Python objects"):
        open_source(str(objects))
    vector = tmp_path / "vector.npy"
    np.save(vector, np.zeros(5))
    with pytest.raises(ImageError, match=r"must be \(H, W\) or \(H, W, C\)"):
        open_source(str(vector))
    complex_ = tmp_path / "complex.npy"
    np.save(complex_, np.zeros((3, 3), np.complex64))
    with pytest.raises(ImageError, match="not supported"):
        open_source(str(complex_))
    big = tmp_path / "big.npy"
    np.save(big, np.zeros((20, 30), np.uint8))
    with pytest.raises(ImageError, match=r"big\.npy: 20×30 \(H×W\) = 600 pixels exceeds the limit of 599"):
        open_source(str(big), streamed_max_pixels=599)  # npy streams: only an explicit limit applies
    assert open_source(str(big), max_pixels=599).shape == (20, 30, 1)


# ---------------------------------------------------------------------------
# zarr


zarr = pytest.importorskip("zarr")


@pytest.fixture(scope="module")
def zarr_arrays(tmp_path_factory) -> list[tuple[str, np.ndarray]]:
    directory = tmp_path_factory.mktemp("zarr")
    rng = np.random.default_rng(9)
    arrays = []
    for index, (shape, dtype, chunks, fmt) in enumerate([
        ((HEIGHT, WIDTH), "float32", (7, 10), 3),
        ((HEIGHT, WIDTH, 3), "uint16", (10, 16, 3), 3),
        ((HEIGHT, WIDTH, 2), "float64", (HEIGHT, WIDTH, 1), 3),
        ((HEIGHT, WIDTH, 4), "uint8", (8, 8, 2), 2),
    ]):
        path = str(directory / f"z{index}.zarr")
        values = (rng.normal(0, 1000, shape) + 2000).astype(dtype)
        array = zarr.create_array(store=path, shape=shape, chunks=chunks, dtype=dtype,
                                  zarr_format=fmt)
        array[:] = values
        np.testing.assert_array_equal(np.asarray(zarr.open_array(path, mode="r")[:]), values)
        arrays.append((path, values))
    return arrays


@pytest.mark.parametrize("index", range(4))
@WINDOWS
@given(window=_windows(HEIGHT))
def test_zarr_rows_equal_zarr(zarr_arrays, index, window):
    path, reference = zarr_arrays[index]  # the fixture checked zarr reads these values
    reference = reference[:, :, np.newaxis] if reference.ndim == 2 else reference
    expected_dtype = np.float64 if reference.dtype == np.float64 else np.float32
    source = open_source(path)
    depth = 8 if reference.dtype == np.uint8 else 16 if reference.dtype == np.uint16 else 32
    assert isinstance(source, ZarrSource) and source.mode == "zarr" and source.bit_depth == depth
    assert source.shape == reference.shape and source.dtype == expected_dtype
    assert source.stem == f"z{index}"
    start, stop = window
    np.testing.assert_array_equal(source.read_rows(start, stop),
                                  reference[start:stop].astype(expected_dtype))


def test_zarr_pickle(zarr_arrays):
    path, values = zarr_arrays[1]
    source = open_source(path)
    source.read_rows(0, 2)
    clone = pickle.loads(pickle.dumps(source))
    assert clone._array is None
    np.testing.assert_array_equal(clone.read_rows(11, 40), values[11:40].astype(np.float32))


def _chunk_files(path: str) -> list[str]:
    found = []
    for root, _, files in os.walk(path):
        found += [os.path.join(root, name) for name in files
                  if name not in ("zarr.json", ".zarray", ".zattrs", ".zgroup")]
    return sorted(found)


def test_zarr_missing_chunk_is_fill_value(tmp_path):
    path = str(tmp_path / "sparse.zarr")
    array = zarr.create_array(store=path, shape=(20, 10), chunks=(5, 10), dtype="float32",
                              fill_value=-7.0)
    array[0:5] = 1.0
    array[15:20] = 2.0  # chunks 1 and 2 never written
    assert len(_chunk_files(path)) == 2
    rows = open_source(path).read_rows(3, 17)[:, :, 0]
    np.testing.assert_array_equal(rows, np.asarray(zarr.open_array(path, mode="r")[3:17]))
    assert (rows[2:12] == -7.0).all()


def test_zarr_corrupt_chunk_names_key_and_rows(tmp_path):
    path = str(tmp_path / "corrupt.zarr")
    array = zarr.create_array(store=path, shape=(20, 10), chunks=(5, 10), dtype="float32")
    array[:] = np.arange(200, dtype=np.float32).reshape(20, 10)
    chunk = os.path.join(path, "c", "2", "0")
    assert os.path.isfile(chunk)
    with open(chunk, "wb") as handle:
        handle.write(b"not a zstd frame at all")
    source = open_source(path)
    np.testing.assert_array_equal(source.read_rows(0, 10)[:, :, 0], np.asarray(array[0:10]))
    with pytest.raises(ImageError, match=r"corrupt\.zarr: cannot decode chunk c/2/0 \(rows 10-14, "
                                         r"columns 0-9\)"):
        source.read_rows(8, 20)


@pytest.mark.parametrize("zarr_format", [2, 3])
def test_zarr_corrupt_chunk_is_named_by_its_key(tmp_path, zarr_format):
    """Of a (H, W, C) array chunked in rows, columns and channels, the one chunk whose bytes are
    garbage is named by its store key; its neighbours in the chunk row read as stored."""
    path = str(tmp_path / "multi.zarr")
    image = np.arange(30 * 25 * 4, dtype=np.float32).reshape(30, 25, 4)
    array = zarr.create_array(store=path, shape=image.shape, chunks=(10, 10, 2), dtype="float32",
                              zarr_format=zarr_format)
    array[...] = image
    key = "c/1/2/1" if zarr_format == 3 else "1.2.1"
    chunk = os.path.join(path, *key.split("/"))
    assert os.path.isfile(chunk)
    with open(chunk, "r+b") as handle:  # the stored bytes, mangled: no longer a valid frame
        handle.write(b"\xff" * 16)
    source = open_source(path)
    np.testing.assert_array_equal(source.read_rows(0, 10), image[:10])
    np.testing.assert_array_equal(source.read_rows(20, 30), image[20:])
    with pytest.raises(ImageError, match=rf"^[^\n]*multi\.zarr: cannot decode chunk {re.escape(key)} "
                                         r"\(rows 10-19, columns 20-24\): [^\n]+$"):
        source.read_rows(5, 15)


def test_zarr_group_and_plain_directory(tmp_path):
    group = str(tmp_path / "group.zarr")
    zarr.open_group(group, mode="w")
    with pytest.raises(ImageError, match=r"group\.zarr: is a zarr group, not an array"):
        open_source(group)
    with pytest.raises(ImageError, match="is a directory, not an image"):
        open_source(str(tmp_path))


def test_zarr_extra_missing(zarr_arrays, monkeypatch):
    monkeypatch.setitem(sys.modules, "zarr", None)
    with pytest.raises(ImageError, match=r"needs the zarr extra: pip install 'convcli\[zarr\]'"):
        open_source(zarr_arrays[0][0])


def test_zarr_bad_shape(tmp_path):
    path = str(tmp_path / "vector.zarr")
    zarr.create_array(store=path, shape=(10,), chunks=(5,), dtype="float32")
    with pytest.raises(ImageError, match=r"vector\.zarr: zarr array must be"):
        open_source(path)


# ---------------------------------------------------------------------------
# images decoded whole (Pillow), arrays, stdin


@pytest.mark.parametrize("fmt", ["PNG", "JPEG", "GIF", "BMP", "WEBP"])
def test_pillow_formats_equal_read_image(tmp_path, fmt):
    pixels = _smooth(3, 30, 21)
    path = str(tmp_path / f"image.{fmt.lower()}")
    Image.fromarray(pixels).save(path, format=fmt)
    source = open_source(path)
    loaded = imageio.read_image(path)
    assert isinstance(source, PillowSource)
    assert (source.shape, source.dtype, source.mode, source.bit_depth, source.channel_names) == (
        loaded.pixels.shape, loaded.pixels.dtype, loaded.mode, loaded.bit_depth, loaded.channel_names)
    with Image.open(path) as image:
        independent = np.asarray(image.convert("RGB"))
    np.testing.assert_array_equal(source.read_rows(4, 19), independent[4:19])
    view = source.read_rows(0, 5)
    assert not view.flags.writeable
    clone = pickle.loads(pickle.dumps(source))
    assert clone._pixels is None  # a real file travels by name and is decoded again
    np.testing.assert_array_equal(clone.read_rows(0, 30), loaded.pixels)


def test_pillow_png16_and_metadata(tmp_path):
    pixels = (np.arange(12 * 9 * 3, dtype=np.uint16).reshape(12, 9, 3) * 97)
    path = str(tmp_path / "deep.png")
    from convcli.png import encode_png

    Path(path).write_bytes(encode_png(pixels))
    source = open_source(path)
    assert source.mode == "RGB;16" and source.dtype == np.uint16 and source.bit_depth == 16
    np.testing.assert_array_equal(source.read_rows(0, 12), pixels)

    from PIL import PngImagePlugin

    info = PngImagePlugin.PngInfo()
    info.add_text("Title", "a test")
    tagged = str(tmp_path / "tagged.png")
    Image.fromarray(_smooth(3, 5, 5)).save(tagged, pnginfo=info, dpi=(72, 96),
                                           icc_profile=b"icc bytes")
    metadata = open_source(tagged).metadata
    assert metadata["text"] == {"Title": "a test"} and metadata["icc_profile"] == b"icc bytes"
    assert metadata["dpi"] == pytest.approx((72, 96), abs=0.05)


def test_jpeg_exif_orientation_applied(tmp_path):
    pixels = _smooth(3, 16, 24)
    exif = Image.Exif()
    exif[0x0112] = 6
    path = str(tmp_path / "turned.jpg")
    Image.fromarray(pixels).save(path, exif=exif, quality=95)
    source = open_source(path)
    assert source.shape == (24, 16, 3)
    assert "exif" in source.metadata


def test_array_source():
    array = _data("uint16", 3, 10, 6)
    source = ArraySource.from_array(array)
    assert (source.name, source.mode, source.bit_depth, source.channel_names) == (
        "array", "RGB;16", 16, ("R", "G", "B"))
    np.testing.assert_array_equal(source.read_rows(2, 5), array[2:5])
    gray = ArraySource.from_array(np.ones((4, 5), np.uint8), name="ones")
    assert gray.shape == (4, 5, 1) and gray.mode == "L" and gray.stem == "ones"
    swapped = ArraySource.from_array(array.astype(">u2"))
    assert swapped.dtype == np.uint16 and swapped.read_rows(0, 10).dtype == np.uint16
    np.testing.assert_array_equal(swapped.read_rows(0, 10), array)
    floats = ArraySource.from_array(np.ones((4, 5, 6), np.int64))
    assert floats.dtype == np.float32 and floats.channel_names[-1] == "c5"
    np.testing.assert_array_equal(pickle.loads(pickle.dumps(floats)).read_rows(0, 4), np.ones((4, 5, 6)))
    with pytest.raises(ValueError, match="rows 3:3"):
        floats.read_rows(3, 3)
    with pytest.raises(ValueError):
        floats.read_rows(0, 5)
    with pytest.raises(ImageError, match="no empty axis"):
        ArraySource.from_array(np.ones((0, 3)))
    assert isinstance(source, Source)


def _fake_stdin(monkeypatch, data: bytes) -> None:
    monkeypatch.setattr(sys, "stdin", types.SimpleNamespace(buffer=io.BytesIO(data)))


def test_stdin_tiff_png_npy(monkeypatch, tiff_files):
    path, pixels = tiff_files["uint16-3-strips7-zlib"]
    _fake_stdin(monkeypatch, Path(path).read_bytes())
    source = open_source("-")
    assert isinstance(source, TiffSource) and source.name == "-" and source.stem == "stdin"
    np.testing.assert_array_equal(pickle.loads(pickle.dumps(source)).read_rows(3, 40), pixels[3:40])

    from convcli.png import encode_png

    _fake_stdin(monkeypatch, encode_png(_smooth(3, 6, 7)))
    source = open_source("-")
    assert isinstance(source, PillowSource) and source.mode == "RGB"
    np.testing.assert_array_equal(pickle.loads(pickle.dumps(source)).read_rows(0, 6), _smooth(3, 6, 7))

    _fake_stdin(monkeypatch, imageio.encode_npy(np.arange(12.0).reshape(3, 4)))
    source = open_source("-")
    assert source.mode == "npy" and source.shape == (3, 4, 1)
    np.testing.assert_array_equal(source.read_rows(1, 3)[:, :, 0], np.arange(4.0, 12.0).reshape(2, 4))

    _fake_stdin(monkeypatch, b"")
    with pytest.raises(ImageError, match="stdin: no input"):
        open_source("-")


# ---------------------------------------------------------------------------
# open_source validation


def test_open_source_refusals(tmp_path, tiff_files):
    with pytest.raises(ImageError, match=r"nope\.tif: no such file"):
        open_source(str(tmp_path / "nope.tif"))
    empty = tmp_path / "empty.png"
    empty.write_bytes(b"")
    with pytest.raises(ImageError, match=r"empty\.png: empty file"):
        open_source(str(empty))
    text = tmp_path / "notes.tif"
    text.write_text("hello")
    with pytest.raises(ImageError, match=r"notes\.tif: not a recognised image file"):
        open_source(str(text))
    path = tiff_files["uint8-1-plain"][0]
    with pytest.raises(ImageError, match=rf"{HEIGHT}×{WIDTH} \(H×W\) = {WIDTH * HEIGHT} pixels exceeds"):
        open_source(path, streamed_max_pixels=100)
    assert open_source(path, max_pixels=100).shape[:2] == (HEIGHT, WIDTH)  # read by region: no default limit
    with pytest.raises(OptionError, match="max_pixels"):
        open_source(path, max_pixels=0)
    png = tmp_path / "big.png"
    Image.fromarray(_smooth(1, 20, 20)[:, :, 0]).save(png)
    with pytest.raises(ImageError, match="exceeds the limit"):
        open_source(str(png), max_pixels=399)


def test_tiff_name_does_not_matter(tmp_path, tiff_files):
    path, pixels = tiff_files["uint16-1-plain"]
    renamed = tmp_path / "disguised.png"
    renamed.write_bytes(Path(path).read_bytes())
    source = open_source(renamed)  # a PathLike works too
    assert isinstance(source, TiffSource) and source.name == str(renamed)
    np.testing.assert_array_equal(source.read_rows(0, HEIGHT), pixels)


def test_uncompressed_single_strip_reads_only_the_band_bytes(tmp_path):
    height, width = 4000, 3000
    rows = np.arange(height, dtype=np.uint32)[:, np.newaxis]
    pixels = ((rows * 7 + np.arange(width, dtype=np.uint32)) % 253).astype(np.uint8)
    path = str(tmp_path / "one-strip.tif")
    tifffile.imwrite(path, pixels)
    with tifffile.TiffFile(path) as tif:
        assert len(tif.pages[0].dataoffsets) == 1  # the whole image is one strip
    source = open_source(path)
    np.testing.assert_array_equal(source.read_rows(1000, 1064)[:, :, 0], pixels[1000:1064])
    assert source.bytes_read == 64 * width
    np.testing.assert_array_equal(source.read_rows(3999, 4000)[:, :, 0], pixels[3999:])
    assert source.bytes_read == 65 * width


@pytest.mark.parametrize("options", [{"planarconfig": "separate"}, {"byteorder": ">"},
                                     {"rowsperstrip": 11}])
def test_uncompressed_strip_layouts(tmp_path, options):
    pixels = _data("uint16", 3, 50, 21)
    path = str(tmp_path / "raw.tif")
    _write_tiff(path, pixels, options)
    source = open_source(path)
    assert source._raw_strips
    for start, stop in ((0, 50), (7, 8), (10, 33), (49, 50)):
        np.testing.assert_array_equal(source.read_rows(start, stop), pixels[start:stop])
    assert source.bytes_read < 3 * pixels.nbytes


def test_tiff_first_strip_undecodable_falls_back_then_fails_clearly(tmp_path):
    pixels = _data("uint8", 1, 64, 40)
    path = str(tmp_path / "first.tif")
    tifffile.imwrite(path, pixels[:, :, 0], rowsperstrip=16, compression="zlib")
    offsets, counts = _strip_layout(path)
    with open(path, "r+b") as handle:
        handle.seek(offsets[0])
        handle.write(b"\xff" * counts[0])
    with pytest.raises(ImageError, match=r"first\.tif: .*\(tifffile: cannot decode strip 0 \(rows 0-15\)"):
        open_source(path)


def test_zarr_keeps_the_last_chunk_row_decoded(tmp_path, monkeypatch):
    """Bands inside one chunk row decode it once: after the first band the chunk file is not read
    again (mangling it changes nothing) until another chunk row has been read; over the byte limit
    every band decodes its chunks."""
    from convcli.pipeline import sources

    path = str(tmp_path / "kept.zarr")
    image = np.arange(40 * 12, dtype=np.float32).reshape(40, 12)
    zarr.create_array(store=path, shape=image.shape, chunks=(20, 6), dtype="float32")[...] = image
    chunk = os.path.join(path, "c", "0", "1")
    stored = Path(chunk).read_bytes()
    with monkeypatch.context() as patch:
        patch.setattr(sources, "_ZARR_DECODE_BYTES", 1)  # a kept row decoded one chunk at a time
        np.testing.assert_array_equal(open_source(path).read_rows(17, 40)[..., 0], image[17:40])

    source = open_source(path)
    np.testing.assert_array_equal(source.read_rows(0, 3)[..., 0], image[0:3])
    with open(chunk, "wb") as handle:
        handle.write(b"\0" * len(stored))
    np.testing.assert_array_equal(source.read_rows(3, 19)[..., 0], image[3:19])  # the kept row
    np.testing.assert_array_equal(source.read_rows(20, 23)[..., 0], image[20:23])  # the next row
    with pytest.raises(ImageError, match=r"kept\.zarr: cannot decode chunk c/0/1"):
        source.read_rows(5, 8)  # decoded again: the mangled bytes are read

    monkeypatch.setattr(sources, "ZARR_KEPT_BYTES", 0)
    with open(chunk, "wb") as handle:
        handle.write(stored)
    small = open_source(path)
    np.testing.assert_array_equal(small.read_rows(0, 3)[..., 0], image[0:3])
    with open(chunk, "wb") as handle:
        handle.write(b"\0" * len(stored))
    with pytest.raises(ImageError, match=r"kept\.zarr: cannot decode chunk c/0/1"):
        small.read_rows(3, 6)


@pytest.mark.skipif(not os.access("/proc/self/clear_refs", os.W_OK),
                    reason="resets the peak RSS through /proc")
def test_zarr_kept_row_is_freed_before_the_next_is_decoded(tmp_path):
    """A window across two chunk rows: the old kept row (32 MB) is gone before the next is decoded,
    so the peak does not grow by a second chunk row (measured: 0 MiB; 56 MiB when both were alive)."""
    path = str(tmp_path / "wide.zarr")
    rows, cols = 2048, 16384
    array = zarr.create_array(store=path, shape=(2 * rows, cols), chunks=(rows, 4096), dtype="uint8")
    texture = np.random.default_rng(5).integers(0, 255, (rows, cols), dtype=np.uint8)
    array[:rows], array[rows:] = texture, texture[::-1]
    del texture
    source = open_source(path)
    source.read_rows(0, 10)  # chunk row 0 kept

    def kib(field):
        with open("/proc/self/status") as status:
            return next(int(line.split()[1]) for line in status if line.startswith(field))

    with open("/proc/self/clear_refs", "w") as handle:
        handle.write("5")  # peak RSS := current RSS
    before = kib("VmRSS:")
    band = source.read_rows(rows - 5, rows + 5)  # row 0's end, then row 1
    growth = (kib("VmHWM:") - before) * 1024
    assert band.shape == (10, cols, 1)
    assert growth < 0.75 * rows * cols, f"peak grew {growth / 2**20:.0f} MiB for a 32 MiB row"


@pytest.mark.parametrize("layout", [{"bigtiff": True, "byteorder": ">"}, {"byteorder": ">"}, {}])
def test_every_page_of_a_multi_page_tiff_is_a_frame_in_any_byte_order(tmp_path, layout):
    """Pages are counted and read by tifffile: a big-endian BigTIFF's second page is not dropped
    (Pillow reads such a file as one page, with warnings)."""
    import subprocess
    import sys

    first = (np.arange(40 * 50 * 3).reshape(40, 50, 3) % 256).astype(np.uint8)
    tifffile.imwrite(tmp_path / "pages.tif", np.stack([first, 255 - first]), photometric="rgb", **layout)
    result = subprocess.run([sys.executable, "-m", "convcli", "apply", "pages.tif", "-k", "1", "-f", "png",
                             "-o", "out/"], cwd=tmp_path, capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    assert all(line.startswith("wrote ") for line in result.stderr.splitlines()), result.stderr
    outputs = sorted((tmp_path / "out").iterdir())
    assert [p.name.split(".")[1] for p in outputs] == ["f0", "f1"]
    np.testing.assert_array_equal(np.asarray(Image.open(outputs[0])), first)
    np.testing.assert_array_equal(np.asarray(Image.open(outputs[1])), 255 - first)
