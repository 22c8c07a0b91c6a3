"""Streaming sinks (convcli.pipeline.sinks): files written band by band, read back by other readers.

Every written file is read by an independent reader (Pillow for PNG,
tifffile for TIFF, ``np.load`` for ``.npy``, zarr-python for zarr) and
compared with the concatenation of the bands. The fault tests check the
atomicity contract: an error, a Ctrl-C or a full disk between or during bands
leaves neither the target nor a temporary file in the directory.
"""

from __future__ import annotations

import errno
import io
import os
import struct
import sys
import tempfile
import tracemalloc
import types

import numpy as np
import pytest
import tifffile
from hypothesis import given
from hypothesis import strategies as st
from PIL import Image
from reference import reference_png_decode

from convcli import png
from convcli.errors import ConvcliError, OptionError, OutputError, ShapeError
from convcli.imageio import read_image
from convcli.pipeline import sinks
from convcli.pipeline.sinks import open_sink

zarr = pytest.importorskip("zarr")

SUFFIX = {"png": ".png", "tiff": ".tif", "npy": ".npy", "zarr": ".zarr"}
DTYPES = {
    "png": (np.uint8, np.uint16),
    "tiff": (np.uint8, np.uint16, np.float32),
    "npy": (np.float32, np.float64),
    "zarr": (np.float32, np.float64, np.uint8),
}


def _image(rng: np.random.Generator, shape, dtype) -> np.ndarray:
    dtype = np.dtype(dtype)
    if dtype.kind == "u":
        # a mix of smooth and noisy parts, so the filters and deflate have something to do
        noise = rng.integers(0, np.iinfo(dtype).max + 1, shape, dtype=dtype)
        ramp = (np.arange(shape[1])[None, :, None] * 7 % (np.iinfo(dtype).max + 1)).astype(dtype)
        return np.where(rng.random(shape) < 0.5, noise, np.broadcast_to(ramp, shape))
    return (rng.standard_normal(shape) * 100).astype(dtype)


def _bands(image: np.ndarray, heights: list[int]):
    """``image`` cut into bands of the given heights (cycled), each a fresh copy."""
    start, index = 0, 0
    while start < image.shape[0]:
        height = heights[index % len(heights)]
        yield image[start:start + height].copy()
        start += height
        index += 1


def _read_back(path: str, fmt: str) -> np.ndarray:
    """The file's pixels as (H, W, C), by a reader other than convcli's writer."""
    if fmt == "png":
        with open(path, "rb") as handle:
            data = handle.read()
        depth, colour = data[24], data[25]  # IHDR bit depth and colour type
        if depth == 8 or colour == 0:  # Pillow: L, LA, RGB, RGBA, I;16
            with Image.open(io.BytesIO(data)) as image:
                array = np.asarray(image).astype(np.uint16 if depth == 16 else np.uint8)
        else:  # 16-bit colour: Pillow reduces it to 8 bits; decode it at full depth
            array = reference_png_decode(data)
    elif fmt == "tiff":
        array = tifffile.imread(path)
    elif fmt == "npy":
        array = np.load(path, allow_pickle=False)
    else:
        array = zarr.open_array(path, mode="r")[:]
    return array if array.ndim == 3 else array[:, :, np.newaxis]


def _leftovers(directory) -> list[str]:
    return sorted(os.listdir(directory))


@st.composite
def _cases(draw):
    fmt = draw(st.sampled_from(sorted(DTYPES)))
    dtype = draw(st.sampled_from(DTYPES[fmt]))
    height = draw(st.integers(1, 70))
    width = draw(st.integers(1, 60))
    channels = draw(st.integers(1, 4) if fmt == "png" else st.integers(1, 6))
    heights = draw(st.lists(st.integers(1, 40), min_size=1, max_size=6))
    options = {}
    if fmt == "tiff":
        options["tile"] = draw(st.sampled_from([None, 16, 32]))
    if fmt == "zarr":
        options["chunks"] = draw(st.sampled_from([None, (7, 5), (16, 64)]))
    if fmt == "png":
        options["compress_level"] = draw(st.integers(0, 9))
    seed = draw(st.integers(0, 2**32 - 1))
    return fmt, np.dtype(dtype), (height, width, channels), heights, options, seed


