"""``convcli apply``: filter images with a kernel bank and save the feature maps.

The command parses and validates its options and reports; the work is the
library's. It resolves the bank (:func:`convcli.naming.load_labelled_bank`),
builds one :class:`convcli.job.Job` and its per-input factory
(:class:`convcli.jobfactory.JobFactory`: model layers, ``--groups``), and a
:class:`convcli.batch.Batch` (inputs, output checks and names, frames), then
turns each :class:`convcli.batch.Outcome` into ``wrote …`` / ``note: …`` /
``convcli: error: …`` lines on stderr, the rich progress bar, the ``--json``
summary and the exit code. numpy, Pillow and scipy are imported inside the
command only.
"""

from __future__ import annotations

import os
import sys
from enum import StrEnum
from typing import Any

import typer

from convcli.cli import err, write_json
from convcli.cli._complete import complete_border, complete_kernel, complete_scale
from convcli.errors import ConvcliError, OptionError

__all__ = ["apply"]

#: PNG zlib level when --compress-level is not given (convcli.imageio.DEFAULT_PNG_LEVEL; see png.py).
PNG_LEVEL = 4


class Channels(StrEnum):
    """How kernels meet colour channels."""

    depthwise = "depthwise"
    sum = "sum"
    gray = "gray"


class Reduce(StrEnum):
    """How the bank's maps are combined."""

    none = "none"
    magnitude = "magnitude"
    max = "max"
    min = "min"
    sum = "sum"


class Format(StrEnum):
    """Output file formats."""

    png = "png"
    tiff = "tiff"
    jpeg = "jpeg"
    webp = "webp"
    npy = "npy"
    npz = "npz"
    zarr = "zarr"


class Activation(StrEnum):
    """What follows the bias."""

    none = "none"
    relu = "relu"


class Alpha(StrEnum):
    """What happens to an input's alpha channel."""

    keep = "keep"
    drop = "drop"
    channel = "channel"
    filter = "filter"


APPLY_HELP = """Filter images with a kernel bank and save the feature maps.

\b
Examples:
  convcli apply photo.png -k sobel      # photo.sobel-x.png, photo.sobel-y.png
  convcli apply photo.png -k sobel --reduce magnitude -o edges.png
  convcli apply photo.png -k gaussian:sigma=2 -s 2 -o small.png
  convcli apply photo.png -k edge="1,0,-1;2,0,-2;1,0,-1" --channels gray
  convcli apply a.png -k gaussian -f npy -o - | convcli apply - -k sobel
  convcli apply photos/ -k kirsch --reduce max -o out/ --skip-existing
  convcli apply photo.png -k net.safetensors:conv1.weight --normalize imagenet

\b
The operation is CNN convolution (cross-correlation, no flip; --flip for
true convolution), exactly as PyTorch's conv2d / conv_transpose2d. Values
are read in their native range (0-255, 0-65535) and computed in float32;
npy/npz outputs hold the exact float32 (H', W', N) result, image outputs
are mapped to pixels by --scale. Sizes are H×W.

\b
Output names: <stem>.<label><ext>, one file per map (one npy/npz per
input). Every name of a batch is decided before the first write: two
inputs that would share a name both keep their suffix (a.png.sobel-x.png,
a.jpg.sobel-x.png); files this run writes are not taken as its inputs.
Labels: preset names, -k NAME=SPEC, or k-xxxx (a hash) for inline weights.
Files are written atomically; existing files need --force.

\b
A layer of a model file (-k FILE:NAME: .safetensors, .npz, .pt/.pth,
.onnx; list them with `convcli kernels show FILE`) is in PyTorch layout
(F, C/G, kh, kw) and sums over channels in G groups (G = C / (C/G), or
--groups); its bias is added. Its padding defaults to PyTorch's 0 and its
border to zero; an ONNX node also brings its strides, pads, dilations,
group and Conv/ConvTranspose. Options given explicitly win (with a note).
"""


