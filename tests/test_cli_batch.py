"""``convcli apply`` batches: names decided before the first write (issue 14, point 5), one JSON line.

Each test is one example of the issue's "Why" list, run through typer's
CliRunner; files are checked by listing the directory and reading them back
with Pillow / numpy.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
from PIL import Image
from typer.testing import CliRunner

from convcli.cli import app

SAMPLES = Path(__file__).resolve().parents[1] / "sample_images"
RUNNER = CliRunner()


def apply(*args):
    return RUNNER.invoke(app, ["apply", *map(str, args)])


def _photos(folder: Path) -> None:
    shutil.copy(SAMPLES / "camera.png", folder / "chelsea.png")
    with Image.open(SAMPLES / "camera.png") as image:
        image.convert("RGB").save(folder / "chelsea.jpg", quality=90)


def test_same_stem_inputs_both_keep_their_suffix(tmp_path):
    _photos(tmp_path)
    out = tmp_path / "out"
    result = apply(tmp_path, "-k", "sobel-x", "-o", f"{out}/")  # DIR/ is created
    assert result.exit_code == 0, result.output
    assert sorted(p.name for p in out.iterdir()) == ["chelsea.jpg.sobel-x.png", "chelsea.png.sobel-x.png"]
    with Image.open(out / "chelsea.jpg.sobel-x.png") as image:
        assert image.mode == "RGB" and image.size == (320, 320)


def test_rerun_into_the_input_directory_does_not_filter_its_outputs(tmp_path):
    shutil.copy(SAMPLES / "camera.png", tmp_path / "x.png")
    assert apply(tmp_path, "-k", "blur", "-o", tmp_path).exit_code == 0
    again = apply(tmp_path, "-k", "blur", "-o", tmp_path, "--force")
    assert again.exit_code == 0, again.output
    assert "x.blur.png: skipped, an output of this run" in again.stderr
    assert sorted(p.name for p in tmp_path.iterdir()) == ["x.blur.png", "x.png"]


def test_skip_existing_resumes_a_batch(tmp_path):
    for name in ("a", "b"):
        shutil.copy(SAMPLES / "checkerboard.png", tmp_path / f"{name}.png")
    out = tmp_path / "out"
    out.mkdir()
    assert apply(tmp_path / "a.png", "-k", "box", "-o", out).exit_code == 0
    before = (out / "a.box.png").stat().st_mtime_ns
    result = apply(tmp_path / "a.png", tmp_path / "b.png", "-k", "box", "-o", out, "--skip-existing",
                   "--json")
    assert result.exit_code == 0, result.output
    summary = json.loads(result.stdout)
    assert [s["input"] for s in summary["skipped"]] == [str(tmp_path / "a.png")]
    assert summary["succeeded"] == 1 and (out / "b.box.png").exists()
    assert (out / "a.box.png").stat().st_mtime_ns == before
    refused = apply(tmp_path / "a.png", "-k", "box", "-o", out)  # without it, an existing file is refused
    assert refused.exit_code == 1 and "--force" in refused.stderr


def test_inline_kernels_are_labelled_by_content(tmp_path):
    shutil.copy(SAMPLES / "checkerboard.png", tmp_path / "c.png")
    first = apply(tmp_path / "c.png", "-k", "1,0,-1;2,0,-2;1,0,-1", "-o", tmp_path, "--json")
    second = apply(tmp_path / "c.png", "-k", "1,2,1;0,0,0;-1,-2,-1", "-o", tmp_path, "--json")
    named = apply(tmp_path / "c.png", "-k", "gx=1,0,-1;2,0,-2;1,0,-1", "-o", tmp_path)
    assert first.exit_code == second.exit_code == named.exit_code == 0, second.output
    labels = [json.loads(r.stdout)["kernels"][0]["name"] for r in (first, second)]
    assert all(label.startswith("k-") and len(label) == 6 for label in labels) and labels[0] != labels[1]
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(
        ["c.png", f"c.{labels[0]}.png", f"c.{labels[1]}.png", "c.gx.png"])
    with Image.open(tmp_path / "c.gx.png") as a, Image.open(tmp_path / f"c.{labels[0]}.png") as b:
        np.testing.assert_array_equal(np.asarray(a), np.asarray(b))


def test_output_name_without_suffix_for_several_maps_is_an_error(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "output").mkdir()
    result = apply(SAMPLES / "camera.png", "-k", "sobel", "-o", "ouput")  # a typo of output/
    assert result.exit_code == 1
    assert "-o ouput: 2 maps (sobel-x, sobel-y) need a directory (-o ouput/" in result.stderr
    assert sorted(p.name for p in tmp_path.iterdir()) == ["output"]


def test_json_is_one_compact_line_with_the_geometry(tmp_path):
    result = apply(SAMPLES / "camera.png", "-k", "sobel-x", "-s", "2", "-o", tmp_path, "--json", "-q")
    assert result.exit_code == 0, result.output
    assert result.stdout.count("\n") == 1 and ", " not in result.stdout.split('"results"')[0]
    (record,) = json.loads(result.stdout)["results"]
    geometry = record["geometry"]
    assert geometry["padding"] == "same"  # 320 at s=2: ceil → 160, the odd pad bottom/right
    assert geometry["pads"] == {"top": 0, "bottom": 1, "left": 0, "right": 1}
    assert geometry["stride"] == [2, 2] and geometry["dilation"] == [1, 1]
    assert geometry["border"] in ("zero", "reflect") and isinstance(geometry["method"], str)
    assert record["shape_out"][:2] == [160, 160]


def test_scale_error_lists_every_choice():
    result = apply(SAMPLES / "camera.png", "-k", "box", "--scale", "auto:2")
    assert result.exit_code == 1
    assert "auto, clip, abs, minmax, raw or offset:V" in result.stderr


def test_the_same_input_twice_is_filtered_once(tmp_path):
    shutil.copy(SAMPLES / "checkerboard.png", tmp_path / "c.png")
    result = apply(tmp_path / "c.png", tmp_path / "c.png", "-k", "box", "-o", f"{tmp_path / 'out'}/",
                   "--json")
    assert result.exit_code == 0, result.output
    summary = json.loads(result.stdout)
    assert summary["succeeded"] == 1 and summary["skipped"][0]["reason"].endswith("given twice")
    assert [p.name for p in (tmp_path / "out").iterdir()] == ["c.box.png"]


def test_an_output_directory_that_cannot_be_created_is_one_error_line(tmp_path):
    image = tmp_path / "in.png"
    Image.fromarray(np.zeros((9, 9), np.uint8)).save(image)
    result = RUNNER.invoke(app, ["apply", str(image), "-k", "sobel", "-o", f"{image}/d/"])
    assert result.exit_code == 1
    assert result.output.strip() == (f"convcli: error: -o {image}/d/: cannot create the output directory "
                                     "(a part of it is not a directory)")


def test_a_multi_page_tiff_to_zarr_keeps_the_zarr_format(tmp_path):
    """-o NAME.zarr with a 3-page TIFF wrote PNGs; now one zarr per page (as PNG gets one file per page),
    and one picked page (--frames 1) goes to the very name given."""
    import tifffile
    import zarr

    pages = [(np.arange(30 * 20).reshape(30, 20) * (i + 1) % 256).astype(np.uint8) for i in range(3)]
    with tifffile.TiffWriter(tmp_path / "mp.tif") as writer:
        for page in pages:
            writer.write(page)
    result = RUNNER.invoke(app, ["apply", str(tmp_path / "mp.tif"), "-k", "sobel", "-o",
                                 str(tmp_path / "mp.zarr"), "-q"])
    assert result.exit_code == 0, result.output
    assert sorted(p.name for p in tmp_path.glob("*.zarr")) == [f"mp.f{i}.sobel.zarr" for i in range(3)]
    tifffile.imwrite(tmp_path / "page1.tif", pages[1])
    for args in (["mp.tif", "--frames", "1", "-o", "one.zarr"], ["page1.tif", "-o", "ref.zarr"]):
        result = RUNNER.invoke(app, ["apply", *[str(tmp_path / a) if a.endswith((".tif", ".zarr")) else a
                                                for a in args], "-k", "sobel", "-q"])
        assert result.exit_code == 0, result.output
    np.testing.assert_array_equal(zarr.open_array(str(tmp_path / "one.zarr"))[:],
                                  zarr.open_array(str(tmp_path / "ref.zarr"))[:])
    np.testing.assert_array_equal(zarr.open_array(str(tmp_path / "mp.f1.sobel.zarr"))[:],
                                  zarr.open_array(str(tmp_path / "ref.zarr"))[:])


def test_a_batch_that_fails_before_any_input_leaves_no_output_directory(tmp_path):
    import socket

    image = tmp_path / "in.png"
    Image.fromarray(np.zeros((9, 9), np.uint8)).save(image)
    Image.fromarray(np.ones((9, 9), np.uint8)).save(image.with_name("in2.png"))
    with socket.socket() as probe:  # a port nobody listens on
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    result = RUNNER.invoke(app, ["apply", str(image), str(image.with_name("in2.png")), "-k", "sobel", "-o",
                                 f"{tmp_path / 'new'}/", "--scheduler", f"tcp://127.0.0.1:{port}"])
    assert result.exit_code == 1
    assert not (tmp_path / "new").exists()