@given(_cases())
def test_written_file_reads_back_as_the_bands(case):
    fmt, dtype, shape, heights, options, seed = case
    image = _image(np.random.default_rng(seed), shape, dtype)
    with tempfile.TemporaryDirectory() as directory, pytest.MonkeyPatch.context() as patch:
        patch.setattr(png, "_BLOCK_BYTES", 97)  # many deflate blocks even in tiny images
        target = os.path.join(directory, "out" + SUFFIX[fmt])
        with open_sink(target, fmt, shape, dtype, **options) as sink:
            for band in _bands(image, heights):
                sink.write_rows(band)
            sink.commit()
        assert _leftovers(directory) == ["out" + SUFFIX[fmt]]
        back = _read_back(target, fmt)
        assert back.dtype == dtype
        np.testing.assert_array_equal(back, image)
        if fmt == "tiff":
            with tifffile.TiffFile(target) as tif:
                assert not tif.is_bigtiff
                page = tif.pages[0]
                assert page.is_tiled and page.compression == tifffile.COMPRESSION.ADOBE_DEFLATE


@pytest.mark.parametrize(("channels", "dtype"), [(1, np.uint8), (2, np.uint16), (3, np.uint16),
                                                 (4, np.uint8)])
def test_png_bands_match_whole_image_encoder_and_pillow(tmp_path, channels, dtype):
    """Fed in bands, the PNG sink writes the same bytes as encode_png of the whole image."""
    rng = np.random.default_rng(channels)
    image = _image(rng, (300, 257, channels), dtype)
    target = tmp_path / "out.png"
    with open_sink(target, "png", image.shape, dtype, compress_level=1) as sink:
        for band in _bands(image, [1, 77, 3, 150]):
            sink.write_rows(band)
        sink.commit()
    assert target.read_bytes() == png.encode_png(image, compress_level=1)
    np.testing.assert_array_equal(read_image(target).array.reshape(image.shape), image)


def test_png_metadata_read_back_by_pillow(tmp_path):
    profile = bytes(range(256)) * 3  # Pillow returns the profile's bytes without parsing them
    metadata = {"icc_profile": profile, "dpi": 300,
                "text": {"Software": "convcli", "Title": "Straße", "Comment": "σ = 2 → 画像"}}
    image = _image(np.random.default_rng(3), (20, 30, 3), np.uint8)
    target = tmp_path / "meta.png"
    with open_sink(target, "png", image.shape, np.uint8, metadata=metadata) as sink:
        sink.write_rows(image)
        sink.commit()
    with Image.open(target) as loaded:
        assert loaded.info["icc_profile"] == profile
        assert tuple(round(value) for value in loaded.info["dpi"]) == (300, 300)
        assert loaded.text == metadata["text"]
        np.testing.assert_array_equal(np.asarray(loaded), image)
    data = target.read_bytes()
    assert data.index(b"pHYs") < data.index(b"IDAT") and data.index(b"iCCP") < data.index(b"IDAT")
    (ppm,) = struct.unpack(">I", data[data.index(b"pHYs") + 4:data.index(b"pHYs") + 8])
    assert ppm == 11811  # 300 / 0.0254 rounded


@pytest.mark.parametrize("dpi", [72, (150, 300), 96.5])
def test_png_dpi_rounds_to_the_nearest_pixel_per_metre(tmp_path, dpi):
    target = tmp_path / "dpi.png"
    with open_sink(target, "png", (2, 2, 1), np.uint8, metadata={"dpi": dpi}) as sink:
        sink.write_rows(np.zeros((2, 2, 1), np.uint8))
        sink.commit()
    expected = (dpi, dpi) if np.isscalar(dpi) else dpi
    with Image.open(target) as loaded:
        np.testing.assert_allclose(loaded.info["dpi"], expected, atol=0.0254 / 2)


