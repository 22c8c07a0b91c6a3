"""``convcli explain``: its numbers are the core's, its GIF has the documented frames.

References: the SPEC's known answers (torch/scipy computed), ``scipy.signal``
(:func:`reference.scipy_conv2d`) and the literal scatter loop
(:func:`reference.numpy_conv_transpose2d`) — never explain's own numbers.
"""

from __future__ import annotations

import io
import json
import random

import numpy as np
import pytest
from PIL import Image
from reference import numpy_conv_transpose2d, numpy_pad, scipy_conv2d
from typer.testing import CliRunner

from convcli import conv2d, conv_transpose2d
from convcli.animate import MAX_FRAMES, TITLE_HEIGHT, frame_cells, frame_size
from convcli.cli import app
from convcli.explain import explain_conv2d, explain_conv_transpose2d

runner = CliRunner()


def run(*args: str):
    return runner.invoke(app, ["explain", *args])


def run_json(*args: str) -> dict:
    result = run(*args, "--json")
    assert result.exit_code == 0, result.stderr + result.stdout
    return json.loads(result.stdout)


def matrix_text(array: np.ndarray) -> str:
    """Exact text of a float array for --input / inline kernels (repr round-trips)."""
    return ";".join(",".join(repr(float(v)) for v in row) for row in array)


def pair_text(value) -> str:
    return ",".join(map(str, value)) if isinstance(value, tuple) else str(value)


# --------------------------------------------------------------------- known answers
def test_border_defaults_to_reflect_and_transpose_takes_none():
    """Issue 13: the forward default is reflect (a flat input stays flat); --transpose works
    without --border, and an explicit non-zero border with it stays an error."""
    flat = run_json("--input", "5,5,5;5,5,5;5,5,5", "-k", "box:size=3", "-p", "same")
    assert flat["border"] == "reflect"
    np.testing.assert_allclose(flat["output"], 5.0, rtol=1e-12)
    reflect = run_json("--input", "1,2,3;4,5,6;7,8,9", "-k", "1,0,0;0,0,0;0,0,0", "-p", "1")
    assert reflect["output"] == [[5, 4, 5], [2, 1, 2], [5, 4, 5]]  # SPEC's reflect known answer
    transposed = run_json("--input", "1,2;3,4", "-k", "1,1,1;1,1,1;1,1,1", "--transpose", "-s", "2",
                          "-p", "1")
    assert transposed["output"] == [[1, 3, 2], [4, 10, 6], [3, 7, 4]]
    refused = run("--input", "1,2;3,4", "--transpose", "--border", "reflect")
    assert refused.exit_code == 1 and "does not apply" in refused.stderr


def test_same_padding_known_answer_and_window():
    record = run_json("--input", "1,2,3;4,5,6;7,8,9", "-k", "1,2;3,4", "-p", "same", "--at", "1,1",
                      "--border", "zero")
    assert record["output"] == [[37, 47, 21], [67, 77, 33], [23, 26, 9]]  # SPEC, torch/scipy
    assert record["padding"] == "same" and record["pads"] == [0, 1, 0, 1]
    assert record["border"] == "zero" and record["method"] == "direct"
    assert record["stride"] == [1, 1] and record["dilation"] == [1, 1]
    assert record["window"]["values"] == [[5, 6], [8, 9]]
    assert record["products"] == [[5, 12], [24, 36]]
    assert record["sum"] == record["output_value"] == 77
    assert record["mask"][3] == [True] * 4 and record["mask"][0] == [False, False, False, True]


def test_dilation_known_answer_window_taps_are_two_apart():
    x = matrix_text(np.arange(25.0).reshape(5, 5))
    record = run_json("--input", x, "-k", "1,1;1,1", "-d", "2", "--at", "2,1", "-p", "valid")
    assert record["output"] == [[24, 28, 32], [44, 48, 52], [64, 68, 72]]
    assert record["window"]["rows"] == [2, 4] and record["window"]["cols"] == [1, 3]
    assert record["sum"] == 68


