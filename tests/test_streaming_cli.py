"""``convcli apply`` streams: bands of any height give the same files, and faults leave nothing.

Band heights are forced through ``CONVCLI_BAND_BYTES`` (1 byte: one output
row per band) and compared with a run that holds the whole image in one
band; the whole-band result is itself compared with the core (and so with
scipy/torch) by test_cli_apply.py and test_golden.py.
"""

from __future__ import annotations

import errno
import json
import os
import pickle
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import tifffile
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from PIL import Image
from typer.testing import CliRunner

from convcli import conv2d, conv_transpose2d
from convcli.cli import app
from convcli.job import Destination, Job, run
from convcli.pipeline.sources import ArraySource, open_source

SAMPLES = Path(__file__).resolve().parent.parent / "sample_images"
ONE_ROW = {"CONVCLI_BAND_BYTES": "1", "CONVCLI_HOLD_BYTES": "0"}
WHOLE = {"CONVCLI_BAND_BYTES": "4G", "CONVCLI_HOLD_BYTES": "4G"}


def apply(*args: object, env: dict[str, str] | None = None):
    runner = CliRunner()
    return runner.invoke(app, ["apply", *map(str, args)], env=env, catch_exceptions=False)


def left_in(directory: Path) -> list[str]:
    return sorted(p.name for p in directory.iterdir())


@pytest.fixture(scope="module")
def photo(tmp_path_factory) -> Path:
    rng = np.random.default_rng(5)
    base = rng.integers(0, 256, (37, 29, 3)).astype(np.uint8)
    path = tmp_path_factory.mktemp("in") / "photo.png"
    Image.fromarray(base).save(path)
    return path


GEOMETRIES = st.fixed_dictionaries({
    "-s": st.sampled_from(["1", "2", "3,1"]),
    "-p": st.sampled_from(["same", "valid", "full", "2", "1,0,2,3"]),
    "-d": st.sampled_from(["1", "2"]),
    "--border": st.sampled_from(["zero", "reflect", "wrap", "symmetric", "replicate", "constant:40"]),
    "--channels": st.sampled_from(["depthwise", "sum", "gray"]),
    "-k": st.sampled_from(["sobel", "gaussian:sigma=1.5", "laplacian", "kirsch", "1,2;-3,4;0,1"]),
    "--reduce": st.sampled_from(["none", "magnitude", "max"]),
    "--scale": st.sampled_from(["auto", "minmax", "abs", "clip"]),
    "-f": st.sampled_from(["png", "tiff", "npy"]),
})


def _read_back(path: Path) -> np.ndarray:
    if path.suffix == ".npy":
        return np.load(path)
    if path.suffix == ".tiff":
        return tifffile.imread(path)
    return np.asarray(Image.open(path))


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(GEOMETRIES)
def test_one_row_bands_write_the_same_files(photo, tmp_path_factory, options):
    """Identical files for the strategy that does not depend on tiling (direct), else float maps
    within rounding and pixels within one level (separable's long passes are Toeplitz GEMMs, whose
    BLAS blocking follows the tile shape, like gemm's)."""
    outputs, methods = {}, {}
    for name, env in (("whole", WHOLE), ("rows", ONE_ROW)):
        folder = tmp_path_factory.mktemp(name)
        args = [photo, "-o", f"{folder}/", "-q", "--json"] + [v for pair in options.items() for v in pair]
        result = apply(*args, env=env)
        if result.exit_code != 0:
            assert result.stderr.startswith("convcli: error: "), result.stderr
            outputs[name] = result.stderr
            continue
        methods[name] = json.loads(result.stdout)["results"][0]["geometry"]["method"]
        outputs[name] = {p.name: p for p in sorted(folder.iterdir())}
    if isinstance(outputs["whole"], str):
        assert outputs["whole"] == outputs["rows"]
        return
    assert methods["whole"] == methods["rows"]
    assert outputs["whole"].keys() == outputs["rows"].keys()
    for key, whole in outputs["whole"].items():
        rows = outputs["rows"][key]
        if methods["whole"] == "direct":
            assert whole.read_bytes() == rows.read_bytes(), key
        else:
            a, b = _read_back(whole), _read_back(rows)
            assert a.shape == b.shape and a.dtype == b.dtype
            if a.dtype.kind == "f":
                np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-3 * max(1.0, float(np.abs(a).max())))
            else:
                assert int(np.abs(a.astype(np.int64) - b).max()) <= 1, key