def test_tiff_metadata_and_photometric(tmp_path):
    profile = b"\x00\x01fake icc" * 10
    for channels, photometric, extra in [(1, "MINISBLACK", 0), (2, "MINISBLACK", 1), (3, "RGB", 0),
                                         (4, "RGB", 1), (5, "MINISBLACK", 4)]:
        target = tmp_path / f"c{channels}.tif"
        image = _image(np.random.default_rng(channels), (40, 33, channels), np.uint16)
        with open_sink(target, "tiff", image.shape, np.uint16,
                       metadata={"dpi": (300, 150), "icc_profile": profile}) as sink:
            for band in _bands(image, [13]):
                sink.write_rows(band)
            sink.commit()
        with tifffile.TiffFile(target) as tif:
            page = tif.pages[0]
            assert page.photometric.name == photometric
            assert len(page.extrasamples) == extra
            assert page.tags["XResolution"].value == (300, 1)
            assert page.tags["YResolution"].value == (150, 1)
            assert page.tags["ResolutionUnit"].value == tifffile.RESUNIT.INCH
            assert page.tags["InterColorProfile"].value == profile
            np.testing.assert_array_equal(page.asarray().reshape(image.shape), image)


def test_tiff_switches_to_bigtiff_past_the_threshold(tmp_path, monkeypatch):
    image = _image(np.random.default_rng(5), (50, 40, 3), np.uint8)
    for threshold, expected in [(image.nbytes, False), (image.nbytes - 1, True)]:
        monkeypatch.setattr(sinks, "BIGTIFF_THRESHOLD", threshold)
        target = tmp_path / f"big{expected}.tif"
        with open_sink(target, "tiff", image.shape, np.uint8, tile=16) as sink:
            for band in _bands(image, [9, 30]):
                sink.write_rows(band)
            sink.commit()
        with tifffile.TiffFile(target) as tif:
            assert tif.is_bigtiff is expected
            np.testing.assert_array_equal(tif.asarray(), image)


def test_npy_header_and_layout(tmp_path):
    image = np.random.default_rng(0).standard_normal((33, 17, 3)).astype(np.float32)
    target = tmp_path / "maps.npy"
    with open_sink(target, "npy", image.shape, np.float32) as sink:
        for band in _bands(image, [1, 5]):
            sink.write_rows(band)
        sink.commit()
    data = target.read_bytes()
    assert data == _npy_bytes(image)


def _npy_bytes(array):
    buffer = io.BytesIO()
    np.save(buffer, array)
    return buffer.getvalue()


def test_zarr_chunks_and_metadata(tmp_path):
    image = np.random.default_rng(1).standard_normal((300, 270, 2)).astype(np.float32)
    target = tmp_path / "maps.zarr"
    with open_sink(target, "zarr", image.shape, np.float32) as sink:
        for band in _bands(image, [100]):
            sink.write_rows(band)
        sink.commit()
    array = zarr.open_array(target, mode="r")
    assert array.metadata.zarr_format == 3
    assert array.chunks == (256, 256, 2)
    np.testing.assert_array_equal(array[:], image)
    # every chunk was written once, as whole chunk rows: 2 × 2 chunk files
    chunk_files = [name for _, _, names in os.walk(target) for name in names if name != "zarr.json"]
    assert len(chunk_files) == 4


# ---------------------------------------------------------------------------
# faults: nothing left behind


def _open(directory, fmt, shape=(40, 30, 3), **options):
    dtype = DTYPES[fmt][0]
    return open_sink(os.path.join(directory, "out" + SUFFIX[fmt]), fmt, shape, dtype, **options), dtype


@pytest.mark.parametrize("fmt", sorted(DTYPES))
@pytest.mark.parametrize("error", [RuntimeError("filter crashed"), KeyboardInterrupt()])
def test_error_between_bands_leaves_nothing(tmp_path, fmt, error):
    sink, dtype = _open(tmp_path, fmt, tile=16, chunks=(8, 8))
    image = _image(np.random.default_rng(0), sink.shape, dtype)
    with pytest.raises(type(error)), sink:
        sink.write_rows(image[:17])
        assert _leftovers(tmp_path)  # the temporary exists while writing
        raise error
    assert _leftovers(tmp_path) == []
    sink.abort()  # idempotent
    with pytest.raises(OutputError, match="aborted"):
        sink.write_rows(image[17:])


