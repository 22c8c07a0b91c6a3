"""``convcli apply`` option by option, through typer's CliRunner (in process).

Numbers are checked against scipy.signal / numpy formulas, or against the
library call the option stands for (``convcli.conv2d`` with the same
arguments: the CLI must add nothing and lose nothing). Real subprocesses
(stdin/stdout pipes, signals) are in ``test_pipeline.py``; bad inputs in
``test_robustness.py``.
"""

from __future__ import annotations

import io
import json
import re
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from scipy import signal
from typer.testing import CliRunner

from convcli import conv2d, conv_transpose2d
from convcli.cli import app
from convcli.presets import list_presets

SAMPLES = Path(__file__).resolve().parent.parent / "sample_images"
RNG = np.random.default_rng(3)
SOBEL_X = np.array([[-1, 0, 1], [-2, 0, 2], [-1, 0, 1]], np.float64)
SOBEL_Y = SOBEL_X.T.copy()

runner = CliRunner()


def apply(*args: str, stdin: bytes | None = None):
    """Run ``convcli apply ARGS`` in process; stdout/stderr are kept apart.

    The tests here compare with the core's defaults (``conv2d(border="zero")``), so a forward
    run without ``--border`` gets ``--border zero``; the CLI's own default (reflect) is tested
    with :func:`apply_default`.
    """
    texts = [str(arg) for arg in args]
    if "--border" not in texts and "--transpose" not in texts:
        texts += ["--border", "zero"]
    return runner.invoke(app, ["apply", *texts], input=stdin)


def apply_default(*args: str, stdin: bytes | None = None):
    """``convcli apply ARGS`` exactly as given (the CLI's defaults)."""
    return runner.invoke(app, ["apply", *map(str, args)], input=stdin)


def ok(result) -> None:
    assert result.exit_code == 0, (result.exit_code, result.stderr)
    assert "Traceback" not in result.stderr


def npy_bytes(array: np.ndarray) -> bytes:
    buffer = io.BytesIO()
    np.save(buffer, array)
    return buffer.getvalue()


def load_npy(data: bytes) -> np.ndarray:
    return np.load(io.BytesIO(data))


def pixels(path) -> np.ndarray:
    with Image.open(path) as image:
        return np.asarray(image)


