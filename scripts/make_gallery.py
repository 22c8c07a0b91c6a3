"""Build the README gallery in ``docs/gallery/`` by running ``convcli apply``.

Usage::

    python scripts/make_gallery.py                       # sample_images/chelsea.png → docs/gallery
    python scripts/make_gallery.py --input photo.png --out /tmp/gallery --width 128

Every picture except the input copy and the contact sheet is written by
``python -m convcli apply …`` in a subprocess, with the exact arguments listed
in :data:`GALLERY` (the README shows the same commands), so the gallery shows
what the command line does:

- ``input.png``: the photo, resized to ``--width`` pixels wide (Lanczos), RGB;
- one image per :data:`GALLERY` entry, from ``input.png`` (or from the named
  earlier result: the transposed-convolution upsample enlarges the stride-2
  image back to full size with a bilinear kernel);
- ``montage.png``: the eight Kirsch compass maps (``apply -f npy``), laid out
  by :func:`convcli.montage.make_montage` next to the input with
  ``tile_max = --width·3/8`` (``apply --montage`` makes the same sheet with
  256-pixel tiles);
- ``explain.gif``: ``convcli explain … --gif`` on a 5×5 ramp (:data:`EXPLAIN_ARGS`),
  the window of a stride-2, padding-1 Sobel sliding over the padded input.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
DEFAULT_INPUT = ROOT / "sample_images" / "chelsea.png"
DEFAULT_OUT = ROOT / "docs" / "gallery"
DEFAULT_WIDTH = 256
#: Bilinear ×2 upsampling as a transposed convolution (FCN's kernel): the outer
#: product of [1, 3, 3, 1]/4 with itself, stride 2, padding 1 → exactly 2·H.
BILINEAR_X2 = ";".join(
    ",".join(f"{a * b / 16:g}" for b in (1, 3, 3, 1)) for a in (1, 3, 3, 1)
)

#: (file name, source image, ``convcli apply`` arguments, caption)
GALLERY: tuple[tuple[str, str, tuple[str, ...], str], ...] = (
    ("sobel-magnitude.png", "input.png",
     ("-k", "sobel", "--channels", "gray", "--reduce", "magnitude"), "Sobel magnitude"),
    ("gaussian.png", "input.png", ("-k", "gaussian:sigma=2"), "Gaussian blur, σ = 2"),
    ("kirsch-max.png", "input.png",
     ("-k", "kirsch", "--channels", "gray", "--reduce", "max", "--scale", "minmax"),
     "Kirsch compass, max of 8"),
    ("laplacian.png", "input.png",
     ("-k", "laplacian-4", "--channels", "gray", "--scale", "offset:128"), "Laplacian (0 = mid-grey)"),
    ("stride-2.png", "input.png", ("-k", "gaussian:sigma=1", "-s", "2"), "Gaussian, stride 2"),
    ("dilation-2.png", "input.png",
     ("-k", "sobel", "--channels", "gray", "--reduce", "magnitude", "-d", "2"),
     "Sobel magnitude, dilation 2"),
    ("transposed-upsample.png", "stride-2.png",
     ("-k", BILINEAR_X2, "--transpose", "-s", "2", "-p", "1"),
     "Transposed convolution ×2 (bilinear 4×4 kernel) of the stride-2 image"),
)
MONTAGE = "montage.png"
MONTAGE_ARGS = ("-k", "kirsch", "--channels", "gray")
EXPLAIN_GIF = "explain.gif"
#: ``convcli explain`` arguments of the animation: a 5×5 ramp, sobel-x, stride 2, padding 1
#: with zeros (the README's example: the padding shows as zeros).
EXPLAIN_ARGS = ("--input", "0,1,2,3,4;5,6,7,8,9;10,11,12,13,14;15,16,17,18,19;20,21,22,23,24",
                "-k", "sobel-x", "-s", "2", "-p", "1", "--border", "zero")


def convcli(*args: str) -> subprocess.CompletedProcess:
    """Run ``python -m convcli ARGS``; raise with its stderr when it fails."""
    command = [sys.executable, "-m", "convcli", *args]
    result = subprocess.run(command, capture_output=True, text=True, cwd=ROOT, check=False)
    if result.returncode != 0:
        raise SystemExit(f"failed: {' '.join(command)}\n{result.stderr.strip()}")
    return result


def write_input(source: Path, target: Path, width: int) -> None:
    """``source`` as RGB, resized to ``width`` pixels wide (never enlarged)."""
    from PIL import Image

    with Image.open(source) as picture:
        picture = picture.convert("RGB")
        if picture.width > width:
            height = max(1, round(picture.height * width / picture.width))
            picture = picture.resize((width, height), Image.Resampling.LANCZOS)
        picture.save(target, optimize=True)


def write_montage(out: Path, width: int) -> None:
    """Kirsch maps from ``apply -f npy`` laid out by :func:`convcli.montage.make_montage`."""
    import numpy as np
    from PIL import Image

    from convcli.montage import make_montage

    with tempfile.TemporaryDirectory() as scratch:
        maps_path = Path(scratch) / "kirsch.npy"
        result = convcli("apply", str(out / "input.png"), *MONTAGE_ARGS, "-f", "npy",
                         "-o", str(maps_path), "--json", "-q")
        maps = np.load(maps_path)
    labels = [entry["name"] for entry in json.loads(result.stdout)["results"][0]["maps"]]
    image = np.asarray(Image.open(out / "input.png"))
    sheet = make_montage(maps, labels, input_image=image, tile_max=max(16, width * 3 // 8))
    Image.fromarray(sheet).save(out / MONTAGE, optimize=True)


def make_gallery(source: Path, out: Path, width: int = DEFAULT_WIDTH) -> list[Path]:
    """Write every gallery image into ``out``; returns their paths."""
    out.mkdir(parents=True, exist_ok=True)
    write_input(source, out / "input.png", width)
    written = [out / "input.png"]
    for name, origin, args, _caption in GALLERY:
        convcli("apply", str(out / origin), *args, "-o", str(out / name), "--force", "-q")
        written.append(out / name)
    write_montage(out, width)
    written.append(out / MONTAGE)
    convcli("explain", *EXPLAIN_ARGS, "--gif", str(out / EXPLAIN_GIF), "--force", "--json")
    written.append(out / EXPLAIN_GIF)
    return written


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--input", type=Path, default=DEFAULT_INPUT, help="the photo (%(default)s)")
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT, help="output directory (%(default)s)")
    parser.add_argument("--width", type=int, default=DEFAULT_WIDTH, help="input width in px (%(default)s)")
    options = parser.parse_args(argv)
    for path in make_gallery(options.input, options.out, options.width):
        print(path)


if __name__ == "__main__":
    main()
