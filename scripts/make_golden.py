"""Make the golden images of ``tests/test_golden.py`` from an independent reference.

Each case is a ``convcli apply`` command line on a bundled sample image and
the same computation written out with ``scipy.signal.correlate2d`` in
float64: the border by ``numpy.pad`` (SPEC.md's table), ``same`` padding by
its formula (extra pixel bottom/right), the stride by slicing, the kernel
weights typed in from SPEC.md (or the documented generator formula), and the
display mapping by the formula of ``--scale`` (``clip``: round and clip to
``[0, M]``; ``abs``: ``|x|`` then clip; ``offset:V``: ``x + V`` then clip;
``minmax``: ``(x − min)/(max − min)·M``). None of convcli's code computes a
golden image, so the golden test compares convcli with scipy, not with an
earlier convcli.

Usage::

    python scripts/make_golden.py            # (re)write tests/golden/*.png
    python scripts/make_golden.py --check    # exit 1 if a stored file differs
"""

from __future__ import annotations

import argparse
import math
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image
from scipy.signal import correlate2d

ROOT = Path(__file__).resolve().parent.parent
SAMPLES = ROOT / "sample_images"
GOLDEN_DIR = ROOT / "tests" / "golden"

SOBEL_X = np.array([[-1, 0, 1], [-2, 0, 2], [-1, 0, 1]], dtype=np.float64)
SOBEL_Y = SOBEL_X.T.copy()
LAPLACIAN_4 = np.array([[0, 1, 0], [1, -4, 1], [0, 1, 0]], dtype=np.float64)
SHARPEN = np.array([[0, -1, 0], [-1, 5, -1], [0, -1, 0]], dtype=np.float64)
EMBOSS = np.array([[-2, -1, 0], [-1, 0, 1], [0, 1, 2]], dtype=np.float64)
KIRSCH_N = np.array([[5, 5, 5], [-3, 0, -3], [-3, -3, -3]], dtype=np.float64)
#: the outer ring of a 3×3 kernel, clockwise from the top-left corner
RING = [(0, 0), (0, 1), (0, 2), (1, 2), (2, 2), (2, 1), (2, 0), (1, 0)]


def kirsch_bank() -> list[np.ndarray]:
    """The 8 Kirsch kernels: kirsch-n, then the ring turned one step clockwise each time."""
    values = [KIRSCH_N[r, c] for r, c in RING]
    bank = []
    for step in range(8):
        kernel = np.zeros((3, 3))
        for index, (r, c) in enumerate(RING):
            kernel[r, c] = values[(index - step) % 8]
        bank.append(kernel)
    return bank


def gaussian(sigma: float) -> np.ndarray:
    """SPEC.md's gaussian: size ``2·ceil(3σ) + 1``, sampled, normalised to sum 1."""
    size = 2 * math.ceil(3 * sigma) + 1
    offsets = np.arange(size) - (size - 1) / 2
    profile = np.exp(-(offsets**2) / (2 * sigma**2))
    kernel = np.outer(profile, profile)
    return kernel / kernel.sum()