@pytest.mark.parametrize(
    ("border", "expected"),
    [
        ("zero", [[0, 0, 0], [0, 1, 2], [0, 4, 5]]),
        ("reflect", [[5, 4, 5], [2, 1, 2], [5, 4, 5]]),
        ("replicate", [[1, 1, 2], [1, 1, 2], [4, 4, 5]]),
        ("wrap", [[9, 7, 8], [3, 1, 2], [6, 4, 5]]),
    ],
)
def test_border_known_answers(border, expected):
    record = run_json("--input", "1,2,3;4,5,6;7,8,9", "-k", "1,0,0;0,0,0;0,0,0", "-p", "1",
                      "--border", border)
    assert record["output"] == expected
    assert record["sum"] == expected[0][0]


def test_transposed_known_answer_and_scatter_terms():
    record = run_json("--input", "1,2;3,4", "-k", "1,1,1;1,1,1;1,1,1", "--transpose", "-s", "2",
                      "-p", "1", "--output-padding", "1", "--at", "1,1")
    assert record["output"] == [[1, 3, 2, 2], [4, 10, 6, 6], [3, 7, 4, 4], [3, 7, 4, 4]]
    terms = {(tuple(t["input"]), tuple(t["tap"])) for t in record["contributions"]}
    # s·a + m = 1 + pad 1 = 2 on both axes: (a, m) in {(1, 0), (0, 2)}
    assert terms == {((a, b), (m, n)) for a, m in ((1, 0), (0, 2)) for b, n in ((1, 0), (0, 2))}
    assert sum(t["product"] for t in record["contributions"]) == 10 == record["sum"]


# --------------------------------------------------------------------- random geometries
def _forward_cases(count: int, seed: int):
    rng = random.Random(seed)
    for _ in range(count):
        yield {
            "shape": (rng.randint(1, 7), rng.randint(1, 7)),
            "kernel": (rng.randint(1, 4), rng.randint(1, 4)),
            "stride": rng.choice((1, 2, 3, (1, 2), (3, 1))),
            "padding": rng.choice(("valid", "same", "full", 0, 1, 2, (1, 2), (0, 2, 3, 1))),
            "border": rng.choice(("zero", "constant:2.5", "reflect", "symmetric", "replicate", "wrap")),
            "dilation": rng.choice((1, 1, 2, (1, 2), (2, 1))),
            "flip": rng.random() < 0.3,
            "seed": rng.randrange(10**6),
        }


def _padding_text(padding) -> str:
    return ",".join(map(str, padding)) if isinstance(padding, tuple) else str(padding)


def test_forward_json_equals_scipy_and_conv2d_at_random_cells():
    checked = 0
    for case in _forward_cases(80, seed=7):
        rng = np.random.default_rng(case["seed"])
        image = rng.integers(-9, 10, case["shape"]).astype(np.float64)
        weights = rng.integers(-4, 5, case["kernel"]).astype(np.float64)
        reference = scipy_conv2d(image, weights, stride=case["stride"], padding=case["padding"],
                                 border=case["border"], dilation=case["dilation"], flip=case["flip"])
        if reference is None:  # kernel larger than the padded input: explain must refuse
            result = run("--input", matrix_text(image), "-k", matrix_text(weights),
                         "-p", _padding_text(case["padding"]), "-d", pair_text(case["dilation"]),
                         "--border", case["border"], "--json")
            assert result.exit_code == 1
            continue
        reference = reference[:, :, 0]
        at = (int(rng.integers(reference.shape[0])), int(rng.integers(reference.shape[1])))
        args = [
            "--input", matrix_text(image), "-k", matrix_text(weights),
            "-s", pair_text(case["stride"]), "-p", _padding_text(case["padding"]),
            "--border", case["border"], "-d", pair_text(case["dilation"]),
            "--at", f"{at[0]},{at[1]}",
        ]
        if case["flip"]:
            args.append("--flip")
        record = run_json(*args)
        core = conv2d(image, weights, stride=case["stride"], padding=case["padding"],
                      border=case["border"], dilation=case["dilation"], flip=case["flip"],
                      dtype=np.float64)[:, :, 0]
        np.testing.assert_allclose(record["output"], reference, atol=1e-9)
        assert record["output"] == core.tolist()
        assert record["output_value"] == core[at]
        assert record["sum"] == pytest.approx(reference[at], abs=1e-9)
        # the padded grid and its mask, checked against numpy.pad
        pads = record["pads"]
        padded = numpy_pad(image[:, :, None], tuple(pads), case["border"])[:, :, 0]
        np.testing.assert_array_equal(record["padded"], padded)
        mask = np.ones(padded.shape, dtype=bool)
        mask[pads[0] : pads[0] + image.shape[0], pads[2] : pads[2] + image.shape[1]] = False
        np.testing.assert_array_equal(record["mask"], mask)
        # window = P[s·i + d·m, s·j + d·n]; products = window · K (flipped with --flip)
        stride = np.broadcast_to(case["stride"], 2)
        dilation = np.broadcast_to(case["dilation"], 2)
        rows = [stride[0] * at[0] + dilation[0] * m for m in range(weights.shape[0])]
        cols = [stride[1] * at[1] + dilation[1] * n for n in range(weights.shape[1])]
        assert record["window"]["rows"] == rows and record["window"]["cols"] == cols
        used = weights[::-1, ::-1] if case["flip"] else weights
        np.testing.assert_array_equal(record["products"], padded[np.ix_(rows, cols)] * used)
        checked += 1
    assert checked >= 50