@pytest.mark.parametrize("fmt", sorted(DTYPES))
def test_leaving_without_commit_aborts(tmp_path, fmt):
    sink, dtype = _open(tmp_path, fmt)
    with sink:
        sink.write_rows(np.zeros((40, 30, 3), dtype))
    assert _leftovers(tmp_path) == []


@pytest.mark.parametrize("fmt", sorted(DTYPES))
def test_commit_before_the_last_row_is_an_error(tmp_path, fmt):
    sink, dtype = _open(tmp_path, fmt)
    with pytest.raises(ShapeError, match="39 of 40 rows"), sink:
        sink.write_rows(np.zeros((39, 30, 3), dtype))
        sink.commit()
    assert _leftovers(tmp_path) == []


@pytest.mark.parametrize("fmt", sorted(DTYPES))
def test_bad_bands_are_refused(tmp_path, fmt):
    sink, dtype = _open(tmp_path, fmt)
    with sink:
        with pytest.raises(ShapeError, match=r"shape \(h, 30, 3\)"):
            sink.write_rows(np.zeros((4, 31, 3), dtype))
        with pytest.raises(ShapeError, match="must be"):
            sink.write_rows(np.zeros((4, 30, 3), np.int32))
        sink.write_rows(np.zeros((30, 30, 3), dtype))
        with pytest.raises(ShapeError, match="pass the image's 40 rows"):
            sink.write_rows(np.zeros((11, 30, 3), dtype))
        sink.write_rows(np.zeros((10, 30, 3), dtype))
        sink.commit()
    assert _leftovers(tmp_path) == ["out" + SUFFIX[fmt]]


class _FullDisk:
    """A temporary file whose writes fail with ENOSPC once ``budget`` bytes have gone through."""

    budget = 0

    def __init__(self, **kwargs):
        self._file = _REAL_NAMED_TEMPORARY(**kwargs)
        self.written = 0

    def write(self, data):
        size = memoryview(data).nbytes
        if self.written + size > self.budget:
            raise OSError(errno.ENOSPC, "No space left on device")
        self.written += size
        return self._file.write(data)

    def __getattr__(self, name):
        return getattr(self._file, name)


_REAL_NAMED_TEMPORARY = tempfile.NamedTemporaryFile


@pytest.mark.parametrize("fmt", ["png", "tiff", "npy"])
@pytest.mark.parametrize("budget", [0, 600, 5000])
def test_full_disk_mid_stream_is_an_output_error_and_leaves_nothing(tmp_path, monkeypatch, fmt, budget):
    monkeypatch.setattr(_FullDisk, "budget", budget)
    monkeypatch.setattr(tempfile, "NamedTemporaryFile", _FullDisk)
    image = _image(np.random.default_rng(0), (300, 200, 3), DTYPES[fmt][0])
    with pytest.raises(OutputError, match=r"out\.\w+: no space left on device"):
        sink, _ = _open(tmp_path, fmt, shape=image.shape, tile=16)
        with sink:
            for band in _bands(image, [20]):
                sink.write_rows(band)
            sink.commit()
    assert _leftovers(tmp_path) == []


def test_full_disk_while_writing_zarr_chunks(tmp_path, monkeypatch):
    from zarr.storage import _local

    sink, dtype = _open(tmp_path, "zarr", chunks=(8, 8))
    real_put = _local._put

    def full(path, value, exclusive=False):
        if "c" in path.parts[-4:]:  # a chunk, not the metadata
            raise OSError(errno.ENOSPC, "No space left on device")
        return real_put(path, value, exclusive)

    monkeypatch.setattr(_local, "_put", full)
    with pytest.raises(OutputError, match=r"out\.zarr: no space left on device"), sink:
        sink.write_rows(np.ones((40, 30, 3), dtype))  # zarr skips chunks equal to the fill value
    assert _leftovers(tmp_path) == []


def test_tiff_writer_thread_error_reaches_the_caller(tmp_path, monkeypatch):
    def broken_write(self, data, **options):
        next(iter(data))
        raise ValueError("codec exploded")

    monkeypatch.setattr(tifffile.TiffWriter, "write", broken_write)
    image = np.zeros((100, 30, 1), np.uint8)
    with pytest.raises(OutputError, match=r"out\.tif: TIFF writer failed \(ValueError: codec exploded\)"), \
            open_sink(tmp_path / "out.tif", "tiff", image.shape, np.uint8, tile=16) as sink:
        for band in _bands(image, [1]):
            sink.write_rows(band)
        sink.commit()
    assert _leftovers(tmp_path) == []