@pytest.fixture(scope="module")
def big_photo(tmp_path_factory) -> Path:
    """700×800 RGB: 1.7 M values per map, so the percentile samples every 2nd row."""
    rng = np.random.default_rng(11)
    base = rng.integers(0, 256, (700, 800, 3)).astype(np.uint8)
    path = tmp_path_factory.mktemp("big") / "big.png"
    Image.fromarray(base).save(path, compress_level=1)
    return path


@pytest.mark.parametrize("options", [
    ["-k", "sobel", "--reduce", "magnitude"],
    ["-k", "laplacian", "--border", "reflect"],
    ["-k", "sobel-x", "-s", "2", "-p", "1"],
    ["-k", "1,-2;3,-4", "--transpose", "-s", "2", "-p", "1"],
])
def test_the_sampled_statistics_pass_writes_the_whole_image_pixels(big_photo, tmp_path, options):
    """Feature maps under ``auto`` need only the percentile of the sampled rows: a run that computes
    those rows alone first (no room to hold the maps) writes the files of a run that holds them."""
    files = {}
    for name, env in (("whole", WHOLE), ("sampled", {"CONVCLI_BAND_BYTES": "3M", "CONVCLI_HOLD_BYTES": "0"})):
        folder = tmp_path / name
        result = apply(big_photo, *options, "-o", f"{folder}/", "-q", env=env)
        assert result.exit_code == 0, result.stderr
        files[name] = {p.name: p.read_bytes() for p in folder.iterdir()}
    assert files["whole"] == files["sampled"]
    if options[:4] == ["-k", "sobel", "--reduce", "magnitude"]:
        from convcli.display import to_pixels
        from convcli.presets import resolve_kernel

        pixels = np.asarray(Image.open(big_photo))
        maps = conv2d(pixels, resolve_kernel("sobel").stack(), padding="same", border="reflect",
                      reduce="magnitude")
        written = np.asarray(Image.open(tmp_path / "sampled" / "big.sobel-magnitude.png"))
        np.testing.assert_array_equal(written, to_pixels(maps, kind="feature"))


def test_transposed_streams_with_stride_aligned_bands(photo, tmp_path):
    results = {}
    for name, env in (("whole", WHOLE), ("rows", ONE_ROW)):
        out = tmp_path / f"{name}.npy"
        result = apply(photo, "-k", "1,2;3,4", "--transpose", "-s", "2", "-p", "1", "--output-padding", "1",
                       "-o", out, env=env)
        assert result.exit_code == 0, result.stderr
        results[name] = np.load(out)
    pixels = np.asarray(Image.open(photo), dtype=np.float32)
    expected = conv_transpose2d(pixels, [[1, 2], [3, 4]], stride=2, padding=1, output_padding=1)
    np.testing.assert_allclose(results["rows"], expected, rtol=1e-5, atol=1e-3)
    np.testing.assert_allclose(results["whole"], expected, rtol=1e-5, atol=1e-3)


def test_tiff_in_tiff_out_16_bit_streams(tmp_path):
    rng = np.random.default_rng(2)
    data = rng.integers(0, 65536, (300, 70, 3)).astype(np.uint16)
    source = tmp_path / "in16.tif"
    tifffile.imwrite(source, data, tile=(32, 32), compression="zlib", photometric="rgb")
    out = tmp_path / "out.tif"
    result = apply(source, "-k", "box:size=3", "--border", "replicate", "-o", out,
                   env={"CONVCLI_BAND_BYTES": "20k"})
    assert result.exit_code == 0, result.stderr
    written = tifffile.imread(out)
    assert written.dtype == np.uint16 and written.shape == data.shape
    expected = conv2d(data, np.ones((3, 3)) / 9, padding="same", border="replicate")
    np.testing.assert_array_equal(written, np.clip(np.rint(expected), 0, 65535).astype(np.uint16))


