"""The batch library (convcli.batch, convcli.jobfactory) without the CLI.

Names are planned, inputs expanded and run through the library API alone;
written arrays are read back with numpy and compared with
scipy.ndimage.correlate; nothing may be printed (the CLI reports).
"""

from __future__ import annotations

import re

import numpy as np
import pytest
from PIL import Image
from scipy import ndimage

from convcli.batch import (
    Batch,
    BatchOptions,
    check_output,
    expand_inputs,
    files_per_input,
    plan_names,
    requested_format,
)
from convcli.errors import ImageError, OptionError, OutputError, ShapeError
from convcli.job import Job
from convcli.jobfactory import JobFactory, layer_options, memory_budgets
from convcli.pipeline.sources import open_source

SOBEL = np.stack([np.outer([1, 2, 1], [-1, 0, 1]), np.outer([-1, 0, 1], [1, 2, 1])]).astype(np.float32)


def _job(**options) -> Job:
    return Job(weights=SOBEL, labels=("x", "y"), bank_name="sobel",
               geometry={"padding": "same", "border": "zero"}, **options)


def _batch(inputs, tmp_path, job=None, **options) -> Batch:
    options.setdefault("output", f"{tmp_path / 'out'}/")
    return Batch([str(p) for p in inputs], _factory(job or _job()), BatchOptions(**options))


class _Plain:
    """A bank stand-in: JobFactory only asks whether it is a model layer."""

    layer = None


def _factory(job: Job) -> JobFactory:
    return JobFactory(job, _Plain(), {}, None)


def _gray(path, rows=9, cols=11, seed=0) -> np.ndarray:
    image = np.random.default_rng(seed).integers(0, 256, (rows, cols), dtype=np.uint8)
    Image.fromarray(image).save(path)
    return image


def test_expand_inputs_lists_a_directory_sorted_and_an_empty_one_as_a_failed_entry(tmp_path):
    folder = tmp_path / "in"
    folder.mkdir()
    for name in ("b.png", "a.JPG", "notes.txt", "c.npy"):
        (folder / name).write_bytes(b"x")
    (tmp_path / "empty").mkdir()
    entries = expand_inputs([str(folder), "-", str(tmp_path / "empty")])
    assert [source for source, _ in entries] == [str(folder / "a.JPG"), str(folder / "b.png"),
                                                 str(folder / "c.npy"), "-", str(tmp_path / "empty")]
    assert [problem for _, problem in entries[:4]] == [None] * 4
    assert isinstance(entries[4][1], ImageError) and "directory has no image files" in str(entries[4][1])


@pytest.mark.parametrize(("output", "options", "message"), [
    ("-", {"stdout_taken": True}, "--json and -o - both want stdout"),
    ("-", {"several": True}, "cannot be written to stdout"),
    ("out.png", {"several": True}, "several inputs need a directory: -o out.png/"),
    ("out.png", {"out_format": "tiff"}, "names a png file but -f asks for tiff"),
    ("out.xyz", {}, "unknown output suffix '.xyz'"),
    ("missing/out.png", {}, "output directory missing does not exist"),
    (None, {"montage": "sheet.jpg"}, "the contact sheet is a PNG"),
])
def test_check_output_refuses_before_anything_is_read(tmp_path, monkeypatch, output, options, message):
    monkeypatch.chdir(tmp_path)
    with pytest.raises(OptionError, match=re.escape(message)):
        check_output(output, **options)