@pytest.fixture
def in_tmp(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    return tmp_path


@pytest.fixture(scope="module")
def float_image(tmp_path_factory):
    """A (9, 11, 3) float32 image saved as .npy, and the array."""
    array = (RNG.random((9, 11, 3)) * 255 - 60).astype(np.float32)
    path = tmp_path_factory.mktemp("float") / "image.npy"
    np.save(path, array)
    return path, array


# ---------------------------------------------------------------------------
# npy output is exactly the core's result


GEOMETRIES = [
    ([], {"padding": "same"}),
    (["-s", "2"], {"stride": 2, "padding": "same"}),
    (["-s", "2,3", "-p", "valid"], {"stride": (2, 3), "padding": "valid"}),
    (["-p", "1,2"], {"padding": (1, 2)}),
    (["-p", "0,1,2,3", "--border", "reflect"], {"padding": (0, 1, 2, 3), "border": "reflect"}),
    (["-p", "full", "--border", "wrap"], {"padding": "full", "border": "wrap"}),
    (["-d", "2", "--border", "replicate"], {"dilation": 2, "padding": "same", "border": "replicate"}),
    (["--border", "constant:7", "-d", "1,2"], {"border": "constant:7", "dilation": (1, 2),
                                              "padding": "same"}),
    (["--border", "symmetric", "--flip"], {"border": "symmetric", "flip": True, "padding": "same"}),
    (["--channels", "sum"], {"channels": "sum", "padding": "same"}),
    (["--channels", "gray", "-s", "2"], {"channels": "gray", "stride": 2, "padding": "same"}),
    (["--bias", "1.5"], {"bias": 1.5, "padding": "same"}),
    (["--bias", "1,-2"], {"bias": [1.0, -2.0], "padding": "same"}),
    (["--method", "direct", "--dtype", "float64"], {"method": "direct", "dtype": "float64",
                                                    "padding": "same"}),
]


@pytest.mark.parametrize(("options", "kwargs"), GEOMETRIES)
def test_npy_output_equals_conv2d(float_image, options, kwargs):
    path, array = float_image
    result = apply(path, "-k", "sobel", *options, "-f", "npy", "-o", "-")
    ok(result)
    maps = load_npy(result.stdout_bytes)
    expected = conv2d(array, np.stack([SOBEL_X, SOBEL_Y]), **kwargs)
    assert maps.dtype == expected.dtype
    np.testing.assert_array_equal(maps, expected)


@pytest.mark.parametrize(("options", "kwargs"), [
    (["-s", "2"], {"stride": 2, "padding": "same"}),
    (["-s", "2", "-p", "1", "--output-padding", "1"], {"stride": 2, "padding": 1,
                                                       "output_padding": 1}),
    (["-s", "3,2", "-p", "valid", "-d", "2"], {"stride": (3, 2), "padding": "valid",
                                               "dilation": 2}),
    (["--channels", "sum", "--bias", "3"], {"channels": "sum", "bias": 3.0, "padding": "same"}),
])
def test_npy_transpose_equals_conv_transpose2d(float_image, options, kwargs):
    path, array = float_image
    result = apply(path, "-k", "sobel", "--transpose", *options, "-f", "npy", "-o", "-")
    ok(result)
    expected = conv_transpose2d(array, np.stack([SOBEL_X, SOBEL_Y]), **kwargs)
    np.testing.assert_array_equal(load_npy(result.stdout_bytes), expected)


def test_npy_output_against_scipy(float_image):
    """The chain CLI → core agrees with an independent implementation (scipy.signal)."""
    path, array = float_image
    result = apply(path, "-k", "1,2,0;-1,3,1", "-p", "valid", "-f", "npy", "-o", "-")
    ok(result)
    maps = load_npy(result.stdout_bytes)
    weights = np.array([[1, 2, 0], [-1, 3, 1]], np.float64)
    for c in range(3):
        reference = signal.correlate2d(array[:, :, c].astype(np.float64), weights, mode="valid")
        np.testing.assert_allclose(maps[:, :, c], reference, rtol=1e-5, atol=1e-3)


def test_inline_file_and_imagemagick_specs_are_one_bank(float_image, tmp_path):
    path, array = float_image
    weights_file = tmp_path / "k.npy"
    np.save(weights_file, SOBEL_Y)
    text_file = tmp_path / "k.txt"
    text_file.write_text("0 0 0\n0 1 0\n0 0 0\n")
    result = apply(path, "-k", "1,0,-1;2,0,-2;1,0,-1", "-k", "3x3: -1,-2,-1,0,0,0,1,2,1",
                   "-k", weights_file, "-k", text_file, "-f", "npy", "-o", "-", "--json")
    assert result.exit_code != 0  # --json and -o - both want stdout
    result = apply(path, "-k", "1,0,-1;2,0,-2;1,0,-1", "-k", "3x3: -1,-2,-1,0,0,0,1,2,1",
                   "-k", weights_file, "-k", text_file, "-f", "npy", "-o", "-")
    ok(result)
    identity = np.zeros((3, 3))
    identity[1, 1] = 1
    bank = np.stack([-SOBEL_X, SOBEL_Y, SOBEL_Y, identity])
    np.testing.assert_array_equal(load_npy(result.stdout_bytes), conv2d(array, bank, padding="same"))


# ---------------------------------------------------------------------------
# every preset on every image mode, and on 1×1 and 2×2 images

MODES = ["1", "L", "LA", "P", "RGB", "RGBA", "I;16", "I", "F"]


def _mode_image(mode: str, rows: int = 7, cols: int = 9) -> Image.Image:
    gradient = np.add.outer(np.arange(rows) * 20, np.arange(cols) * 9) % 256
    rgb = np.stack([gradient, 255 - gradient, (gradient * 3) % 256], axis=2).astype(np.uint8)
    if mode == "I;16":
        return Image.fromarray((gradient * 257).astype(np.uint16))
    if mode == "I":
        return Image.fromarray((gradient * 100).astype(np.int32))
    if mode == "F":
        return Image.fromarray((gradient / 7).astype(np.float32))
    if mode == "P":
        return Image.fromarray(rgb).quantize(16)
    return Image.fromarray(rgb).convert(mode)


@pytest.fixture(scope="module")
def mode_images(tmp_path_factory):
    """One small file per mode (TIFF for I and F), plus 1×1 and 2×2 images; → {path: (H, W, C)}."""
    folder = tmp_path_factory.mktemp("modes")
    expected = {}
    channels = {"1": 1, "L": 1, "LA": 1, "P": 3, "RGB": 3, "RGBA": 3, "I;16": 1, "I": 1, "F": 1}
    for mode in MODES:
        image = _mode_image(mode)
        assert image.mode == mode
        name = "mode_" + mode.replace(";", "")
        path = folder / (name + (".tiff" if mode in ("I", "F") else ".png"))
        image.save(path)
        expected[path] = (7, 9, channels[mode])
    for size in (1, 2):
        for mode in ("L", "RGB"):
            path = folder / f"tiny{size}_{mode}.png"
            _mode_image(mode, size, size).save(path)
            expected[path] = (size, size, 1 if mode == "L" else 3)
    return expected


PRESETS = [info.name for info in list_presets()]


@pytest.mark.parametrize("preset", PRESETS)
def test_every_preset_on_every_mode_and_tiny_images(mode_images, preset, tmp_path):
    result = apply(*mode_images, "-k", preset, "-o", tmp_path, "-q")
    ok(result)
    assert result.stderr == "" and result.stdout == ""
    outputs = sorted(tmp_path.glob("*.png"))
    per_input = {path: [out for out in outputs if out.name.startswith(path.stem + ".")]
                 for path in mode_images}
    from convcli.alpha import kernel_kinds
    from convcli.presets import load_bank

    image_kernel = "image" in kernel_kinds(load_bank([preset]).stack())
    for path, (rows, cols, channels) in mode_images.items():
        assert per_input[path], f"{preset}: nothing written for {path.name}"
        # --alpha keep (default): an image kernel writes the filtered alpha of LA/RGBA inputs
        with_alpha = channels + (image_kernel and path.stem in ("mode_LA", "mode_RGBA"))
        for out in per_input[path]:
            data = pixels(out)
            assert data.shape[:2] == (rows, cols), (preset, out.name)
            assert (data.shape[2] if data.ndim == 3 else 1) == with_alpha, (preset, out.name)
            sixteen = "I16" in path.name or (path.suffix == ".tiff" and "_I" in path.name)
            assert data.dtype == (np.uint16 if sixteen else np.uint8), (preset, out.name, data.dtype)


# ---------------------------------------------------------------------------
# --reduce


def _scipy_maps(array: np.ndarray, bank: list[np.ndarray]) -> np.ndarray:
    """(H, W, F, C) per-kernel, per-channel maps, `same` zero padding (scipy.signal)."""
    return np.stack([
        np.stack([signal.correlate2d(array[:, :, c].astype(np.float64), weights, mode="same")
                  for c in range(array.shape[2])], axis=-1)
        for weights in bank
    ], axis=2)


@pytest.mark.parametrize(("reduce", "formula"), [
    ("magnitude", lambda m: np.sqrt((m ** 2).sum(axis=2))),
    ("max", lambda m: m.max(axis=2)),
    ("min", lambda m: m.min(axis=2)),
    ("sum", lambda m: m.sum(axis=2)),
])
def test_reduce_against_numpy_formulas(float_image, reduce, formula):
    path, array = float_image
    result = apply(path, "-k", "sobel", "-k", "laplacian-8", "--reduce", reduce, "-f", "npy", "-o", "-")
    ok(result)
    laplacian = np.ones((3, 3))
    laplacian[1, 1] = -8
    expected = formula(_scipy_maps(array, [SOBEL_X, SOBEL_Y, laplacian]))
    np.testing.assert_allclose(load_npy(result.stdout_bytes), expected, rtol=1e-5, atol=1e-2)


def test_reduce_names_the_file_and_writes_one_map(in_tmp):
    result = apply(SAMPLES / "camera.png", "-k", "sobel", "--reduce", "magnitude")
    ok(result)
    assert sorted(p.name for p in in_tmp.iterdir()) == ["camera.sobel-magnitude.png"]


# ---------------------------------------------------------------------------
# --scale, bit depths


@pytest.fixture(scope="module")
def signed_image(tmp_path_factory):
    array = np.array([[-300.0, -100.0, -0.6, 0.0], [50.2, 128.0, 254.6, 600.0]], np.float32)
    path = tmp_path_factory.mktemp("signed") / "signed.npy"
    np.save(path, array)
    return path, array.astype(np.float64)


@pytest.mark.parametrize(("scale", "formula"), [
    ("clip", lambda x: x),
    ("abs", np.abs),
    ("minmax", lambda x: (x - x.min()) / (x.max() - x.min()) * 255),
    ("offset:128", lambda x: x + 128),
    ("offset:-20.5", lambda x: x - 20.5),
    ("auto", lambda x: x),  # identity is an image kernel: auto clips (issue 13)
])
def test_scale_modes(signed_image, tmp_path, scale, formula):
    path, array = signed_image
    out = tmp_path / "out.png"
    ok(apply(path, "-k", "identity", "--scale", scale, "-o", out))
    np.testing.assert_array_equal(pixels(out), np.clip(np.rint(formula(array)), 0, 255))


def test_auto_keeps_a_blur_in_range_and_emboss_uses_its_hint(tmp_path):
    source = SAMPLES / "camera.png"
    image = pixels(source).astype(np.float64)
    ok(apply(source, "-k", "box:size=3", "-o", tmp_path / "blur.png"))
    blurred = signal.correlate2d(image, np.full((3, 3), 1 / 9), mode="same")
    np.testing.assert_allclose(pixels(tmp_path / "blur.png"), np.rint(blurred), atol=1)
    ok(apply(source, "-k", "emboss", "-o", tmp_path / "emboss.png"))
    emboss = np.array([[-2, -1, 0], [-1, 0, 1], [0, 1, 2]], np.float64)
    response = signal.correlate2d(image, emboss, mode="same")
    np.testing.assert_allclose(pixels(tmp_path / "emboss.png"),
                               np.clip(np.rint(response + 128), 0, 255), atol=1)


def test_scale_raw_writes_float_tiff(float_image, tmp_path):
    path, array = float_image
    out = tmp_path / "raw.tiff"
    ok(apply(path, "-k", "sobel-x", "--scale", "raw", "-o", out))
    expected = conv2d(array, SOBEL_X, padding="same")
    import tifffile

    written = tifffile.imread(out)  # one page, (H', W', N) float32 samples
    assert written.dtype == np.float32 and written.shape == expected.shape
    np.testing.assert_array_equal(written, expected)


def test_sixteen_bit_in_sixteen_bit_out(tmp_path):
    source = SAMPLES / "gradient16.png"
    original = pixels(source).astype(np.float64)
    assert original.max() > 255
    ok(apply(source, "-k", "box:size=3", "-o", tmp_path / "blur.png"))
    out = pixels(tmp_path / "blur.png")
    assert out.dtype == np.uint16
    blurred = signal.correlate2d(original, np.full((3, 3), 1 / 9), mode="same")
    np.testing.assert_allclose(out, np.rint(blurred), atol=1)
    ok(apply(source, "-k", "box:size=3", "-o", tmp_path / "blur.tiff"))
    assert pixels(tmp_path / "blur.tiff").dtype == np.uint16
    ok(apply(source, "-k", "box:size=3", "--bit-depth", "8", "-o", tmp_path / "b8.png"))
    assert pixels(tmp_path / "b8.png").dtype == np.uint8
    np.testing.assert_allclose(pixels(tmp_path / "b8.png"), np.rint(blurred / 257), atol=1)  # same picture


def test_bit_depth_16_from_8_bit_input(tmp_path):
    ok(apply(SAMPLES / "camera.png", "-k", "identity", "--bit-depth", "16", "-o", tmp_path / "x.png"))
    out = pixels(tmp_path / "x.png")
    assert out.dtype == np.uint16
    np.testing.assert_array_equal(out, pixels(SAMPLES / "camera.png").astype(np.uint16) * 257)  # 255 → 65535


# ---------------------------------------------------------------------------
# --verify, --json, -q


def test_verify_prints_a_tiny_difference():
    result = apply(SAMPLES / "chelsea.png", "-k", "sobel", "-s", "2", "--verify", "-f", "npy", "-o", "-")
    ok(result)
    match = re.search(r"max \|convcli − scipy\.signal\| = (\S+) \(relative (\S+)\) ok", result.stderr)
    assert match, result.stderr
    assert float(match.group(1)) < 1e-2 and float(match.group(2)) < 1e-5


@pytest.mark.parametrize("options", [["--transpose", "-s", "2"], ["--channels", "sum", "-d", "2"],
                                     ["--bias", "5", "--border", "reflect"]])
def test_verify_other_geometries(options):
    result = apply(SAMPLES / "checkerboard.png", "-k", "sobel", *options, "--verify",
                   "-f", "npy", "-o", "-")
    ok(result)
    assert " ok" in result.stderr


def test_json_summary_is_the_only_stdout(in_tmp):
    result = apply(SAMPLES / "chelsea.png", "-k", "sobel", "-s", "2", "--json", "--verify")
    ok(result)
    summary = json.loads(result.stdout)  # nothing else on stdout
    assert summary["inputs"] == [str(SAMPLES / "chelsea.png")]
    assert [k["name"] for k in summary["kernels"]] == ["sobel-x", "sobel-y"]
    assert all(k["shape"] == [3, 3] for k in summary["kernels"])
    assert {o["path"] for o in summary["outputs"]} == {"chelsea.sobel-x.png", "chelsea.sobel-y.png"}
    assert all(o["shape"] == [107, 160, 3] for o in summary["outputs"])
    assert summary["succeeded"] == 1 and summary["failed"] == []
    (record,) = summary["results"]
    assert record["verify"]["max_abs_difference"] < 1e-2
    image = pixels(SAMPLES / "chelsea.png").astype(np.float32)
    maps = conv2d(image, np.stack([SOBEL_X, SOBEL_Y]), stride=2, padding="same")
    names = [m["name"] for m in record["maps"]]
    assert names == [f"sobel-{a}.{c}" for a in "xy" for c in "RGB"]
    for index, entry in enumerate(record["maps"]):
        assert entry["min"] == pytest.approx(float(maps[..., index].min()))
        assert entry["max"] == pytest.approx(float(maps[..., index].max()))
    assert "wrote chelsea.sobel-x.png" in result.stderr  # messages go to stderr


def test_quiet_prints_nothing(in_tmp):
    result = apply(SAMPLES / "camera.png", "-k", "sobel", "-q", "--verify")
    ok(result)
    assert result.stdout == "" and result.stderr == ""
    assert sorted(p.name for p in in_tmp.iterdir()) == ["camera.sobel-x.png", "camera.sobel-y.png"]


# ---------------------------------------------------------------------------
# output names, -o, -f, --force, inputs protected


def test_default_names_in_cwd_one_stderr_line_per_file(in_tmp):
    result = apply(SAMPLES / "chelsea.png", "-k", "kirsch")
    ok(result)
    names = sorted(p.name for p in in_tmp.iterdir())
    expected = sorted(f"chelsea.kirsch-{d}.png" for d in ("n", "ne", "e", "se", "s", "sw", "w", "nw"))
    assert names == expected
    lines = result.stderr.splitlines()
    assert len(lines) == 8 and all(line.startswith("wrote chelsea.kirsch-") for line in lines)
    assert result.stdout == ""


def test_output_directory(tmp_path):
    ok(apply(SAMPLES / "camera.png", "-k", "sobel", "-o", tmp_path))
    assert sorted(p.name for p in tmp_path.iterdir()) == ["camera.sobel-x.png", "camera.sobel-y.png"]


def test_output_file_with_several_maps(tmp_path):
    result = apply(SAMPLES / "camera.png", "-k", "sobel", "-o", tmp_path / "edges.png")
    ok(result)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["edges.sobel-x.png", "edges.sobel-y.png"]
    assert len(result.stderr.splitlines()) == 2


@pytest.mark.parametrize(("fmt", "suffix"), [("png", ".png"), ("tiff", ".tiff"), ("npy", ".npy"),
                                             ("npz", ".npz")])
def test_format_option_and_suffix(tmp_path, fmt, suffix):
    ok(apply(SAMPLES / "camera.png", "-k", "sobel", "-f", fmt, "-o", tmp_path))
    files = sorted(p.name for p in tmp_path.iterdir())
    if fmt in ("npy", "npz"):
        assert files == [f"camera.sobel{suffix}"]
    else:
        assert files == [f"camera.sobel-x{suffix}", f"camera.sobel-y{suffix}"]
    ok(apply(SAMPLES / "camera.png", "-k", "sobel-x", "-o", tmp_path / f"by_suffix{suffix}"))
    assert (tmp_path / f"by_suffix{suffix}").exists()


def test_npz_holds_one_named_array_per_map(tmp_path):
    out = tmp_path / "maps.npz"
    ok(apply(SAMPLES / "chelsea.png", "-k", "sobel", "-o", out))
    image = pixels(SAMPLES / "chelsea.png").astype(np.float32)
    maps = conv2d(image, np.stack([SOBEL_X, SOBEL_Y]), padding="same")
    with np.load(out) as archive:
        assert sorted(archive.files) == sorted(f"sobel-{a}.{c}" for a in "xy" for c in "RGB")
        np.testing.assert_array_equal(archive["sobel-y.G"], maps[:, :, 4])


def test_npy_input_gives_npy_output_by_default(float_image, in_tmp):
    path, array = float_image
    ok(apply(path, "-k", "gaussian:sigma=1"))
    (out,) = in_tmp.iterdir()
    assert out.name == "image.gaussian-s1.npy"
    np.testing.assert_array_equal(np.load(out), conv2d(array, _gaussian(1.0), padding="same"))


def _gaussian(sigma: float) -> np.ndarray:
    from convcli.kernels import gaussian

    return gaussian(sigma)


def test_existing_output_needs_force(tmp_path):
    out = tmp_path / "x.png"
    out.write_bytes(b"old")
    result = apply(SAMPLES / "camera.png", "-k", "sobel-x", "-o", out)
    assert result.exit_code == 1 and "--force" in result.stderr
    assert out.read_bytes() == b"old"
    ok(apply(SAMPLES / "camera.png", "-k", "sobel-x", "-o", out, "--force"))
    assert pixels(out).shape == (320, 320)


def test_input_never_overwritten_even_with_force(tmp_path):
    source = tmp_path / "in.png"
    source.write_bytes((SAMPLES / "camera.png").read_bytes())
    before = source.read_bytes()
    for extra in ([], ["--force"]):
        result = apply(source, "-k", "identity", "-o", source, *extra)
        assert result.exit_code == 1
        assert "refusing to overwrite an input" in result.stderr
        assert len(result.stderr.splitlines()) == 1
    # through a directory output whose default name is another input of the batch
    other = tmp_path / "in.identity.png"
    other.write_bytes(before)
    result = apply(source, other, "-k", "identity", "-o", tmp_path, "--force")
    assert result.exit_code == 1 and "refusing to overwrite an input" in result.stderr
    assert source.read_bytes() == before and other.read_bytes() == before


def test_no_path_is_written_twice_in_one_run(tmp_path):
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    for folder in ("a", "b"):
        (tmp_path / folder / "x.png").write_bytes((SAMPLES / "camera.png").read_bytes())
    out = tmp_path / "out"
    out.mkdir()
    result = apply(tmp_path / "a" / "x.png", tmp_path / "b" / "x.png", "-k", "sobel-x", "-o", out,
                   "--force")
    assert result.exit_code == 1
    # names are decided for the whole batch first: the clash is refused before any write
    assert "x.png and " in result.stderr and "would both write" in result.stderr
    assert list(out.iterdir()) == []


# ---------------------------------------------------------------------------
# batches


def test_batch_skips_bad_files_and_reports(tmp_path):
    bad = tmp_path / "broken.png"
    bad.write_text("not an image")
    out = tmp_path / "out"
    out.mkdir()
    result = apply(SAMPLES / "camera.png", bad, tmp_path / "missing.png", SAMPLES / "checkerboard.png",
                   "-k", "sobel", "--reduce", "magnitude", "-o", out)
    assert result.exit_code == 1
    assert "Traceback" not in result.stderr
    assert sorted(p.name for p in out.iterdir()) == ["camera.sobel-magnitude.png",
                                                     "checkerboard.sobel-magnitude.png"]
    errors = [line for line in result.stderr.splitlines() if line.startswith("convcli: error:")]
    assert len(errors) == 2
    assert "broken.png" in errors[0] and "missing.png" in errors[1]
    assert result.stderr.splitlines()[-1] == "2 of 4 inputs done, 2 failed"


def test_batch_json_lists_failures(tmp_path):
    bad = tmp_path / "zero.png"
    bad.write_bytes(b"")
    out = tmp_path / "out"
    out.mkdir()
    result = apply(SAMPLES / "camera.png", bad, "-k", "sobel-x", "-o", out, "--json")
    assert result.exit_code == 1
    summary = json.loads(result.stdout)
    assert summary["succeeded"] == 1
    assert [f["input"] for f in summary["failed"]] == [str(bad)]
    assert "empty file" in summary["failed"][0]["error"]


def test_directory_input_expands_to_its_images(tmp_path):
    folder = tmp_path / "in"
    folder.mkdir()
    for name in ("b.png", "a.png"):
        (folder / name).write_bytes((SAMPLES / "checkerboard.png").read_bytes())
    (folder / "notes.txt").write_text("skip me")
    out = tmp_path / "out"
    out.mkdir()
    result = apply(folder, "-k", "sobel-x", "-o", out)
    ok(result)
    assert sorted(p.name for p in out.iterdir()) == ["a.sobel-x.png", "b.sobel-x.png"]
    assert result.stderr.splitlines()[-1] == "2 of 2 inputs done, 0 failed"


def test_batch_option_error_stops_before_any_file(tmp_path):
    result = apply(SAMPLES / "camera.png", SAMPLES / "checkerboard.png", "-k", "sobel",
                   "-o", tmp_path / "one.png")
    assert result.exit_code == 1 and "several inputs need a directory: -o " in result.stderr
    assert list(tmp_path.iterdir()) == []


# ---------------------------------------------------------------------------
# remaining options


def test_alpha_drop_and_filter(tmp_path):
    rgba = np.zeros((6, 7, 4), np.uint8)
    rgba[..., :3] = 90
    rgba[..., 3] = 200
    source = tmp_path / "rgba.png"
    Image.fromarray(rgba).save(source)
    dropped = apply(source, "-k", "identity", "--alpha", "drop", "-f", "npy", "-o", "-")
    ok(dropped)
    np.testing.assert_allclose(load_npy(dropped.stdout_bytes), np.full((6, 7, 3), 90 * 200 / 255),
                               rtol=1e-6)  # flattened over black
    default = apply(source, "-k", "identity", "-f", "npy", "-o", "-")  # keep: colour, then alpha
    ok(default)
    np.testing.assert_allclose(load_npy(default.stdout_bytes), rgba.astype(np.float32), rtol=1e-5)
    kept = apply(source, "-k", "identity", "--alpha", "filter", "-f", "npy", "-o", "-")
    ok(kept)
    np.testing.assert_array_equal(load_npy(kept.stdout_bytes), rgba.astype(np.float32))


def test_montage(tmp_path):
    sheet = tmp_path / "sheet.png"
    ok(apply(SAMPLES / "camera.png", "-k", "sobel", "-o", tmp_path, "--montage", sheet))
    assert pixels(sheet).ndim == 3


def test_compress_level_changes_size_not_pixels(tmp_path):
    ok(apply(SAMPLES / "camera.png", "-k", "sobel-x", "--compress-level", "0", "-o", tmp_path / "a.png"))
    ok(apply(SAMPLES / "camera.png", "-k", "sobel-x", "--compress-level", "9", "-o", tmp_path / "b.png"))
    assert (tmp_path / "a.png").stat().st_size > (tmp_path / "b.png").stat().st_size
    np.testing.assert_array_equal(pixels(tmp_path / "a.png"), pixels(tmp_path / "b.png"))


def test_max_pixels(tmp_path):
    result = apply(SAMPLES / "camera.png", "-k", "sobel", "--max-pixels", "1000", "-o", tmp_path)
    assert result.exit_code == 1 and "--max-pixels" in result.stderr
    ok(apply(SAMPLES / "camera.png", "-k", "sobel", "--max-pixels", str(320 * 320), "-o", tmp_path))


def test_stdin_and_stdout_in_process():
    data = (SAMPLES / "camera.png").read_bytes()
    result = apply("-", "-k", "gaussian:sigma=2", "-o", "-", stdin=data)
    ok(result)
    assert result.stdout_bytes.startswith(b"\x89PNG\r\n\x1a\n")
    image = pixels(SAMPLES / "camera.png").astype(np.float32)
    with Image.open(io.BytesIO(result.stdout_bytes)) as out:
        blurred = conv2d(image, _gaussian(2.0), padding="same")[..., 0]
        np.testing.assert_allclose(np.asarray(out), np.clip(np.rint(blurred), 0, 255), atol=1)
    assert result.stderr == ""


def test_stdin_default_name(in_tmp):
    ok(apply("-", "-k", "sobel-x", stdin=(SAMPLES / "checkerboard.png").read_bytes()))
    assert [p.name for p in in_tmp.iterdir()] == ["stdin.sobel-x.png"]


def test_help_teaches():
    result = runner.invoke(app, ["apply", "--help"])
    assert result.exit_code == 0
    for option in ("--kernel", "--stride", "--padding", "--border", "--dilation", "--channels",
                   "--flip", "--bias", "--transpose", "--output-padding", "--reduce", "--output",
                   "--format", "--scale", "--force", "--verify", "--json", "--quiet"):
        assert option in result.stdout
    assert "convcli apply a.png -k gaussian -f npy -o - | convcli apply - -k sobel" in result.stdout


def test_model_layer_mixed_with_other_kernels_is_refused(tmp_path):
    torch = pytest.importorskip("torch")
    path = tmp_path / "m.pt"
    torch.save({"conv1.weight": torch.ones(2, 3, 3, 3)}, path)
    image = tmp_path / "x.npy"
    np.save(image, np.zeros((8, 8, 3), np.float32))
    result = apply(image, "-k", f"{path}:conv1.weight", "-k", "sobel-x", "-f", "npy",
                   "-o", tmp_path / "o.npy")
    assert result.exit_code == 1 and "must be the only -k" in result.stderr
    assert not (tmp_path / "o.npy").exists()


def test_rgba_image_through_an_rgb_model_layer_uses_the_colour(tmp_path):
    """--alpha keep feeds the (premultiplied) colour to a 3-channel layer; opaque pixels are unchanged."""
    torch = pytest.importorskip("torch")
    rng = np.random.default_rng(9)
    weight = rng.standard_normal((4, 3, 3, 3)).astype(np.float32)
    path = tmp_path / "m.pt"
    torch.save({"conv1.weight": torch.from_numpy(weight)}, path)
    rgba = rng.integers(0, 256, (9, 11, 4)).astype(np.uint8)
    rgba[..., 3] = 255
    Image.fromarray(rgba, "RGBA").save(tmp_path / "a.png")
    result = apply(tmp_path / "a.png", "-k", f"{path}:conv1.weight", "-f", "npy", "-o", tmp_path / "o.npy")
    assert result.exit_code == 0, result.stderr
    colour = torch.from_numpy(rgba[..., :3].astype(np.float32)).permute(2, 0, 1)[None]
    expected = torch.nn.functional.conv2d(colour, torch.from_numpy(weight))[0].permute(1, 2, 0).numpy()
    np.testing.assert_allclose(np.load(tmp_path / "o.npy"), expected, rtol=1e-4, atol=1e-2)


def test_output_without_suffix_for_one_map_is_an_error(tmp_path):
    result = apply(SAMPLES / "camera.png", "-k", "box", "-o", tmp_path / "ouput")
    assert result.exit_code == 1 and "no suffix" in result.stderr
    assert not (tmp_path / "ouput").exists()


@pytest.mark.parametrize(("given", "expected"), [(None, "1"), ("3", "3")])
def test_the_cli_gives_openblas_one_thread_unless_the_user_chose(given, expected):
    """Before numpy loads (its OpenBLAS threads would only spin: the pool runs BLAS one thread each)."""
    import os
    import subprocess
    import sys

    code = ("import sys, convcli.cli as c; assert 'numpy' not in sys.modules; "
            "c.app = lambda **k: print(__import__('os').environ.get('OPENBLAS_NUM_THREADS')); c.main()")
    env = {k: v for k, v in os.environ.items() if k != "OPENBLAS_NUM_THREADS"}
    if given is not None:
        env["OPENBLAS_NUM_THREADS"] = given
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=60,
                            check=True)
    assert result.stdout.strip() == expected
