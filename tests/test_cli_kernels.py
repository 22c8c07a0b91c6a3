"""``convcli kernels list|show`` through typer's CliRunner (and one real subprocess)."""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pytest
from scipy.signal import windows
from typer.testing import CliRunner

from convcli.cli import app

runner = CliRunner()


def invoke(*args: str):
    return runner.invoke(app, ["kernels", *args])


def test_help_teaches_with_examples():
    result = invoke("--help")
    assert result.exit_code == 0
    assert "convcli kernels show sobel" in result.output
    for command in ("list", "show"):
        sub = invoke(command, "--help")
        assert sub.exit_code == 0 and "Examples" in sub.output


def test_list_piped_is_one_tab_separated_line_per_kernel():
    result = invoke("list")  # CliRunner's stdout is not a terminal
    assert result.exit_code == 0, result.output
    rows = {line.split("\t")[0]: line.split("\t") for line in result.stdout.splitlines()}
    assert all(len(row) == 4 for row in rows.values())
    for name in ("sobel", "scharr", "prewitt", "roberts", "laplacian-8", "kirsch", "sharpen",
                 "emboss", "identity", "box", "gaussian", "log", "dog", "gabor"):
        assert name in rows
    assert rows["gaussian"][1] == "7×7" and "sigma=1" in rows["gaussian"][2]
    assert rows["gabor"][2].startswith("theta=0, lambda=8") and rows["gabor"][3].startswith("Gabor")


def test_list_json_is_one_line_with_numbers_as_numbers():
    result = invoke("list", "--json")
    assert result.exit_code == 0
    assert result.stdout.count("\n") == 1
    rows = {row["name"]: row for row in json.loads(result.stdout)}
    assert rows["kirsch"]["count"] == 8 and rows["kirsch"]["size"] == [3, 3]
    assert rows["sobel"]["count"] == 2 and rows["sobel"]["params"] == {}
    assert rows["roberts"]["size"] == [2, 2]
    assert rows["gaussian"]["params"] == {"sigma": 1, "size": "auto"}
    assert set(rows["gaussian"]) == {"name", "size", "count", "description", "params"}


def _read_back(cells, factor: str) -> np.ndarray:
    exponent = 0
    if factor:
        exponent = int(factor.removeprefix("×10").translate(str.maketrans("⁻⁰¹²³⁴⁵⁶⁷⁸⁹", "-0123456789")))
    return np.array([[float(c) for c in row] for row in cells]) * 10.0**exponent


@pytest.mark.parametrize("seed", range(30))
def test_weight_texts_read_back_close_to_the_weights(seed):
    from convcli.cli.kernels_cmd import weight_texts

    rng = np.random.default_rng(seed)
    scale = 10.0 ** rng.integers(-9, 8)
    plane = rng.normal(size=(rng.integers(1, 6), rng.integers(1, 6))) * scale
    if seed % 3 == 0:
        plane[0, 0] *= 1e-6  # a wide dynamic range
    cells, factor = weight_texts(plane)
    back = _read_back(cells, factor)
    largest = np.abs(plane).max()
    # every printed weight is within half a unit of its last digit: never 2.34 for 2.34e-7
    np.testing.assert_allclose(back, plane, rtol=1e-3, atol=largest * 5e-4)
    assert all(float(cell) == 0 or np.sign(float(cell)) == np.sign(value)
               for row, values in zip(cells, plane) for cell, value in zip(row, values))


def test_show_issue_gaussian_first_row_keeps_its_exponent():
    result = invoke("show", "gaussian:sigma=1.4")
    first = result.stdout.splitlines()[1].split()
    assert first[:3] == ["2.345e-07", "2.329e-06", "1.389e-05"]


def test_narrow_terminal_splits_columns_into_blocks_not_digits():
    from convcli.cli.kernels_cmd import grid_lines, weight_texts

    plane = np.arange(1, 31, dtype=float).reshape(2, 15) / 7
    cells, _factor = weight_texts(plane)
    lines = grid_lines(cells, width=40)
    assert all(len(line) <= 40 for line in lines)
    assert lines[0] == "columns 0–4:"  # 5-wide cells: 1 + 5 + 4 · (2 + 5) = 34; a sixth makes 41 > 40
    shown = [line.split() for line in lines if not line.startswith("columns")]
    assert sorted(cell for row in shown for cell in row) == sorted(c for row in cells for c in row)