def _parse_bias(text: str) -> Any:
    parts = [p for p in text.replace(";", ",").split(",") if p.strip()]
    try:
        values = [float(p) for p in parts]
    except ValueError:
        raise OptionError(f"`bias` must be a number or comma-separated numbers, got {text!r}") from None
    if not values:
        raise OptionError("`bias` is empty")
    return values[0] if len(values) == 1 else values


def _parse_padding(text: str, parse: Any) -> Any:
    """``--padding`` text → name or pads; a word that is not a padding name lists the names."""
    try:
        return parse(text)
    except ConvcliError:
        if any(ch.isdigit() for ch in text):
            raise
        raise OptionError(
            f"`padding` must be valid, same, full, N, PH,PW or T,B,L,R, got {text!r}"
        ) from None


def _geometry(stride: str, padding: str, border: str | None, dilation: str, channels: str, flip: bool,
              bias: str, output_padding: str, transpose: bool, method: str, dtype: str) -> dict:
    from convcli.borders import parse_border
    from convcli.geometry import parse_int_pair, parse_padding_text

    options: dict[str, Any] = {
        "stride": parse_int_pair(stride, "stride"),
        "padding": _parse_padding(padding, parse_padding_text),
        "dilation": parse_int_pair(dilation, "dilation"),
        "channels": channels,
        "flip": flip,
        "bias": _parse_bias(bias),
        "method": method,
        "dtype": dtype,
    }
    out_pads = parse_int_pair(output_padding, "output-padding", minimum=0)
    if transpose:
        if options["padding"] == "full":
            raise OptionError("`--padding full` is not defined with --transpose (use valid, same or N)")
        options["output_padding"] = out_pads
        if border is not None and border.strip().lower() != "zero":
            raise OptionError("`--border` does not apply to --transpose (its padding crops the output)")
    else:
        if out_pads != (0, 0):
            raise OptionError("`--output-padding` only applies with --transpose")
        options["border"] = parse_border("reflect" if border is None else border)
    if dtype not in ("float32", "float64"):
        raise OptionError(f"`dtype` must be float32 or float64, got {dtype!r}")
    return options


def _say_note(note: str) -> None:
    err(f"note: {note}")


def _report(outcome: Any, quiet: bool) -> None:
    """Announce what one input wrote: its notes, one line per file, the --verify check."""
    if quiet:
        return
    for note in outcome.notes:
        _say_note(note)
    for target, shape in outcome.written:
        if target == "-":
            continue
        rows, cols = shape[:2]
        channels = shape[2] if len(shape) > 2 else 1
        err(f"wrote {target} ({rows}×{cols}, {channels} channel{'s' if channels != 1 else ''})")
    if outcome.verify is not None:
        check = outcome.verify
        name = "stdin" if outcome.source == "-" else outcome.source
        err(f"verify {name}: max |convcli − scipy.signal| = {check['max_abs_difference']:.3g} "
            f"(relative {check['relative']:.3g}) ok")


_LARGE_IMAGE = 1 << 22  # pixels: a single image this big gets a progress display on a terminal


def _wants_progress(sources: list[str], quiet: bool) -> bool:
    if quiet or not sys.stderr.isatty():
        return False
    if len(sources) > 1:
        return True
    if sources == ["-"]:
        return False
    from convcli.pipeline.sources import read_shape

    try:
        rows, cols = read_shape(sources[0])
    except ConvcliError:
        return False  # read_image reports it
    return rows * cols >= _LARGE_IMAGE


def _progress(total: int, enabled: bool) -> Any:
    if not enabled:
        return None
    from rich.console import Console
    from rich.progress import (
        BarColumn,
        MofNCompleteColumn,
        Progress,
        SpinnerColumn,
        TextColumn,
        TimeElapsedColumn,
    )

    progress = Progress(SpinnerColumn(), TextColumn("{task.description}"), BarColumn(),
                        MofNCompleteColumn(), TimeElapsedColumn(),
                        console=Console(stderr=True), transient=True)
    progress.start()
    progress.add_task("convcli apply", total=total)
    return progress


