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
  the window of a stride-2, padding-1 Sobel sliding over the padded input;
- ``first-layer.safetensors``: a stand-in for a trained network's first layer
  (no real weights can be downloaded here): 16 filters of 7×7×3 in PyTorch
  layout ``(F, C, kh, kw)`` under ``conv1.weight`` (8 oriented grey Gabors, 2
  grey centre-surround DoGs, 6 colour-opponent DoGs; each of unit L2 norm),
  see :func:`first_layer_weights`;
- ``first-layer-filters.png``: ``convcli kernels show first-layer.safetensors:conv1.weight
  --montage`` (each filter an RGB tile, 0 = mid-grey);
- ``first-layer-maps.png``: the layer applied to ``input.png`` as a network would
  (:data:`LAYER_ARGS`: ImageNet normalisation, padding 3, ReLU; ``-f npy``), its 16
  maps next to the input by :func:`convcli.montage.make_montage`.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import numpy as np

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

#: The stand-in first layer and the two pictures drawn from it.
LAYER_FILE = "first-layer.safetensors"
LAYER_TENSOR = "conv1.weight"
LAYER_FILTERS = "first-layer-filters.png"
LAYER_MAPS = "first-layer-maps.png"
#: ``convcli apply`` arguments after ``-k FILE:TENSOR`` for the feature maps.
LAYER_ARGS = ("-p", "3", "--normalize", "imagenet", "--activation", "relu")


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


def first_layer_weights() -> np.ndarray:
    """16 first-layer-like filters, float32 ``(16, 3, 7, 7)`` in PyTorch layout ``(F, C, kh, kw)``.

    0–7: grey Gabors (``λ = 4``, ``σ = 1.6``, ``γ = 0.8``) at θ = 0°, 45°, 90°, 135°,
    each even (ψ = 0) and odd (ψ = 90°), minus their mean, the same on R, G and B;
    8–9: grey DoG ``gaussian(1) − gaussian(2)``, on- and off-centre; 10–15:
    colour-opponent DoGs, centre ``gaussian(1)`` on one colour minus surround
    ``gaussian(2)`` on its opponent (red/green, green/red, blue/yellow,
    yellow/blue, red/cyan, cyan/red; yellow = (R + G)/2, cyan = (G + B)/2).
    Every filter is scaled to unit L2 norm.
    """
    import numpy as np

    from convcli.kernels import dog, gabor, gaussian

    grey = np.ones(3) / 3
    filters = []
    for theta in (0, 45, 90, 135):
        for psi in (0, 90):
            plane = gabor(theta=theta, lambda_=4, sigma=1.6, gamma=0.8, psi=psi, size=7)
            filters.append(grey[:, None, None] * (plane - plane.mean()))
    centre_surround = dog(1.0, 2.0, size=7)
    filters += [grey[:, None, None] * centre_surround, grey[:, None, None] * -centre_surround]
    red, green, blue = np.eye(3)
    yellow, cyan = (red + green) / 2, (green + blue) / 2
    centre, surround = gaussian(1.0, 7), gaussian(2.0, 7)
    for on, off in ((red, green), (green, red), (blue, yellow), (yellow, blue), (red, cyan), (cyan, red)):
        filters.append(on[:, None, None] * centre - off[:, None, None] * surround)
    bank = np.stack(filters)
    bank /= np.sqrt((bank ** 2).sum(axis=(1, 2, 3), keepdims=True))
    return bank.astype(np.float32)


def write_first_layer(out: Path, width: int) -> list[Path]:
    """The stand-in layer file, its filters (``kernels show --montage``) and its maps."""
    import numpy as np
    from PIL import Image
    from safetensors.numpy import save_file

    from convcli.montage import make_montage

    layer = out / LAYER_FILE
    save_file({LAYER_TENSOR: first_layer_weights()}, str(layer))
    spec = f"{layer}:{LAYER_TENSOR}"
    convcli("kernels", "show", spec, "--montage", str(out / LAYER_FILTERS), "--force")
    with tempfile.TemporaryDirectory() as scratch:
        maps_path = Path(scratch) / "maps.npy"
        result = convcli("apply", str(out / "input.png"), "-k", spec, *LAYER_ARGS, "-f", "npy",
                         "-o", str(maps_path), "--json", "-q")
        maps = np.load(maps_path)
    labels = [entry["name"] for entry in json.loads(result.stdout)["results"][0]["maps"]]
    image = np.asarray(Image.open(out / "input.png"))
    sheet = make_montage(maps, labels, input_image=image, tile_max=max(16, width * 3 // 8))
    Image.fromarray(sheet).save(out / LAYER_MAPS, optimize=True)
    return [layer, out / LAYER_FILTERS, out / LAYER_MAPS]


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
    written += write_first_layer(out, width)
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