# ---------------------------------------------------------------------------
# checks in open_sink, before anything is written


@pytest.mark.parametrize("fmt", sorted(DTYPES))
def test_existing_target_needs_force(tmp_path, fmt):
    target = tmp_path / ("out" + SUFFIX[fmt])
    if fmt == "zarr":
        zarr.create_array(store=str(target), shape=(2, 2, 1), dtype="f4", zarr_format=3)
    else:
        target.write_bytes(b"old")
    before = _leftovers(tmp_path)
    with pytest.raises(OutputError, match=r"exists; use --force to overwrite"):
        open_sink(target, fmt, (4, 4, 1), DTYPES[fmt][0])
    assert _leftovers(tmp_path) == before
    image = _image(np.random.default_rng(0), (4, 4, 1), DTYPES[fmt][0])
    with open_sink(target, fmt, image.shape, image.dtype, force=True) as sink:
        sink.write_rows(image)
        sink.commit()
    np.testing.assert_array_equal(_read_back(str(target), fmt), image)
    assert _leftovers(tmp_path) == before


def test_zarr_force_does_not_delete_a_plain_directory(tmp_path):
    folder = tmp_path / "photos.zarr"
    folder.mkdir()
    (folder / "holiday.jpg").write_bytes(b"precious")
    with pytest.raises(OutputError, match="not a zarr array"):
        open_sink(folder, "zarr", (4, 4, 1), np.float32, force=True)
    assert (folder / "holiday.jpg").read_bytes() == b"precious"


@pytest.mark.parametrize("fmt", sorted(DTYPES))
def test_input_missing_directory_and_directory_targets(tmp_path, fmt):
    source = tmp_path / "in.png"
    source.write_bytes(b"input")
    with pytest.raises(OutputError, match="refusing to overwrite an input"):
        open_sink(source, fmt, (4, 4, 1), DTYPES[fmt][0], force=True, protect=[str(source)])
    with pytest.raises(OutputError, match="does not exist"):
        open_sink(tmp_path / "no" / ("out" + SUFFIX[fmt]), fmt, (4, 4, 1), DTYPES[fmt][0])
    if fmt != "zarr":
        with pytest.raises(OutputError, match="is a directory"):
            open_sink(tmp_path, fmt, (4, 4, 1), DTYPES[fmt][0], force=True)
    assert _leftovers(tmp_path) == ["in.png"]


def test_unwritable_directory(locked_dir):
    for fmt in DTYPES:
        with pytest.raises(OutputError, match="permission denied"):
            open_sink(locked_dir / ("out" + SUFFIX[fmt]), fmt, (4, 4, 1), DTYPES[fmt][0])


def test_bad_options(tmp_path):
    target = tmp_path / "out"
    cases = [
        (dict(fmt="gif", shape=(2, 2, 1), dtype=np.uint8), OptionError, "`fmt` must be one of"),
        (dict(fmt="png", shape=(2, 2, 1), dtype=np.float32), OptionError, "png output holds uint8, uint16"),
        (dict(fmt="tiff", shape=(2, 2, 1), dtype=np.float64), OptionError, "not float64"),
        (dict(fmt="png", shape=(2, 2, 5), dtype=np.uint8), ShapeError, "1 to 4 channels"),
        (dict(fmt="npy", shape=(0, 2, 1), dtype=np.float32), ShapeError, "positive sizes"),
        (dict(fmt="npy", shape=(2, 2), dtype=np.float32), ShapeError, r"\(H, W, C\)"),
        (dict(fmt="png", shape=(2, 2, 1), dtype=np.uint8, compress_level=10), OptionError, "0..9"),
        (dict(fmt="tiff", shape=(2, 2, 1), dtype=np.uint8, tile=100), OptionError, "multiple of 16"),
        (dict(fmt="zarr", shape=(2, 2, 1), dtype=np.float32, chunks=(0, 4)), OptionError, "`chunks`"),
        (dict(fmt="tiff", shape=(2, 2, 1), dtype=np.uint8, metadata={"dpi": -3}), OptionError, "`dpi`"),
        (dict(fmt="png", shape=(2, 2, 1), dtype=np.uint8, metadata={"dpi": 0}), OptionError, "`dpi`"),
    ]
    for kwargs, error, message in cases:
        with pytest.raises(error, match=message):
            open_sink(target, **kwargs)
        assert _leftovers(tmp_path) == []
    assert issubclass(OptionError, ConvcliError)