def _summary(bank: Any, sources: list[str], records: list[dict[str, Any]],
             failures: list[dict[str, Any]], extra: dict[str, Any] | None = None) -> dict[str, Any]:
    """The ``--json`` document (``extra``: normalize, activation, groups, layer)."""
    return {
        **(extra or {}),
        "inputs": sources,
        "outputs": [dict(output, input=record["input"]) for record in records
                    for output in record["outputs"]],
        "kernels": [{"name": label, "shape": list(k.weights.shape)}
                    for label, k in zip(bank.labels, bank.kernels)],
        "bank": bank.name,
        "results": records,
        "succeeded": len(records),
        "failed": failures,
    }


def _explicit(context: Any, names: set[str]) -> set[str]:
    """The options among ``names`` that the user typed (not left at their defaults)."""
    if context is None:
        return set()
    sources = {name: context.get_parameter_source(name) for name in names}
    return {name for name, source in sources.items()
            if source is not None and source.name not in ("DEFAULT", "DEFAULT_MAP")}


def apply(
    ctx: typer.Context,
    inputs: list[str] = typer.Argument(
        ..., metavar="INPUT...",
        help="Image files (PNG, JPEG, TIFF/BigTIFF, BMP, WebP, GIF), .npy arrays (H, W[, C]), "
        ".zarr arrays, directories of images, or - for stdin.",
    ),
    kernel: list[str] = typer.Option(
        ..., "-k", "--kernel", metavar="SPEC", autocompletion=complete_kernel,
        help="Kernel spec, repeatable (all form one bank): a file (.npy, text matrix, .toml bank), "
        "a model layer FILE:NAME (.safetensors, .npz, .pt/.pth, .onnx), NAME=SPEC, a preset "
        "(sobel, gaussian:sigma=2, …; convcli kernels list) or inline weights '1,0,-1;2,0,-2;1,0,-1'.",
    ),
    stride: str = typer.Option("1", "-s", "--stride", metavar="N|ROWS,COLS", help="Stride."),
    padding: str = typer.Option(
        "same", "-p", "--padding", metavar="PAD",
        help="valid | same (TF/ONNX SAME: output = ceil(H/s)) | full | N | PH,PW | T,B,L,R.",
    ),
    border: str | None = typer.Option(
        None, "--border", metavar="BORDER", autocompletion=complete_border,
        help="What fills the padding: reflect (a blur keeps a flat image flat, as OpenCV, "
        "scipy.ndimage, libvips) | zero (PyTorch) | constant:V | symmetric | replicate | wrap.  "
        "[default: reflect; none with --transpose]",
    ),
    dilation: str = typer.Option("1", "-d", "--dilation", metavar="N|ROWS,COLS", help="Dilation."),
    channels: Channels = typer.Option(
        Channels.depthwise, "--channels",
        help="depthwise: each kernel on each channel (a blur keeps colour); sum: each kernel sums "
        "over channels (PyTorch groups=1); gray: luminance first.",
    ),
    flip: bool = typer.Option(False, "--flip", help="Rotate kernels 180° (true convolution)."),
    bias: str = typer.Option(
        "0", "--bias", metavar="V|V1,V2,…", help="Added to every output: one value, or one per kernel."
    ),
    transpose: bool = typer.Option(
        False, "--transpose",
        help="Transposed convolution (PyTorch conv_transpose2d): upsamples by the stride.",
    ),
    output_padding: str = typer.Option(
        "0", "--output-padding", metavar="N|ROWS,COLS",
        help="With --transpose: extra rows,cols at the bottom/right (< stride).",
    ),
    reduce: Reduce = typer.Option(
        Reduce.none, "--reduce",
        help="Combine the bank's maps into one: magnitude (sqrt of sum of squares; sobel), max "
        "(compass banks), min, sum.",
    ),
    output: str | None = typer.Option(
        None, "-o", "--output", metavar="FILE|DIR/|-",
        help="A file (several maps: FILE.sobel-x.png, …; it needs a suffix), a directory (an "
        "existing one, or DIR/, created), or - for stdout.  [default: <stem>.<label><ext> in the "
        "current directory]",
    ),
    out_format: Format | None = typer.Option(
        None, "-f", "--format",
        help="png | tiff | jpeg | webp | npy (exact float32 (H',W',N)) | npz (one array per map) | zarr "
        "(like npy, a zarr v3 directory).  "
        "[default: "
        "from the -o suffix, else png; npy for .npy input]",
    ),
    scale: str = typer.Option(
        "auto", "--scale", metavar="SCALE", autocompletion=complete_scale,
        help="Float maps to pixels: auto (keeps a blur's range; edges as |x| so negatives stay "
        "visible; preset hints) | clip | abs | minmax | offset:V | raw (float32 TIFF).",
    ),
    bit_depth: int | None = typer.Option(
        None, "--bit-depth", metavar="8|16",
        help="Bits per sample of image outputs. A depth other than an 8/16-bit input's rescales "
        "0-255 ↔ 0-65535 (×/÷ 257), so the picture looks the same.  [default: 16 for 16-bit "
        "input, else 8]",
    ),
    compress_level: int | None = typer.Option(
        None, "--compress-level", min=0, max=9, metavar="0-9",
        help=f"PNG zlib level (lower is faster, larger).  [default: {PNG_LEVEL}]",
    ),
    alpha: Alpha = typer.Option(
        Alpha.keep, "--alpha",
        help="An input's alpha: keep (premultiplied filtering, hidden colour never bleeds in; image "
        "kernels keep a filtered alpha, feature maps are opaque) | drop (flatten over black or "
        "--background) | channel (alias filter: alpha filtered as a plain channel).",
    ),
    background: str | None = typer.Option(
        None, "--background", metavar="COLOR",
        help="With --alpha drop: the colour to flatten over (name, #RRGGBB, gray level, R,G,B).  "
        "[default: black]",
    ),
    quality: int = typer.Option(90, "--quality", min=1, max=100, metavar="1-100",
                                help="JPEG/WebP quality (JPEG: no chroma subsampling from 90)."),
    lossless: bool = typer.Option(False, "--lossless",
                                  help="Lossless WebP (keeps the colour under transparent pixels)."),
    strip: bool = typer.Option(
        False, "--strip",
        help="Write no metadata. By default the ICC profile, EXIF (Orientation 1), dpi and PNG text "
        "are carried over.",
    ),
    frames: str = typer.Option(
        "all", "--frames", metavar="all|N|A-B",
        help="Frames of an animated GIF/WebP or pages of a TIFF (from 0). TIFF/WebP/npy outputs hold "
        "them all; other formats get <stem>.fNNN.<kernel>.<ext> per frame.",
    ),
    groups: int | None = typer.Option(
        None, "--groups", min=1, metavar="G",
        help="PyTorch groups G: channels and kernels split into G groups, each kernel summing over "
        "its group's C/G channels (replaces --channels).  [default: none; a model layer's is inferred]",
    ),
    normalize: str | None = typer.Option(
        None, "--normalize", metavar="MEAN;STD|imagenet",
        help="Normalise the input as a network was trained: (x/255 − mean)/std per channel "
        "(÷65535 for 16-bit, float as is), e.g. imagenet = 0.485,0.456,0.406;0.229,0.224,0.225.  "
        "[default: none]",
    ),
    activation: Activation = typer.Option(
        Activation.none, "--activation", help="After the bias: none or relu (max(x, 0))."
    ),
    montage: str | None = typer.Option(
        None, "--montage", metavar="FILE.png",
        help="Also write all feature maps as one labelled contact sheet (in a batch "
        "FILE.<stem>.png per input).  [default: none]",
    ),
    method: str = typer.Option(
        "auto", "--method", metavar="NAME",
        help="Strategy (the result is the same, within float rounding): auto (a cost model picks), "
             "the compiled native, native-separable (when built: see --version), or the numpy "
             "direct, separable, gemm, fft, reference; with --transpose: auto, native-polyphase "
             "(compiled), polyphase, scatter.",
    ),
    dtype: str = typer.Option("float32", "--dtype", metavar="float32|float64", help="Compute type."),
    max_pixels: int | None = typer.Option(
        None, "--max-pixels", metavar="N",
        help="Refuse images with more pixels (checked before decoding); 0: no limit.  "
        "[default: Pillow's limit, 89478485, for formats decoded whole; none for TIFF, npy and "
        "zarr, which stream]",
    ),
    force: bool = typer.Option(False, "--force", help="Overwrite existing output files (never an input)."),
    skip_existing: bool = typer.Option(
        False, "--skip-existing", help="Skip inputs whose outputs all exist (resume a batch)."
    ),
    verify: bool = typer.Option(
        False, "--verify", help="Recompute with scipy.signal and print the max abs difference."
    ),
    as_json: bool = typer.Option(
        False, "--json", help="Print one line of JSON on stdout: the summary, one record per input."
    ),
    quiet: bool = typer.Option(False, "-q", "--quiet", help="Print nothing but errors."),
    jobs: int = typer.Option(
        1, "-j", "--jobs", metavar="N", help="Filter a batch with N worker processes (0: one per core).",
    ),
    scheduler: str | None = typer.Option(
        None, "--scheduler", metavar="ADDRESS|processes|threads",
        help="Run on Dask (pip install 'convcli[dask]'): a scheduler address (tcp://HOST:PORT) or "
        "Dask's local processes/threads. One zarr/TIFF input with a .zarr output is filtered in chunks.  "
        "[default: none, no Dask]",
    ),
    chunks: str | None = typer.Option(
        None, "--chunks", metavar="ROWS[,COLS]",
        help="With --scheduler: chunk size of a chunked .zarr output.  [default: the band height, "
        "256 columns]",
    ),
) -> None:
    from convcli import imageio
    from convcli.batch import Batch, BatchOptions
    from convcli.display import parse_scale
    from convcli.job import Job
    from convcli.jobfactory import JobFactory, layer_options, memory_budgets
    from convcli.naming import load_labelled_bank

    if bit_depth not in (None, 8, 16):
        raise OptionError(f"`bit-depth` must be 8 or 16, got {bit_depth}")
    scale_text = scale.strip().lower()
    if scale_text != "raw":
        try:
            scale_text = parse_scale(scale_text)
        except OptionError:
            raise OptionError(f"`scale` must be auto, clip, abs, minmax, raw or offset:V (V a number), "
                              f"got {scale!r}") from None
    fmt = out_format.value if out_format else None
    bank = load_labelled_bank(kernel)
    given = _explicit(ctx, {"stride", "padding", "dilation", "output_padding", "bias", "border",
                       "transpose", "channels"})
    if bank.layer is not None and "transpose" not in given:
        transpose = bank.transposed
    geometry = _geometry(stride, padding, border, dilation, channels.value, flip, bias,
                         output_padding, transpose, method, dtype)
    if (bank.layer is not None or groups is not None) and "channels" in given \
            and channels.value != "sum":
        what = "a model layer" if bank.layer is not None else "--groups"
        raise OptionError(f"--channels {channels.value} does not apply to {what}: its kernels sum over "
                          "their group's channels (set --groups)")
    if activation.value != "none" and reduce.value != "none":
        raise OptionError("--activation applies to the maps, --reduce would combine them first; "
                          "use one of them (or chain two runs through -f npy)")
    normalization = None
    if normalize is not None:
        from convcli.layers import parse_normalize

        normalization = parse_normalize(normalize)
    if background is not None:
        from convcli.alpha import parse_color

        parse_color(background)
    imageio.parse_frames(frames)
    job = Job(
        weights=bank.stack(), labels=tuple(bank.labels), bank_name=bank.name, geometry=geometry,
        display_hint=bank.display, transpose=transpose, reduce=reduce.value, scale=scale_text,
        out_format=fmt, bit_depth=bit_depth,
        compress_level=imageio.DEFAULT_PNG_LEVEL if compress_level is None else compress_level,
        alpha=alpha.value, background=background, quality=quality, lossless=lossless, strip=strip,
        max_pixels=(None if max_pixels == 0 else max_pixels) if max_pixels is not None
        else imageio.DEFAULT_MAX_PIXELS,
        # inputs read by region (TIFF, npy, zarr) are limited only when --max-pixels is given
        streamed_max_pixels=None if max_pixels in (None, 0) else max_pixels,
        verify=verify, map_stats=as_json, spec_text=" ".join(f"-k {spec}" for spec in kernel) or "bank",
        **memory_budgets(os.environ),
        normalize=normalization, activation=activation.value,
    )
    explicit = layer_options(given, geometry, transpose)
    if groups is not None:
        explicit["groups"] = groups
    job_for = JobFactory(job, bank, explicit, groups, on_note=None if quiet else _say_note)
    from convcli.distributed import check_options

    chunk_size = check_options(jobs, scheduler, chunks)
    shown = bank if bank.layer is None else bank.layer.to_bank(transposed=transpose, groups=groups)
    extra = {
        "normalize": None if normalization is None
        else {"mean": list(normalization[0]), "std": list(normalization[1])},
        "activation": activation.value,
        "groups": groups,
    }
    batch = Batch(inputs, job_for, BatchOptions(output=output, out_format=fmt, force=force, montage=montage,
                                                skip_existing=skip_existing, frames=frames),
                  stdout_taken=as_json)
    sources = batch.sources
    records: list[dict[str, Any]] = []
    failures: list[dict[str, Any]] = []
    skipped: list[dict[str, Any]] = []
    progress = _progress(len(sources), _wants_progress(sources, quiet))
    on_band = None
    if progress is not None:
        def on_band(index: int, fraction: float) -> None:
            progress.update(0, completed=index + fraction)
    try:
        for outcome in batch.outcomes(jobs=jobs, scheduler=scheduler, chunks=chunk_size, progress=on_band):
            if outcome.error is not None:
                if not batch.several and not as_json:
                    raise outcome.error from None
                failures.append({"input": outcome.source, "error": str(outcome.error)})
                err(f"convcli: error: {outcome.error}")
            elif outcome.skipped is not None:
                skipped.append({"input": outcome.source, "reason": outcome.skipped})
                if not outcome.outputs_exist and not quiet:
                    err(outcome.skipped)
            else:
                _report(outcome, quiet)
                records.append(outcome.record)
            if progress is not None:
                progress.update(0, completed=len(records) + len(failures) + len(skipped))
    finally:
        if progress is not None:
            progress.stop()
    if jobs != 1 or scheduler is not None:  # workers finish in any order: report in input order
        position = {source: index for index, source in reversed(list(enumerate(sources)))}
        for items in (records, failures, skipped):
            items.sort(key=lambda item: position.get(item["input"], len(sources)))
    if batch.several and not quiet:
        err(f"{len(records)} of {len(sources)} inputs done, {len(failures)} failed"
            + (f", {len(skipped)} skipped" if skipped else ""))
    if as_json:
        if job_for.layer_record is not None:
            extra["layer"] = job_for.layer_record
            extra["groups"] = job_for.layer_record["groups"]
        summary = _summary(shown, sources, records, failures, extra)
        summary["skipped"] = skipped
        write_json(summary)  # one compact line, flushed: a closed pipe fails inside the error translation
    if failures:
        raise typer.Exit(1)

apply.__doc__ = APPLY_HELP