def test_npy_in_npy_out_float_exact(tmp_path):
    rng = np.random.default_rng(3)
    data = rng.standard_normal((90, 31, 2)).astype(np.float32)
    source = tmp_path / "a.npy"
    np.save(source, data)
    out = tmp_path / "b.npy"
    result = apply(source, "-k", "sobel-x", "-s", "2", "--border", "wrap", "-o", out,
                   env={"CONVCLI_BAND_BYTES": "3k"})
    assert result.exit_code == 0, result.stderr
    expected = conv2d(data, [[-1, 0, 1], [-2, 0, 2], [-1, 0, 1]], stride=2, padding="same", border="wrap")
    np.testing.assert_array_equal(np.load(out), expected)


def test_zarr_in_zarr_out(tmp_path):
    zarr = pytest.importorskip("zarr")
    rng = np.random.default_rng(4)
    data = rng.standard_normal((70, 50)).astype(np.float32)
    source = tmp_path / "in.zarr"
    array = zarr.create_array(str(source), shape=data.shape, chunks=(16, 16), dtype="float32")
    array[...] = data
    out = tmp_path / "out.zarr"
    result = apply(source, "-k", "gaussian:sigma=1", "--border", "reflect", "-o", out,
                   env={"CONVCLI_BAND_BYTES": "5k"})
    assert result.exit_code == 0, result.stderr
    written = zarr.open_array(str(out), mode="r")[...]
    from convcli.kernels import gaussian

    expected = conv2d(data, gaussian(1.0), padding="same", border="reflect")
    np.testing.assert_array_equal(written, expected)


def test_job_is_picklable_and_runs_after_a_round_trip(tmp_path):
    rng = np.random.default_rng(6)
    pixels = rng.integers(0, 256, (20, 15, 3)).astype(np.uint8)
    job = Job(weights=np.ones((1, 3, 3), np.float32) / 9, labels=("box",), bank_name="box",
              geometry={"padding": "same", "border": "reflect"})
    copy = pickle.loads(pickle.dumps(job))
    record = run(copy, ArraySource.from_array(pixels, name="mem"),
                 Destination(output=str(tmp_path / "o.png")))
    assert record["outputs"][0]["shape"] == [20, 15, 3]
    written = np.asarray(Image.open(tmp_path / "o.png"))
    expected = conv2d(pixels, np.ones((3, 3)) / 9, padding="same", border="reflect")
    np.testing.assert_array_equal(written, np.clip(np.rint(expected), 0, 255).astype(np.uint8))


# ---------------------------------------------------------------------------
# faults: one line, exit 1, nothing left behind


def test_truncated_tiff_strip_is_one_line_and_nothing_written(tmp_path):
    data = np.random.default_rng(7).integers(0, 256, (200, 64), dtype=np.uint8)
    source = tmp_path / "cut.tif"
    tifffile.imwrite(source, data, rowsperstrip=16, compression="zlib")
    raw = bytearray(source.read_bytes())
    with tifffile.TiffFile(source) as tif:
        offset = tif.pages[0].dataoffsets[5]
    raw[offset:offset + 40] = b"\x00" * 40  # a strip that no longer inflates
    source.write_bytes(bytes(raw))
    out = tmp_path / "out"
    out.mkdir()
    result = apply(source, "-k", "box", "-o", f"{out}/")
    assert result.exit_code == 1
    lines = result.stderr.splitlines()
    assert len(lines) == 1 and lines[0].startswith("convcli: error: ") and "cut.tif" in lines[0]
    assert "strip" in lines[0]
    assert left_in(out) == []


