"""Batch names decided before the first write (issue 14, point 5): convcli.naming."""

from __future__ import annotations

import numpy as np
import pytest

from convcli.errors import OptionError
from convcli.naming import Request, inline_label, load_labelled_bank, plan_batch, split_name


def req(source: str, *labels: str, ext: str = ".png") -> Request:
    return Request(source, labels or ("sobel-x",), ext)


def test_names_without_a_collision_stay_as_today(tmp_path):
    plan = plan_batch([req("in/a.png"), req("in/b.jpg", "sobel-x", "sobel-y")], str(tmp_path))
    assert [p.targets for p in plan] == [
        [str(tmp_path / "a.sobel-x.png")],
        [str(tmp_path / "b.sobel-x.png"), str(tmp_path / "b.sobel-y.png")],
    ]
    assert all(p.skip is None for p in plan)


def test_colliding_inputs_both_keep_their_suffix():
    plan = plan_batch([req("chelsea.png"), req("chelsea.jpg"), req("cat.png")], None)
    assert [p.targets for p in plan] == [["chelsea.png.sobel-x.png"], ["chelsea.jpg.sobel-x.png"],
                                         ["cat.sobel-x.png"]]


def test_same_name_in_two_folders_is_an_error_before_any_write(tmp_path):
    with pytest.raises(OptionError, match=r"a/x\.png and b/x\.png would both write .*x\.png\.sobel-x\.png"):
        plan_batch([req("a/x.png"), req("b/x.png")], str(tmp_path))


def test_outputs_of_the_run_are_not_inputs(tmp_path):
    source, previous = tmp_path / "x.png", tmp_path / "x.blur.png"
    plan = plan_batch([req(str(source), "blur"), req(str(previous), "blur")], str(tmp_path))
    assert plan[0].targets == [str(previous)] and plan[0].skip is None
    assert plan[1].skip == f"{previous}: skipped, an output of this run"
    assert plan[1].targets == []


def test_outputs_of_a_colliding_run_are_skipped_too(tmp_path):
    files = [tmp_path / "c.png", tmp_path / "c.jpg", tmp_path / "c.png.k.png", tmp_path / "c.jpg.k.png"]
    plan = plan_batch([req(str(f), "k") for f in files], str(tmp_path))
    assert [p.skip is None for p in plan] == [True, True, False, False]
    assert plan[0].targets == [str(files[2])]


def test_skip_existing_resumes(tmp_path):
    (tmp_path / "a.k.png").write_bytes(b"done")
    (tmp_path / "b.k-1.png").write_bytes(b"half")
    plan = plan_batch([req("a.png", "k"), req("b.png", "k-1", "k-2")], str(tmp_path), skip_existing=True)
    assert plan[0].skip and "--skip-existing" in plan[0].skip
    assert plan[1].skip is None  # only part of its outputs: redone


def test_the_same_input_twice_runs_once():
    plan = plan_batch([req("a.png"), req("./a.png")], None)
    assert plan[0].skip is None and plan[1].skip == "./a.png: skipped, given twice"


def test_montage_names_follow_the_stems():
    plan = plan_batch([req("c.png"), req("c.jpg"), req("d.png")], "out", montage="sheet.png")
    assert [p.montage for p in plan] == ["sheet.c.png.png", "sheet.c.jpg.png", "sheet.d.png"]


# --------------------------------------------------------------------- kernel labels
def test_split_name_parse_order(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert split_name("edge=1,0,-1") == ("edge", "1,0,-1")
    assert split_name("gaussian:sigma=2") == (None, "gaussian:sigma=2")
    assert split_name("box:size=3") == (None, "box:size=3")
    assert split_name("1,2;3,4") == (None, "1,2;3,4")
    (tmp_path / "a=b.npy").write_bytes(b"")
    assert split_name("a=b.npy") == (None, "a=b.npy")  # an existing file wins
    (tmp_path / "m.safetensors").write_bytes(b"")
    assert split_name("m.safetensors:conv1.weight") == (None, "m.safetensors:conv1.weight")


def test_inline_kernels_get_a_content_hash_label():
    one = load_labelled_bank(["1,0,-1;2,0,-2;1,0,-1"])
    again = load_labelled_bank(["1,0,-1;2,0,-2;1,0,-1"])
    other = load_labelled_bank(["1,2;3,4"])
    assert one.labels == again.labels and one.labels[0].startswith("k-") and len(one.labels[0]) == 6
    assert one.labels != other.labels
    assert one.labels == [inline_label(np.array([[1, 0, -1], [2, 0, -2], [1, 0, -1]], dtype=float))]
    np.testing.assert_array_equal(one.kernels[0].weights, [[1, 0, -1], [2, 0, -2], [1, 0, -1]])


def test_named_specs_and_banks():
    bank = load_labelled_bank(["edge=1,0,-1", "smooth=gaussian:sigma=2", "sobel", "sobel"])
    assert bank.labels == ["edge", "smooth", "sobel-x", "sobel-y", "sobel-x-2", "sobel-y-2"]
    assert bank.name == "edge+smooth+sobel+sobel"
    named_bank = load_labelled_bank(["d=sobel"])
    assert named_bank.labels == ["d-1", "d-2"]
    assert load_labelled_bank(["sobel"]).labels == ["sobel-x", "sobel-y"]


def test_inputs_named_on_the_command_line_are_never_skipped_as_outputs(tmp_path):
    source, other = tmp_path / "x.png", tmp_path / "x.blur.png"
    plan = plan_batch([Request(str(source), ("blur",), ".png", found=False),
                       Request(str(other), ("blur",), ".png", found=False)], str(tmp_path))
    assert [p.skip for p in plan] == [None, None]  # apply then refuses to overwrite the input