def test_zarr_missing_names_the_extra(tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "zarr", None)  # import zarr → ImportError
    with pytest.raises(OptionError, match=r"pip install 'convcli\[zarr\]'"):
        open_sink(tmp_path / "out.zarr", "zarr", (2, 2, 1), np.float32)
    assert _leftovers(tmp_path) == []


def test_file_mode_respects_the_umask(tmp_path):
    old = os.umask(0o027)
    try:
        for fmt in DTYPES:
            target = tmp_path / ("out" + SUFFIX[fmt])
            with open_sink(target, fmt, (2, 2, 1), DTYPES[fmt][0]) as sink:
                sink.write_rows(np.zeros((2, 2, 1), DTYPES[fmt][0]))
                sink.commit()
            expected = 0o750 if fmt == "zarr" else 0o640
            assert target.stat().st_mode & 0o777 == expected, fmt
    finally:
        os.umask(old)


# ---------------------------------------------------------------------------
# standard output


@pytest.mark.parametrize("fmt", ["png", "tiff", "npy"])
def test_stdout(monkeypatch, fmt):
    buffer = io.BytesIO()
    monkeypatch.setattr(sys, "stdout", types.SimpleNamespace(buffer=buffer))
    image = _image(np.random.default_rng(2), (50, 20, 3), DTYPES[fmt][0])
    with open_sink("-", fmt, image.shape, image.dtype) as sink:
        for band in _bands(image, [7]):
            sink.write_rows(band)
        if fmt == "tiff":
            assert buffer.getvalue() == b""  # seeking format: held until commit
        sink.commit()
    data = buffer.getvalue()
    if fmt == "png":
        with Image.open(io.BytesIO(data)) as loaded:
            back = np.asarray(loaded)
    elif fmt == "tiff":
        back = tifffile.imread(io.BytesIO(data))
    else:
        back = np.load(io.BytesIO(data))
    np.testing.assert_array_equal(back, image)


def test_zarr_to_stdout_is_an_option_error():
    with pytest.raises(OptionError, match="standard output"):
        open_sink("-", "zarr", (2, 2, 1), np.float32)


# ---------------------------------------------------------------------------
# memory does not grow with the image height