def test_npy_shorter_than_its_header(tmp_path):
    source = tmp_path / "short.npy"
    np.save(source, np.zeros((50, 40), np.float32))
    source.write_bytes(source.read_bytes()[:-1000])
    result = apply(source, "-k", "box", "-o", tmp_path / "o.npy")
    assert result.exit_code == 1 and "short.npy" in result.stderr
    assert len(result.stderr.splitlines()) == 1
    assert not (tmp_path / "o.npy").exists()


@pytest.mark.parametrize("output", ["o.npy", "o.zarr"])
def test_corrupt_zarr_chunk_names_the_chunk(tmp_path, output):
    zarr = pytest.importorskip("zarr")
    source = tmp_path / "bad.zarr"
    array = zarr.create_array(str(source), shape=(64, 32), chunks=(16, 16), dtype="float32")
    array[...] = np.arange(64 * 32, dtype=np.float32).reshape(64, 32)
    chunk = source / "c" / "2" / "1"
    chunk.write_bytes(b"\0" * len(chunk.read_bytes()))  # the chunk exists; its bytes are not zstd
    result = apply(source, "-k", "box", "-o", tmp_path / output)
    assert result.exit_code == 1
    [line] = result.stderr.splitlines()
    expected = f"convcli: error: {source}: cannot decode chunk c/2/1 (rows 32-47, columns 16-31): "
    assert line.startswith(expected)
    assert sorted(os.listdir(tmp_path)) == ["bad.zarr"]


def test_unwritten_zarr_chunk_is_the_fill_value(tmp_path):
    zarr = pytest.importorskip("zarr")
    source = tmp_path / "sparse.zarr"
    array = zarr.create_array(str(source), shape=(32, 32), chunks=(16, 16), dtype="float32", fill_value=2.0)
    array[:16] = 1.0  # chunks c/1/* never written
    assert not (source / "c" / "1").exists()
    result = apply(source, "-k", "box:size=1", "-o", tmp_path / "o.npy")
    assert result.exit_code == 0, result.stderr
    expected = np.concatenate([np.ones((16, 32)), np.full((16, 32), 2.0)])
    np.testing.assert_array_equal(np.load(tmp_path / "o.npy")[..., 0], expected)


def test_disk_full_mid_stream_leaves_nothing(monkeypatch, tmp_path, photo):
    """The third band's write fails with ENOSPC: one line, no output, no temporary file."""
    from convcli import png

    calls = {"n": 0}
    original = png.PngEncoder.write_rows

    def failing(self, rows):
        calls["n"] += 1
        if calls["n"] == 3:
            raise OSError(errno.ENOSPC, "No space left on device")
        return original(self, rows)

    monkeypatch.setattr(png.PngEncoder, "write_rows", failing)
    out = tmp_path / "out"
    out.mkdir()
    result = apply(photo, "-k", "sobel", "-o", f"{out}/", env=ONE_ROW)
    assert result.exit_code == 1, result.stderr
    assert len(result.stderr.splitlines()) == 1 and "no space left" in result.stderr.lower()
    assert left_in(out) == []


def test_interrupt_mid_stream_exits_130_and_leaves_nothing(monkeypatch, tmp_path, photo):
    from convcli.pipeline import render

    calls = {"n": 0}
    original = render.render_rows

    def interrupted(plan, source, rows):
        calls["n"] += 1
        if calls["n"] == 5:
            raise KeyboardInterrupt
        return original(plan, source, rows)

    monkeypatch.setattr(render, "render_rows", interrupted)
    out = tmp_path / "out"
    out.mkdir()
    from convcli.cli import main

    monkeypatch.setattr("sys.argv", ["convcli", "apply", str(photo), "-k", "gaussian", "-o", f"{out}/"])
    monkeypatch.setenv("CONVCLI_BAND_BYTES", "1")
    with pytest.raises(SystemExit) as stop:
        main()
    assert stop.value.code == 130
    assert left_in(out) == []


def test_band_budget_variable_is_checked(photo, tmp_path):
    result = apply(photo, "-k", "box", "-o", tmp_path / "o.png", env={"CONVCLI_BAND_BYTES": "lots"})
    assert result.exit_code == 1 and "CONVCLI_BAND_BYTES" in result.stderr


