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


def test_list_table_names_every_required_kernel():
    result = invoke("list")
    assert result.exit_code == 0, result.output
    for name in ("sobel", "scharr", "prewitt", "roberts", "laplacian-8", "kirsch", "sharpen",
                 "emboss", "identity", "box", "gaussian", "log", "dog", "gabor"):
        assert f" {name} " in result.output
    assert "sigma=1" in result.output  # gaussian's parameters


def test_list_json():
    result = invoke("list", "--json")
    assert result.exit_code == 0
    rows = {row["name"]: row for row in json.loads(result.stdout)}
    assert rows["kirsch"]["count"] == 8 and rows["kirsch"]["size"] == "3×3"
    assert rows["sobel"]["count"] == 2 and rows["sobel"]["params"] == ""
    assert rows["roberts"]["size"] == "2×2"
    assert set(rows["gaussian"]) == {"name", "size", "count", "description", "params"}


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
    assert "k0" in result.output and "sum: 16" in result.output
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