def test_show_sobel_grid_sum_and_factors():
    result = invoke("show", "sobel")
    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    assert any(line.split() == ["-1", "0", "1"] for line in lines)
    assert any(line.split() == ["-2", "0", "2"] for line in lines)
    assert any(line.split() == ["1", "2", "1"] for line in lines)  # sobel-y bottom row
    assert result.output.count("sum: 0") == 2
    assert "column [1 2 1] ⊗ row [-1 0 1]" in result.output


def test_show_not_separable_and_display_hint():
    assert "separable: no" in invoke("show", "laplacian").output
    emboss = invoke("show", "emboss").output
    assert "display hint: offset:128" in emboss and "sum: 0" in emboss


def test_show_json_weights_match_scipy_gaussian():
    result = invoke("show", "gaussian:sigma=1.5,size=7", "--json")
    assert result.exit_code == 0, result.output
    payload = json.loads(result.stdout)
    assert payload["name"] == "gaussian-s1p5-n7" and payload["count"] == 1
    (kernel,) = payload["kernels"]
    window = windows.gaussian(7, std=1.5)
    reference = np.outer(window, window) / np.outer(window, window).sum()
    np.testing.assert_allclose(kernel["weights"], reference, rtol=1e-12)
    assert kernel["sum"] == pytest.approx(1.0)
    assert kernel["separable"] is True
    np.testing.assert_allclose(np.outer(kernel["factors"]["column"], kernel["factors"]["row"]),
                               reference, atol=1e-12)


def test_show_inline_and_imagemagick():
    result = invoke("show", "1,2,1;2,4,2;1,2,1")
    assert result.exit_code == 0
    assert "sum: 16" in result.output
    assert "column [1 2 1] ⊗ row [1 2 1]" in result.output
    result = invoke("show", "3x3: 0,1,0,1,-4,1,0,1,0", "--json")
    assert json.loads(result.stdout)["kernels"][0]["weights"] == [[0, 1, 0], [1, -4, 1], [0, 1, 0]]


def test_show_files(tmp_path):
    path = tmp_path / "colour.npy"
    np.save(path, np.arange(2 * 2 * 2 * 3, dtype=float).reshape(2, 2, 2, 3))
    result = invoke("show", str(path))
    assert result.exit_code == 0, result.output
    assert "colour-0" in result.output and "colour-1" in result.output
    assert result.output.count("channel 2:") == 2
    text = tmp_path / "k.txt"
    text.write_text("1 0\n0 -1\n")
    payload = json.loads(invoke("show", str(text), "--json").stdout)
    assert payload["kernels"][0]["weights"] == [[1, 0], [0, -1]]
    assert payload["kernels"][0]["separable"] is False


@pytest.mark.parametrize(
    ("spec", "fragment"),
    [
        ("sobl", "no kernel 'sobl'; did you mean 'sobel'? (convcli kernels list)"),
        ("gaussian:sigma=-1", "`sigma` must be a positive number"),
        ("box:size=0", "`size` must be a positive integer"),
        ("1,2;3", "ragged rows: row 2"),
        ("missing.npy", "kernel file not found: missing.npy"),
    ],
)
def test_show_errors_are_one_line_exit_1(spec, fragment):
    result = invoke("show", spec)
    assert result.exit_code == 1
    assert result.stdout == ""
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1
    assert lines[0].startswith("convcli: error: ") and fragment in lines[0]


def test_show_without_argument_is_usage_error():
    assert invoke("show").exit_code == 2


def test_importing_the_cli_stays_light():
    code = (
        "import sys; import convcli.cli.kernels_cmd; "
        "print(sorted(m for m in ('numpy', 'scipy', 'PIL', 'rich') if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


def test_real_subprocess_show_unknown_name():
    out = subprocess.run([sys.executable, "-m", "convcli", "kernels", "show", "kirsh"],
                         capture_output=True, text=True)
    assert out.returncode == 1
    assert out.stderr.strip() == (
        "convcli: error: no kernel 'kirsh'; did you mean 'kirsch'? (convcli kernels list)"
    )
    assert "Traceback" not in out.stderr
