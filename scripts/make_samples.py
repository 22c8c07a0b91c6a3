"""Build ``sample_images/``: synthetic patterns, and small copies of free photos.

Usage::

    python scripts/make_samples.py                 # synthetic patterns only
    python scripts/make_samples.py --photos DIR    # also photos from skimage/data in DIR

The synthetic patterns are deterministic (no randomness, fixed sizes), so
running the script again reproduces the committed files byte for byte:

- ``checkerboard.png``: 256×256 gray, 32-pixel squares of 0 and 255;
- ``gradient.png``: 256×256 RGB, red rising left→right, green top→bottom,
  blue constant 128;
- ``gradient16.png``: 256×256 16-bit gray, 0..65535 rising left→right;
- ``zoneplate.png``: 256×256 gray, ``128 + 127·cos(π·r²/256)`` with r the
  distance from the centre in pixels (frequency rising linearly outwards,
  aliasing at the corners: a test of filters and strides).

The photographs come from the scikit-image wheel (``pip download --no-deps
scikit-image``, unzip, pass ``.../skimage/data``); their licences are listed
in ``sample_images/README.md``. They are resized to 320 pixels wide with
Pillow's Lanczos filter and saved as PNG.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
from PIL import Image

SAMPLES = Path(__file__).resolve().parent.parent / "sample_images"
SIZE = 256
PHOTO_WIDTH = 320
PHOTOS = {  # output name → file in skimage/data
    "chelsea": "chelsea.png",
    "coffee": "coffee.png",
    "astronaut": "astronaut.png",
    "rocket": "rocket.jpg",
    "camera": "camera.png",
}


def checkerboard(size: int = SIZE, square: int = 32) -> np.ndarray:
    """(size, size) uint8: squares of 0 and 255, white at the top-left."""
    rows, cols = np.indices((size, size))
    return np.where((rows // square + cols // square) % 2 == 0, 255, 0).astype(np.uint8)


def gradient(size: int = SIZE) -> np.ndarray:
    """(size, size, 3) uint8: R = column ramp, G = row ramp, B = 128."""
    ramp = np.round(np.linspace(0, 255, size)).astype(np.uint8)
    image = np.empty((size, size, 3), np.uint8)
    image[:, :, 0] = ramp[np.newaxis, :]
    image[:, :, 1] = ramp[:, np.newaxis]
    image[:, :, 2] = 128
    return image


def gradient16(size: int = SIZE) -> np.ndarray:
    """(size, size) uint16: 0..65535 rising left to right."""
    ramp = np.round(np.linspace(0, 65535, size)).astype(np.uint16)
    return np.repeat(ramp[np.newaxis, :], size, axis=0)


def zone_plate(size: int = SIZE) -> np.ndarray:
    """(size, size) uint8: 128 + 127·cos(π·r²/size), r from the centre."""
    centre = (size - 1) / 2
    rows, cols = np.indices((size, size), dtype=np.float64)
    radius2 = (rows - centre) ** 2 + (cols - centre) ** 2
    return np.round(128 + 127 * np.cos(np.pi * radius2 / size)).astype(np.uint8)


def _save(pixels: np.ndarray, name: str) -> None:
    path = SAMPLES / name
    Image.fromarray(pixels).save(path, format="PNG", optimize=True)
    print(f"wrote {path.relative_to(SAMPLES.parent)} {pixels.shape} {pixels.dtype}")


def make_patterns() -> None:
    _save(checkerboard(), "checkerboard.png")
    _save(gradient(), "gradient.png")
    _save(gradient16(), "gradient16.png")
    _save(zone_plate(), "zoneplate.png")


def make_photos(data_dir: Path) -> None:
    for name, file_name in PHOTOS.items():
        with Image.open(data_dir / file_name) as photo:
            photo = photo.convert("L" if photo.mode in ("L", "I;16") else "RGB")
            height = round(photo.height * PHOTO_WIDTH / photo.width)
            small = photo.resize((PHOTO_WIDTH, height), Image.Resampling.LANCZOS)
        _save(np.asarray(small), f"{name}.png")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--photos", type=Path, help="skimage/data directory of an unpacked wheel")
    args = parser.parse_args()
    SAMPLES.mkdir(exist_ok=True)
    make_patterns()
    if args.photos:
        make_photos(args.photos)


if __name__ == "__main__":
    main()