@pytest.mark.parametrize("fmt", ["png", "tiff", "npy", "zarr"])
def test_memory_does_not_grow_with_height(tmp_path, fmt):
    dtype = DTYPES[fmt][0]
    band = _image(np.random.default_rng(0), (32, 300, 3), dtype)

    def peak(height: int) -> int:
        target = tmp_path / f"h{height}{SUFFIX[fmt]}"
        tracemalloc.start()
        try:
            with open_sink(target, fmt, (height, 300, 3), dtype, tile=64, chunks=(64, 64)) as sink:
                for _ in range(height // 32):
                    sink.write_rows(band)
                sink.commit()
            return tracemalloc.get_traced_memory()[1]
        finally:
            tracemalloc.stop()

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(png, "_BLOCK_BYTES", 32 << 10)  # both sizes span many deflate blocks
        small, large = peak(512), peak(4096)  # 8× the rows
    assert large < 1.5 * small + (256 << 10), (small, large)


def test_png_deflate_thread_error_reaches_the_caller_and_threads_stop(tmp_path, monkeypatch):
    import threading

    real = png._deflate_block
    calls = []

    def failing(*args):
        calls.append(1)
        if len(calls) == 3:
            raise MemoryError("deflate ran out of memory")
        return real(*args)

    monkeypatch.setattr(png, "_BLOCK_BYTES", 4 << 10)
    monkeypatch.setattr(png, "_deflate_block", failing)
    image = _image(np.random.default_rng(0), (400, 100, 3), np.uint8)
    with pytest.raises(MemoryError, match="deflate ran out"), \
            open_sink(tmp_path / "out.png", "png", image.shape, np.uint8) as sink:
        for band in _bands(image, [25]):
            sink.write_rows(band)
        sink.commit()
    assert _leftovers(tmp_path) == []
    assert not [thread for thread in threading.enumerate() if thread.name.startswith("convcli-png")]


@pytest.mark.parametrize("shape", [(2, 1, 1), (17, 3, 1), (5, 40, 1), (33, 17, 2)])
@pytest.mark.parametrize("dtype", [np.uint8, np.uint16, np.float32])
def test_tiff_edge_tiles_with_one_sample(tmp_path, shape, dtype):
    """Edge tiles of single-sample images (padded by tifffile, then predicted along rows)."""
    image = _image(np.random.default_rng(sum(shape)), shape, dtype)
    target = tmp_path / "edge.tif"
    with open_sink(target, "tiff", shape, dtype, tile=16) as sink:
        for band in _bands(image, [1]):
            sink.write_rows(band)
        sink.commit()
    np.testing.assert_array_equal(_read_back(str(target), "tiff"), image)


@pytest.mark.parametrize("width", [4000, 20000, 40000, 90000])
@pytest.mark.parametrize("dtype", [np.uint8, np.uint16, np.float32])
def test_default_tiff_tiles_keep_a_row_of_tiles_small_at_any_width(width, dtype):
    itemsize = np.dtype(dtype).itemsize
    rows, columns = sinks.tile_shape((50000, width, 3), itemsize)
    assert rows % 16 == 0 and columns % 16 == 0 and 16 <= rows <= sinks.DEFAULT_TILE
    row_of_tiles = rows * width * 3 * itemsize
    assert row_of_tiles <= sinks.TILE_ROW_BYTES or rows == 16
    assert rows * columns >= 128 * 128 or columns == 1024


def test_wide_tiff_is_written_with_the_short_tiles_and_reads_back(tmp_path):
    image = np.random.default_rng(5).integers(0, 256, (70, 30000, 3), dtype=np.uint8)
    target = str(tmp_path / "wide.tif")
    with sinks.open_sink(target, "tiff", image.shape, np.uint8) as sink:
        for start in range(0, 70, 9):
            sink.write_rows(image[start:start + 9])
        sink.commit()
    with tifffile.TiffFile(target) as tif:
        page = tif.pages[0]
        assert (page.tilelength, page.tilewidth) == sinks.tile_shape(image.shape, 1)
        assert page.tilelength < 128
        np.testing.assert_array_equal(page.asarray(), image)


def test_aborted_directory_stays_gone_when_a_late_write_recreates_part_of_it(tmp_path):
    """A zarr chunk write still under way in another thread may recreate the temporary directory
    just after its removal: the abort removes it again until it stays gone."""
    import threading
    import time

    from convcli import atomic

    directory = atomic.AtomicDirectory(str(tmp_path / "out.zarr"), force=False)
    name = directory.name

    def late_write() -> None:
        time.sleep(0.05)
        os.makedirs(os.path.join(name, "c", "0"), exist_ok=True)
        with open(os.path.join(name, "c", "0", "0"), "wb") as handle:
            handle.write(b"chunk")

    writer = threading.Thread(target=late_write)
    writer.start()
    directory.abort()
    writer.join()
    assert os.listdir(tmp_path) == []


def test_zarr_discard_waits_for_chunk_writes_in_flight_on_zarrs_loop(tmp_path):
    zarr = pytest.importorskip("zarr")
    import asyncio

    import zarr.core.sync as zarr_sync

    zarr.create_array(store=str(tmp_path / "warm.zarr"), shape=(2,), dtype="f4")  # starts zarr's loop
    loop = zarr_sync._get_loop()
    marker = tmp_path / "written"

    async def slow_write() -> None:
        await asyncio.sleep(0.3)
        marker.write_bytes(b"done")

    asyncio.run_coroutine_threadsafe(slow_write(), loop)
    sinks._wait_for_zarr_writes()
    assert marker.exists()
