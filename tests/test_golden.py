"""Golden images: ``convcli apply`` on the bundled samples equals stored scipy-made images.

The golden files in ``tests/golden/`` were written by
``scripts/make_golden.py`` from ``scipy.signal.correlate2d`` in float64 (see
its docstring); a test here recomputes them, so a stale or hand-edited golden
fails too. convcli computes in float32, so a pixel whose exact value lies
within float32 rounding of a .5 boundary may round the other way: at most 1
level of difference, on at most 0.1 % of the pixels, is accepted.
"""

from __future__ import annotations

import runpy
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from typer.testing import CliRunner

from convcli.cli import app

ROOT = Path(__file__).resolve().parent.parent
SCRIPT = runpy.run_path(str(ROOT / "scripts" / "make_golden.py"))
CASES = SCRIPT["CASES"]
MAX_ROUNDING_SHARE = 1e-3


def stored(name: str) -> np.ndarray:
    with Image.open(ROOT / "tests" / "golden" / name) as picture:
        return np.asarray(picture)


def assert_close_to_golden(produced: np.ndarray, golden: np.ndarray) -> None:
    assert produced.shape == golden.shape and produced.dtype == golden.dtype
    difference = np.abs(produced.astype(np.int64) - golden.astype(np.int64))
    assert difference.max() <= 1, f"max difference {difference.max()}"
    assert np.count_nonzero(difference) <= MAX_ROUNDING_SHARE * difference.size


@pytest.mark.parametrize("case", CASES, ids=lambda case: case.name)
def test_golden_file_is_the_scipy_reference(case):
    np.testing.assert_array_equal(stored(case.name), SCRIPT["golden_pixels"](case))


@pytest.mark.parametrize("case", CASES, ids=lambda case: case.name)
def test_convcli_apply_matches_the_golden_image(case, tmp_path):
    output = tmp_path / case.name
    result = CliRunner().invoke(
        app, ["apply", str(ROOT / "sample_images" / case.source), *case.options, "-o", str(output), "-q"]
    )
    assert result.exit_code == 0, result.output
    with Image.open(output) as picture:
        produced = np.asarray(picture)
    assert_close_to_golden(produced, stored(case.name))


def test_a_wrong_pixel_fails_the_comparison():
    golden = stored(CASES[0].name)
    broken = golden.copy()
    broken.flat[0] = (int(broken.flat[0]) + 2) % 256
    with pytest.raises(AssertionError):
        assert_close_to_golden(broken, golden)