def same_pads(size: int, k_eff: int, stride: int) -> tuple[int, int]:
    """SPEC.md's ``same``: out = ceil(n / s), the odd pixel at the bottom/right."""
    out = -(-size // stride)
    total = max((out - 1) * stride + k_eff - size, 0)
    return total // 2, total - total // 2


def correlate(plane: np.ndarray, kernel: np.ndarray, *, border: str = "constant", stride: int = 1,
              dilation: int = 1) -> np.ndarray:
    """``same`` cross-correlation of one float64 plane: numpy.pad, correlate2d valid, slicing."""
    if dilation > 1:
        dilated = np.zeros(((kernel.shape[0] - 1) * dilation + 1, (kernel.shape[1] - 1) * dilation + 1))
        dilated[::dilation, ::dilation] = kernel
        kernel = dilated
    pads = [same_pads(n, k, stride) for n, k in zip(plane.shape, kernel.shape)]
    padded = np.pad(plane, pads, mode=border)
    return correlate2d(padded, kernel, mode="valid")[::stride, ::stride]


def per_channel(image: np.ndarray, kernel: np.ndarray, **options) -> np.ndarray:
    """Depthwise: the kernel on every channel, ``(H', W', C)``."""
    return np.stack([correlate(image[..., c], kernel, **options) for c in range(image.shape[2])], axis=2)


def luminance(image: np.ndarray) -> np.ndarray:
    """SPEC.md's gray: ``0.299 R + 0.587 G + 0.114 B`` in float, ``(H, W, 1)``."""
    return (image[..., :3] @ np.array([0.299, 0.587, 0.114]))[..., None]


def clip(values: np.ndarray, top: int = 255) -> np.ndarray:
    """``--scale clip``: nearest integer, clipped to ``[0, top]``."""
    return np.clip(np.rint(values), 0, top)


def minmax(values: np.ndarray, top: int = 255) -> np.ndarray:
    """``--scale minmax``: ``(x − min) / (max − min) · top``, rounded."""
    low, high = values.min(), values.max()
    return np.rint((values - low) / (high - low) * top)


def read(name: str) -> np.ndarray:
    """A sample image as float64 ``(H, W, C)`` in its native range."""
    with Image.open(SAMPLES / name) as picture:
        array = np.asarray(picture).astype(np.float64)
    return array[..., None] if array.ndim == 2 else array


@dataclass(frozen=True)
class GoldenCase:
    """One golden image: the command's options and the reference that makes it."""

    name: str
    source: str
    options: tuple[str, ...]
    reference: Callable[[], np.ndarray]
    bits: int = 8


def _sobel_magnitude() -> np.ndarray:
    gray = luminance(read("chelsea.png"))
    gx, gy = per_channel(gray, SOBEL_X), per_channel(gray, SOBEL_Y)
    return clip(np.sqrt(gx**2 + gy**2))


def _kirsch_max() -> np.ndarray:
    camera = read("camera.png")
    return minmax(np.max([per_channel(camera, k, border="edge") for k in kirsch_bank()], axis=0))


CASES = [
    GoldenCase("chelsea.gaussian.png", "chelsea.png", ("-k", "gaussian:sigma=1.5", "--border", "zero"),
               lambda: clip(per_channel(read("chelsea.png"), gaussian(1.5)))),
    GoldenCase("camera.sobel-x-abs.png", "camera.png",
               ("-k", "sobel-x", "--scale", "abs", "--border", "zero"),
               lambda: clip(np.abs(per_channel(read("camera.png"), SOBEL_X)))),
    GoldenCase("camera.laplacian-reflect.png", "camera.png",
               ("-k", "laplacian", "--border", "reflect", "--scale", "offset:128"),
               lambda: clip(per_channel(read("camera.png"), LAPLACIAN_4, border="reflect") + 128)),
    GoldenCase("astronaut.emboss-replicate.png", "astronaut.png", ("-k", "emboss", "--border", "replicate"),
               lambda: clip(per_channel(read("astronaut.png"), EMBOSS, border="edge") + 128)),
    GoldenCase("zoneplate.box5-stride2.png", "zoneplate.png",
               ("-k", "box:size=5", "-s", "2", "--border", "zero"),
               lambda: clip(per_channel(read("zoneplate.png"), np.full((5, 5), 1 / 25), stride=2))),
    GoldenCase("checkerboard.sharpen-d2-wrap.png", "checkerboard.png",
               ("-k", "sharpen", "-d", "2", "--border", "wrap", "--scale", "clip"),
               lambda: clip(per_channel(read("checkerboard.png"), SHARPEN, border="wrap", dilation=2))),
    GoldenCase("gradient16.gaussian-symmetric.png", "gradient16.png",
               ("-k", "gaussian:sigma=1", "--border", "symmetric"),
               lambda: clip(per_channel(read("gradient16.png"), gaussian(1.0), border="symmetric"), 65535),
               bits=16),
    GoldenCase("chelsea.sobel-magnitude.png", "chelsea.png",
               ("-k", "sobel", "--channels", "gray", "--reduce", "magnitude", "--scale", "clip",
                "--border", "zero"),
               _sobel_magnitude),
    GoldenCase("camera.kirsch-max.png", "camera.png",
               ("-k", "kirsch", "--reduce", "max", "--border", "replicate", "--scale", "minmax"),
               _kirsch_max),
]
"""The golden cases: file name, sample image, ``convcli apply`` options, reference."""


def golden_pixels(case: GoldenCase) -> np.ndarray:
    """The reference as an integer ``(H', W')`` or ``(H', W', C)`` array for PNG."""
    pixels = case.reference()
    pixels = pixels[..., 0] if pixels.shape[2] == 1 else pixels
    return pixels.astype(np.uint16 if case.bits == 16 else np.uint8)


def main(argv: list[str] | None = None) -> int:
    """Write (or with ``--check`` compare) every golden image; returns the exit status."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="compare instead of writing")
    args = parser.parse_args(argv)
    GOLDEN_DIR.mkdir(parents=True, exist_ok=True)
    status = 0
    for case in CASES:
        pixels = golden_pixels(case)
        path = GOLDEN_DIR / case.name
        if args.check:
            with Image.open(path) as stored:
                same = np.array_equal(np.asarray(stored), pixels)
            print(f"{'ok     ' if same else 'DIFFERS'} {path.relative_to(ROOT)}")
            status |= not same
        else:
            Image.fromarray(pixels).save(path, optimize=True)
            print(f"wrote {path.relative_to(ROOT)}  convcli apply {case.source} {' '.join(case.options)}")
    return status


if __name__ == "__main__":
    sys.exit(main())