def test_transposed_json_equals_scatter_reference_at_random_cells():
    rng_cases = random.Random(11)
    checked = 0
    for _ in range(50):
        stride = rng_cases.choice((1, 2, 3, (1, 2), (3, 1)))
        dilation = rng_cases.choice((1, 1, 2, (2, 1)))
        limits = [max(s, d) for s, d in zip(np.broadcast_to(stride, 2), np.broadcast_to(dilation, 2))]
        output_padding = (rng_cases.randrange(limits[0]), rng_cases.randrange(limits[1]))
        padding = rng_cases.choice(("valid", "same", 0, 1, 2, (1, 0), (0, 2, 1, 1)))
        flip = rng_cases.random() < 0.3
        rng = np.random.default_rng(rng_cases.randrange(10**6))
        image = rng.integers(-9, 10, (rng.integers(1, 5), rng.integers(1, 5))).astype(np.float64)
        weights = rng.integers(-4, 5, (rng.integers(1, 4), rng.integers(1, 4))).astype(np.float64)
        reference = numpy_conv_transpose2d(image, weights, stride=stride, padding=padding,
                                           output_padding=output_padding, dilation=dilation,
                                           flip=flip)
        if reference is None:
            continue
        reference = reference[:, :, 0]
        at = (int(rng.integers(reference.shape[0])), int(rng.integers(reference.shape[1])))
        args = [
            "--input", matrix_text(image), "-k", matrix_text(weights), "--transpose",
            "-s", pair_text(stride), "-p", _padding_text(padding), "-d", pair_text(dilation),
            "--output-padding", pair_text(output_padding), "--at", f"{at[0]},{at[1]}",
        ]
        if flip:
            args.append("--flip")
        record = run_json(*args)
        core = conv_transpose2d(image, weights, stride=stride, padding=padding,
                                output_padding=output_padding, dilation=dilation, flip=flip,
                                dtype=np.float64)[:, :, 0]
        np.testing.assert_allclose(record["output"], reference, atol=1e-9)
        assert record["output"] == core.tolist()
        assert record["sum"] == pytest.approx(reference[at], abs=1e-9)
        assert sum(t["product"] for t in record["contributions"]) == pytest.approx(reference[at])
        checked += 1
    assert checked >= 35


# --------------------------------------------------------------------- text output
def test_rich_output_prints_the_cores_numbers():
    result = run("--input", "1,2,3;4,5,6;7,8,9", "-k", "1,2;3,4", "-p", "same", "--at", "1,1",
                 "--border", "zero")
    assert result.exit_code == 0, result.stderr
    text = result.stdout
    assert "P: padded input" in text and "K: kernel" in text
    assert "9·4 = 36" in text
    assert "sum of products = 77" in text and "gives out[1, 1] = 77" in text
    # piped (not a terminal): the explained cell is marked [ ] in the output grid
    rows = [line.split() for line in text.splitlines()[-3:]]
    assert rows == [["0", "37", "47", "21"], ["1", "67", "[77]", "33"], ["2", "23", "26", "9"]]