def test_check_output_accepts_a_directory_to_create_and_a_file_with_a_suffix(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    check_output("new/", several=True)
    check_output("one.tiff", out_format="tiff")
    assert not (tmp_path / "new").exists()  # checking creates nothing


def test_files_per_input_and_requested_format():
    job = _job()
    assert files_per_input(job, "a.png", None) == ("png", ("x", "y"))
    assert files_per_input(job, "a.npy", None) == ("npy", ("sobel",))  # one npy holds every map
    assert files_per_input(_job(reduce="magnitude"), "a.png", "tiff") == ("tiff", ("sobel-magnitude",))
    assert requested_format("edges.tif", None) == "tiff"
    assert requested_format("out.zarr", None) == "zarr"
    assert requested_format("dir/", None) is None
    assert requested_format("edges.tif", "png") == "png"


def test_plan_names_keeps_the_suffix_of_colliding_stems(tmp_path):
    entries = [(str(tmp_path / "cat.png"), None), (str(tmp_path / "cat.jpg"), None),
               (str(tmp_path / "dog.png"), None), ("gone", ImageError("gone: failed"))]
    plans = plan_names(_job(), entries, output=str(tmp_path / "out") + "/")
    out = tmp_path / "out"
    assert plans[0].targets == [str(out / "cat.png.x.png"), str(out / "cat.png.y.png")]
    assert plans[1].targets == [str(out / "cat.jpg.x.png"), str(out / "cat.jpg.y.png")]
    assert plans[2].targets == [str(out / "dog.x.png"), str(out / "dog.y.png")]
    assert plans[3] is None
    assert plan_names(_job(), entries[:1], output=str(tmp_path / "one.png")) == [None]


def test_batch_runs_every_input_into_files_equal_to_scipy_and_prints_nothing(tmp_path, capfd):
    inputs = [tmp_path / "a.png", tmp_path / "b.png"]
    images = [_gray(path, seed=i) for i, path in enumerate(inputs)]
    batch = Batch([str(p) for p in inputs], _factory(_job(out_format="npy")),
                  BatchOptions(output=f"{tmp_path / 'out'}/"))
    assert not (tmp_path / "out").exists() and batch.several  # made when the first input runs
    seen = []
    outcomes = list(batch.outcomes(progress=lambda index, fraction: seen.append((index, fraction))))
    assert (tmp_path / "out").is_dir()
    assert capfd.readouterr() == ("", "")
    assert [o.source for o in outcomes] == [str(p) for p in inputs]
    assert {index for index, _ in seen} == {0, 1} and max(f for _, f in seen) == pytest.approx(1.0)
    for outcome, image in zip(outcomes, images):
        assert outcome.error is None and outcome.skipped is None
        (path, shape), = outcome.written
        maps = np.load(path)
        assert shape == maps.shape == (9, 11, 2)
        for i in range(2):
            reference = ndimage.correlate(image.astype(np.float64), SOBEL[i].astype(np.float64),
                                          mode="constant", cval=0.0)
            np.testing.assert_allclose(maps[..., i], reference, rtol=1e-5, atol=1e-3)
    assert batch.written == {str((tmp_path / "out" / f"{p.stem}.sobel.npy").resolve()) for p in inputs}


def test_batch_outcomes_for_a_bad_file_a_duplicate_and_existing_outputs(tmp_path):
    good, bad = tmp_path / "good.png", tmp_path / "bad.png"
    _gray(good)
    bad.write_bytes(b"not an image")
    first = list(_batch([good, bad, good], tmp_path).outcomes())
    assert first[0].record is not None and len(first[0].written) == 2
    assert isinstance(first[1].error, ImageError) and "bad.png" in str(first[1].error)
    assert first[2].skipped == f"{good}: skipped, given twice" and not first[2].outputs_exist
    again, = _batch([good], tmp_path, skip_existing=True).outcomes()
    assert again.outputs_exist and again.skipped.endswith("its outputs exist (--skip-existing)")
    refused, = _batch([good], tmp_path).outcomes()
    assert isinstance(refused.error, OutputError) and "exists; use --force" in str(refused.error)


def test_batch_refuses_stdin_twice_and_a_file_output_for_several_inputs(tmp_path):
    with pytest.raises(OptionError, match="stdin"):
        _batch(["-", "-"], tmp_path)
    with pytest.raises(OptionError, match="several inputs need a directory"):
        _batch([tmp_path / "a.png", tmp_path / "b.png"], tmp_path, output=str(tmp_path / "x.png"))


def test_claim_refuses_a_path_this_run_wrote_or_names_twice(tmp_path):
    batch = _batch([tmp_path / "a.png"], tmp_path)
    batch.written.add(str((tmp_path / "done.png").resolve()))
    batch.claim(["-", "-", str(tmp_path / "new.png")])
    with pytest.raises(OutputError, match="already written by this run"):
        batch.claim([str(tmp_path / "done.png")])
    with pytest.raises(OutputError, match="already written by this run"):
        batch.claim([str(tmp_path / "twice.png"), str(tmp_path / "twice.png")])


def test_an_option_error_stops_the_batch(tmp_path):
    frames = [Image.new("L", (8, 6), level) for level in (10, 100, 200)]
    frames[0].save(tmp_path / "anim.gif", save_all=True, append_images=frames[1:])
    batch = Batch([str(tmp_path / "anim.gif")], _factory(_job(reduce="magnitude")), BatchOptions(output="-"))
    with pytest.raises(OptionError, match="3 frames go to stdout only as -f npy"):
        list(batch.outcomes())


@pytest.mark.parametrize(("environ", "budgets"), [
    ({}, {}),
    ({"CONVCLI_BAND_BYTES": " 64M "}, {"band_bytes": 64 << 20}),
    ({"CONVCLI_BAND_BYTES": "1.5k", "CONVCLI_HOLD_BYTES": "1000"}, {"band_bytes": 1536, "hold_bytes": 1000}),
    ({"CONVCLI_HOLD_BYTES": "2G"}, {"hold_bytes": 2 << 30}),
])
def test_memory_budgets(environ, budgets):
    assert memory_budgets(environ) == budgets


@pytest.mark.parametrize("text", ["lots", "-5M", "M"])
def test_memory_budgets_refuse_what_is_not_a_size(text):
    with pytest.raises(OptionError, match="CONVCLI_HOLD_BYTES must be a number of bytes"):
        memory_budgets({"CONVCLI_HOLD_BYTES": text})


def test_layer_options_give_defaults_for_what_the_geometry_lacks():
    geometry = {"stride": (2, 2), "padding": "same", "bias": 0.5}
    given = {"stride", "border", "output_padding", "transpose", "channels", "bias"}
    assert layer_options(given, geometry, True) == {
        "stride": (2, 2), "border": "zero", "output_padding": (0, 0), "transpose": True, "bias": 0.5}


def test_job_factory_groups_fits_a_dense_block_diagonal_bank(tmp_path):
    from convcli.kernels import Kernel, KernelBank

    Image.new("RGB", (5, 4), (10, 20, 30)).save(tmp_path / "rgb.png")
    weights = np.arange(3 * 9, dtype=np.float32).reshape(3, 3, 3)
    bank = KernelBank("k", [Kernel(f"k{i}", w) for i, w in enumerate(weights)])
    job = Job(weights=weights, labels=("k0", "k1", "k2"), bank_name="k", geometry={"channels": "depthwise"})
    notes = []
    factory = JobFactory(job, bank, {"groups": 3}, 3, on_note=notes.append)
    assert not factory.same_for_every_input
    source = open_source(str(tmp_path / "rgb.png"))
    try:
        fitted = factory(source)
        assert fitted.geometry["channels"] == "sum"
        assert fitted.weights.shape == (3, 3, 3, 3)
        for f in range(3):  # kernel f sees channel f only
            for c in range(3):
                expected = weights[f] if c == f else np.zeros((3, 3))
                np.testing.assert_array_equal(fitted.weights[f, :, :, c], expected)
        with pytest.raises(ShapeError, match=r"rgb\.png: --groups 2 must divide"):
            JobFactory(job, bank, {}, 2)(source)
    finally:
        source.close()
    assert notes == [] and factory.layer_record is None
