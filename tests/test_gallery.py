"""The README gallery: the script runs on a small image, and the committed images are its output set."""

from __future__ import annotations

import runpy
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from convcli.montage import montage_layout

ROOT = Path(__file__).resolve().parent.parent
SCRIPT = ROOT / "scripts" / "make_gallery.py"
GALLERY_DIR = ROOT / "docs" / "gallery"


def gallery_module() -> dict:
    return runpy.run_path(str(SCRIPT))


def expected_names(module: dict) -> list[str]:
    return ["input.png", *(entry[0] for entry in module["GALLERY"]), module["MONTAGE"],
            module["EXPLAIN_GIF"], module["LAYER_FILE"], module["LAYER_FILTERS"], module["LAYER_MAPS"]]


def picture_names(module: dict) -> list[str]:
    return [name for name in expected_names(module) if name != module["LAYER_FILE"]]


def apply_registered() -> bool:
    from convcli.cli import app

    return any(command.name == "apply" for command in app.registered_commands)


@pytest.mark.skipif(not apply_registered(), reason="`convcli apply` is not registered yet")
def test_script_runs_on_a_small_image(tmp_path):
    yy, xx = np.mgrid[0:40, 0:90]
    picture = np.stack([xx * 2.8, yy * 6.0, ((xx // 10 + yy // 10) % 2) * 255.0], axis=2)
    source = tmp_path / "small.png"
    Image.fromarray(picture.astype(np.uint8)).save(source)
    out = tmp_path / "gallery"
    result = subprocess.run(
        [sys.executable, str(SCRIPT), "--input", str(source), "--out", str(out), "--width", "64"],
        capture_output=True, text=True, check=False, timeout=300,
    )
    assert result.returncode == 0, result.stderr
    module = gallery_module()
    names = expected_names(module)
    assert sorted(p.name for p in out.iterdir()) == sorted(names)
    assert result.stdout.split() == [str(out / name) for name in names]

    def size(name: str) -> tuple[int, int]:
        with Image.open(out / name) as picture:
            return picture.size

    sizes = {name: size(name) for name in picture_names(module)}
    full = (64, round(40 * 64 / 90))  # (width, height), resized with the aspect kept
    for name in ("input.png", "sobel-magnitude.png", "gaussian.png", "kirsch-max.png",
                 "laplacian.png", "dilation-2.png"):
        assert sizes[name] == full, name
    half = ((full[0] + 1) // 2, (full[1] + 1) // 2)  # same padding, stride 2: ceil(H / 2)
    assert sizes["stride-2.png"] == half
    assert sizes["transposed-upsample.png"] == (2 * half[0], 2 * half[1])  # (H−1)·2 − 2 + 4
    layout = montage_layout(1 + 8, (full[1], full[0]), tile_max=64 * 3 // 8)
    assert sizes["montage.png"] == (layout.width, layout.height)
    with Image.open(out / module["EXPLAIN_GIF"]) as gif:
        assert gif.n_frames == 9  # 5×5 input, 3×3 kernel, stride 2, padding 1 → 3×3 output
    # the stand-in first layer: 16 filters of 7×7×3 (RGB tiles ×9), and its 16 maps beside the input
    from safetensors.numpy import load_file

    assert load_file(out / module["LAYER_FILE"])[module["LAYER_TENSOR"]].shape == (16, 3, 7, 7)
    filters = montage_layout(16, (7, 7), tile_max=64)
    assert sizes[module["LAYER_FILTERS"]] == (filters.width, filters.height)
    maps = montage_layout(1 + 16, (full[1], full[0]), tile_max=64 * 3 // 8)
    assert sizes[module["LAYER_MAPS"]] == (maps.width, maps.height)


def test_committed_gallery_is_the_scripts_output_set():
    module = gallery_module()
    names = expected_names(module)
    assert sorted(p.name for p in GALLERY_DIR.iterdir()) == sorted(names)
    def width(name: str) -> int:
        with Image.open(GALLERY_DIR / name) as picture:
            return picture.size[0]

    widths = {name: width(name) for name in picture_names(module)}
    assert widths["input.png"] == module["DEFAULT_WIDTH"]
    assert max(w for n, w in widths.items() if n != module["EXPLAIN_GIF"]) <= 2 * module["DEFAULT_WIDTH"]