def test_piped_output_marks_padding_and_window_with_characters():
    result = run("--input", "1,2,3;4,5,6;7,8,9", "-k", "1,1;1,1", "-p", "0,1,0,1", "--border", "zero",
                 "--at", "2,2")
    assert result.exit_code == 0, result.stderr
    lines = result.stdout.splitlines()
    grid = lines[lines.index("P: padded input") + 1 : lines.index("P: padded input") + 6]
    cells = [line.split()[1:] for line in grid[1:]]
    assert cells == [["1", "2", "3", "0·"], ["4", "5", "6", "0·"], ["7", "8", "[9]", "[0·]"],
                     ["0·", "0·", "[0·]", "[0·]"]]
    assert "\x1b[" not in result.stdout  # no colour codes in piped output


def test_nested_list_input_and_feature_note():
    record = run_json("--input", "[[1, 2, 3], [4, 5, 6], [7, 8, 9]]", "-p", "valid", "-k", "sobel",
                      "--feature", "1")
    assert record["input"] == [[1, 2, 3], [4, 5, 6], [7, 8, 9]]
    assert record["kernel_name"] == "sobel-y" and record["feature"] == 1
    # sobel-y correlation weights [[-1,-2,-1],[0,0,0],[1,2,1]] on rows 1..3: 3·(1+2+1)·... known: 24
    assert record["output"] == [[24.0]]
    text = run("--input", "[[1,2,3],[4,5,6],[7,8,9]]", "-p", "valid", "-k", "sobel").stdout
    assert "feature 0 of the 2-kernel bank 'sobel' (0 sobel-x, 1 sobel-y)" in text
    assert "feature" not in run("--input", "1,2;3,4", "-k", "box:size=2").stdout.split("\n", 3)[2]
    bad = run("--input", "[[1,2],[3]]")
    assert bad.exit_code == 1 and "row 2 has 1 values but row 1 has 2" in bad.stderr


def test_default_border_is_reflect_and_transposed_has_none():
    record = run_json("--input", "1,2,3;4,5,6;7,8,9", "-k", "1,0,0;0,0,0;0,0,0")
    assert record["padding"] == "same" and record["pads"] == [1, 1, 1, 1]
    assert record["border"] == "reflect" and record["output"][0] == [5, 4, 5]
    transposed = run_json("--input", "1,2;3,4", "-k", "1,1;1,1", "--transpose")
    assert transposed["border"] == "none"


def test_image_npy_with_crop_and_channel(tmp_path):
    rng = np.random.default_rng(3)
    array = rng.integers(0, 255, (30, 40, 3)).astype(np.float32)
    path = tmp_path / "big.npy"
    np.save(path, array)
    refused = run("--image", str(path))
    assert refused.exit_code == 1
    assert "too large" in refused.stderr and "--crop" in refused.stderr
    record = run_json("--image", str(path), "--crop", "5,7,6,5", "--channel", "1", "-k", "box:size=3",
                      "-p", "valid")
    part = array[5:11, 7:12, 1].astype(np.float64)
    assert record["input"] == part.tolist()
    reference = scipy_conv2d(part, np.full((3, 3), 1 / 9))[:, :, 0]
    np.testing.assert_allclose(record["output"], reference, rtol=1e-12)


# --------------------------------------------------------------------- errors
@pytest.mark.parametrize(
    ("args", "needle"),
    [
        (["--input", "1,2,3;4,5,6;7,8,9", "-p", "valid", "--at", "1,0"], "outside the 1×1 output"),
        (["--input", "1,2,3;4,5,6;7,8,9", "-p", "same", "--at", "0,3"], "outside the 3×3 output"),
        (["--input", "1,2,3;4,5,6;7,8,9", "--at", "a;b"], "--at"),
        (["--input", "1,2,3;4,5"], "row 2 has 2 values but row 1 has 3"),
        (["--input", "1,2,x;4,5,6"], "'x', which is not a number"),
        (["--input", " ; "], "empty"),
        (["--input", "1,2;3,4", "--image", "a.png"], "exactly one"),
        (["--input", "1,2;3,4", "-k", "1,2,3;4,5,6;7,8,9", "-p", "valid"], "larger than the padded input"),
        (["--input", "1,2;3,4", "--output-padding", "1"], "only applies with --transpose"),
        (["--input", "1,2;3,4", "--transpose", "--border", "wrap"], "does not apply"),
        (["--input", ";".join([",".join(["1"] * 17)] * 17)], "too large to print"),
    ],
)
def test_bad_options_exit_1_with_one_line(args, needle):
    result = run(*args)
    assert result.exit_code == 1
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("convcli: error: ")
    assert needle in lines[0]
    assert "Traceback" not in result.stdout + result.stderr


