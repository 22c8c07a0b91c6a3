"""A reader that closed its end (``convcli … | head -c0``) gives a quiet exit 1 (issue 14, point 8).

``tests/conftest.py`` removes ``PYTHONUNBUFFERED`` from the environment, so
these subprocesses buffer stdout as they do for users: a command that does
not flush its output inside the command would leave the write to interpreter
exit, which prints "Exception ignored … BrokenPipeError" and exits 120.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def test_conftest_removed_pythonunbuffered():
    assert "PYTHONUNBUFFERED" not in os.environ


@pytest.mark.parametrize("args", [
    ["shape", "224", "-k", "3", "--json"],
    ["shape", "224", "-k", "3"],
    ["shape", "224", "--layer", "conv:k=3,s=2", "--layer", "pool:k=2"],
    ["explain", "--input", "1,2,3;4,5,6;7,8,9", "--json"],
    ["kernels", "list", "--json"],
    ["kernels", "list"],
    ["kernels", "show", "gaussian:sigma=2"],
    ["kernels", "show", "sobel", "--json"],
])
def test_closed_reader_is_a_quiet_exit_1(args):
    read_end, write_end = os.pipe()
    os.close(read_end)  # the reader is gone before convcli writes
    try:
        done = subprocess.run([sys.executable, "-m", "convcli", *args], stdout=write_end,
                              stderr=subprocess.PIPE, text=True, timeout=120,
                              env={**os.environ, "PYTHONPATH": str(ROOT)})
    finally:
        os.close(write_end)
    assert done.stderr == ""
    assert done.returncode == 1


@pytest.mark.parametrize("args", [["-o", "-", "-f", "npy"], ["--json", "-q", "-o", "OUT"]])
def test_apply_closed_reader_is_a_quiet_exit_1(args, tmp_path):
    args = [str(tmp_path / "out.png") if arg == "OUT" else arg for arg in args]
    read_end, write_end = os.pipe()
    os.close(read_end)
    try:
        image = str(ROOT / "sample_images" / "camera.png")
        done = subprocess.run([sys.executable, "-m", "convcli", "apply", image, "-k", "box", *args],
                              stdout=write_end, stderr=subprocess.PIPE, text=True, timeout=120,
                              env={**os.environ, "PYTHONPATH": str(ROOT)})
    finally:
        os.close(write_end)
    assert "Exception ignored" not in done.stderr and "Traceback" not in done.stderr
    assert done.returncode == 1