def test_shape_reads_sizes_through_the_streaming_sources(tmp_path):
    """A TIFF with orientation 6 (rotate 90°): `shape` says what `apply` writes."""
    data = np.zeros((20, 30), np.uint8)
    source = tmp_path / "rot.tif"
    tifffile.imwrite(source, data, extratags=[(274, "H", 1, 6, True)])
    assert open_source(str(source)).shape[:2] == (30, 20)
    result = CliRunner().invoke(app, ["shape", str(source), "-k", "3", "--json"])
    assert result.exit_code == 0, result.stderr
    assert json.loads(result.stdout)["input"] == [30, 20]
    out = tmp_path / "o.png"
    assert apply(source, "-k", "box", "-o", out).exit_code == 0
    assert Image.open(out).size == (20, 30)  # (W, H)


def test_environment_variables_do_not_leak():
    assert "CONVCLI_BAND_BYTES" not in os.environ


def test_max_pixels_guards_whole_decodes_and_only_explicitly_streamed_inputs(tmp_path):
    """Pillow's bomb limit is for formats decoded whole; a TIFF read by region has no default limit."""
    data = np.zeros((40, 30), np.uint8)
    source = tmp_path / "a.tif"
    tifffile.imwrite(source, data)
    assert apply(source, "-k", "box", "-o", tmp_path / "ok.png").exit_code == 0
    refused = apply(source, "-k", "box", "--max-pixels", "100", "-o", tmp_path / "no.png")
    assert refused.exit_code == 1 and "exceeds the limit" in refused.stderr
    png = tmp_path / "a.png"
    Image.fromarray(data).save(png)
    refused = apply(png, "-k", "box", "--max-pixels", "100", "-o", tmp_path / "no2.png")
    assert refused.exit_code == 1 and "exceeds the limit" in refused.stderr


def test_an_existing_zarr_output_is_replaced_with_force_never_written_into(tmp_path):
    pytest.importorskip("zarr")
    target = tmp_path / "x.zarr"
    assert apply(SAMPLES / "camera.png", "-k", "1", "-o", target).exit_code == 0
    refused = apply(SAMPLES / "camera.png", "-k", "sobel", "-o", target)
    assert refused.exit_code == 1 and "exists" in refused.stderr
    assert sorted(p.name for p in target.iterdir()) == ["c", "zarr.json"]
    replaced = apply(SAMPLES / "camera.png", "-k", "sobel", "--reduce", "max", "-o", target, "--force")
    assert replaced.exit_code == 0, replaced.stderr
    assert sorted(p.name for p in target.iterdir()) == ["c", "zarr.json"]


def test_format_zarr_option(tmp_path):
    """-f zarr / --format zarr writes the float maps as a zarr array, whatever the -o name; the values
    are those of -f npy; zarr cannot go to stdout."""
    zarr = pytest.importorskip("zarr")
    source = tmp_path / "a.npy"
    np.save(source, np.random.default_rng(4).random((30, 20)).astype(np.float32))
    assert apply(source, "-k", "sobel", "-f", "npy", "-o", tmp_path / "ref.npy").exit_code == 0
    reference = np.load(tmp_path / "ref.npy")
    result = apply(source, "-k", "sobel", "-f", "zarr", "-o", f"{tmp_path / 'out'}/")
    assert result.exit_code == 0, result.stderr
    np.testing.assert_array_equal(zarr.open_array(str(tmp_path / "out" / "a.sobel.zarr"), mode="r")[...],
                                  reference)
    result = apply(source, "-k", "sobel", "--format", "zarr", "-o", tmp_path / "plain")
    assert result.exit_code == 0, result.stderr
    np.testing.assert_array_equal(zarr.open_array(str(tmp_path / "plain"), mode="r")[...], reference)
    result = apply(source, "-k", "sobel", "-f", "zarr", "-o", "-")
    assert result.exit_code == 1 and "cannot go to standard output" in result.stderr
    assert len(result.stderr.splitlines()) == 1