# --------------------------------------------------------------------- GIF
def _open_gif(path) -> Image.Image:
    return Image.open(io.BytesIO(path.read_bytes()))


@pytest.mark.parametrize(
    "args",
    [
        ["--input", "1,2,3,4;5,6,7,8;9,10,11,12;13,14,15,16", "-k", "1,0;0,-1", "-p", "same"],
        ["--input", "1,2,3,4,5;6,7,8,9,10;11,12,13,14,15", "-s", "2", "-d", "2", "-p", "2"],
        ["--input", "1,2;3,4", "-k", "1,2,3;4,5,6;7,8,9", "--transpose", "-s", "2",
         "--output-padding", "1"],
    ],
)
def test_gif_has_one_frame_per_output_cell_and_the_documented_size(tmp_path, args):
    target = tmp_path / "slide.gif"
    result = run(*args, "--gif", str(target))
    assert result.exit_code == 0, result.stderr
    record = run_json(*args)
    out_rows, out_cols = np.shape(record["output"])
    grid_rows, grid_cols = np.shape(record["padded"])
    gif = _open_gif(target)
    assert gif.n_frames == out_rows * out_cols
    # documented layout: cell = clamp(480 // (Wp + 1 + W'), 6, 40), height-limited too
    cell = max(6, min(40, 480 // (grid_cols + 1 + out_cols), 480 // max(grid_rows, out_rows)))
    margin = max(4, cell // 2)
    assert gif.size == (2 * margin + (grid_cols + 1 + out_cols) * cell,
                        TITLE_HEIGHT + 2 * margin + max(grid_rows, out_rows) * cell)
    assert f"{out_rows * out_cols} frame" in result.stderr


def test_gif_frame_cap_samples_cells(tmp_path):
    target = tmp_path / "big.gif"
    side = 24  # 24×24 with same padding → 576 output cells > MAX_FRAMES
    text = ";".join(",".join(str((r * side + c) % 7) for c in range(side)) for r in range(side))
    result = run("--input", text, "-k", "box:size=3", "-p", "same", "--json", "--gif", str(target))
    assert result.exit_code == 0, result.stderr
    gif = _open_gif(target)
    assert gif.n_frames == MAX_FRAMES
    record = explain_conv2d(np.zeros((side, side)), np.ones((3, 3)), padding="same")
    assert gif.size == frame_size(record)
    small = tmp_path / "small.gif"
    assert run("--input", "1,2,3;4,5,6;7,8,9", "-p", "1", "--gif", str(small),
               "--max-frames", "4").exit_code == 0
    assert _open_gif(small).n_frames == 4


def test_frame_cells_sampling():
    assert frame_cells(9, 400) == list(range(9))
    picked = frame_cells(1000, 400)
    assert len(picked) == 400 and picked[0] == 0 and picked[-1] == 999
    assert (np.diff(picked) > 0).all()
    assert frame_cells(401, 400)[-1] == 400


def test_gif_refuses_to_overwrite_without_force(tmp_path):
    target = tmp_path / "slide.gif"
    target.write_bytes(b"keep")
    result = run("--input", "1,2;3,4", "-k", "1", "--gif", str(target))
    assert result.exit_code == 1 and target.read_bytes() == b"keep"
    assert run("--input", "1,2;3,4", "-k", "1", "--gif", str(target), "--force").exit_code == 0
    assert _open_gif(target).n_frames == 4


def test_explain_functions_reject_bad_cells():
    from convcli.errors import ShapeError

    with pytest.raises(ShapeError, match="outside"):
        explain_conv2d(np.ones((3, 3)), np.ones((2, 2)), at=(2, 0))
    with pytest.raises(ShapeError, match="outside"):
        explain_conv_transpose2d(np.ones((2, 2)), np.ones((2, 2)), at=(0, -1))