@pytest.mark.parametrize("suffix", ["npy", "zarr"])
def test_a_16_bit_array_image_gives_a_16_bit_output_like_a_16_bit_tiff(tmp_path, suffix):
    """A uint16 .npy / zarr holds a 16-bit image: its default output is 16-bit (it came out all white
    at 8 bits), with the pixels a 16-bit TIFF of the same values gives."""
    import tifffile

    values = (np.arange(48 * 40).reshape(48, 40) * 29 % 65536).astype(np.uint16)
    tifffile.imwrite(tmp_path / "in.tif", values)
    if suffix == "npy":
        np.save(tmp_path / "in.npy", values)
    else:
        zarr = pytest.importorskip("zarr")
        zarr.create_array(str(tmp_path / "in.zarr"), shape=values.shape, dtype=values.dtype,
                          chunks=(16, 16))[:] = values
    outputs = []
    for name in ("in.tif", f"in.{suffix}"):
        target = tmp_path / f"{name}.png"
        result = subprocess.run([sys.executable, "-m", "convcli", "apply", str(tmp_path / name), "-k",
                                 "gaussian:sigma=2", "-o", str(target), "-q"], capture_output=True, text=True,
                                stdin=subprocess.DEVNULL, timeout=120)
        assert result.returncode == 0, result.stderr
        outputs.append(np.asarray(Image.open(target)))
    assert outputs[1].dtype == np.uint16 and outputs[1].max() > 255
    np.testing.assert_array_equal(outputs[1], outputs[0])


@pytest.mark.parametrize("env", [ONE_ROW, WHOLE], ids=["one-row-bands", "one-band"])
@pytest.mark.parametrize(("options", "where"), [
    (["-k", "sobel"], (100, 50, 1)),
    (["-k", "sobel", "-p", "full", "--border", "reflect"], (100, 50, 1)),
    (["-k", "gaussian:sigma=4"], (100, 50, 1)),
    (["-k", "sobel", "--transpose", "-s", "2"], (100, 50, 1)),
    (["-k", "sobel", "-s", "3"], (299, 7, 2)),
    (["-k", "box:size=5", "--method", "native"], (0, 0, 0)),
])
def test_a_nan_in_a_streamed_image_is_named_at_its_row_in_the_image(tmp_path, env, options, where):
    """Streaming bands hold halo and border rows: the message gives the row in the image, not in the band
    (a review found row 101 for a NaN in row 100, and row 300 of a 300-row image)."""
    image = np.random.default_rng(3).random((300, 60, 3)).astype(np.float32)
    image[where] = np.nan
    np.save(tmp_path / "in.npy", image)
    result = apply(tmp_path / "in.npy", *options, "-o", tmp_path / "out.npy", env=env)
    assert result.exit_code == 1
    assert f"got nan at (row, column, channel) ({where[0]}, {where[1]}, {where[2]})" in result.output, \
        result.output
    assert not (tmp_path / "out.npy").exists()


@pytest.mark.parametrize("options", [["-p", "full"], ["-p", "3"], ["--border", "wrap"]])
def test_of_two_bad_values_the_first_in_the_image_is_named_when_borders_repeat_rows(tmp_path, options):
    """A band's top border holds reflected or wrapped rows, read before row 0: the message still names
    the bad value that comes first in the image (found by a review: (2, …) named instead of (1, …))."""
    image = np.random.default_rng(4).random((300, 60, 3)).astype(np.float32)
    image[1, 59, 0] = np.inf
    image[2, 12, 1] = np.nan
    image[299, 5, 0] = np.nan  # wrapped above row 0
    np.save(tmp_path / "in.npy", image)
    result = apply(tmp_path / "in.npy", "-k", "sobel", *options, "-o", tmp_path / "out.npy", env=WHOLE)
    assert result.exit_code == 1
    assert "got inf at (row, column, channel) (1, 59, 0)" in result.output, result.output
