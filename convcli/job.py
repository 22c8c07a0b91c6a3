"""One filtering job as a library object, and the function that runs it on one input.

A :class:`Job` is a plain, frozen, picklable description of what ``convcli
apply`` does to each input: the bank, the geometry, the reduce step, the
display mapping and the output format. It holds no open file, lock or
terminal, so the same object runs in this process, in a worker process of
``--jobs`` or on a Dask worker. :func:`run` executes it on one source and one
:class:`Destination`, streaming:

1. the source is opened lazily (:func:`convcli.pipeline.sources.open_source`:
   TIFF, ``.npy`` and zarr are read by region, other formats decoded once
   into their native 8/16-bit pixels);
2. every output file is opened as a sink first (so an existing file or an
   unwritable directory fails before any arithmetic), written under a
   temporary name and renamed at the end;
3. when the display mapping needs statistics of the whole map (``auto``,
   ``minmax``), a first pass over the bands gathers them
   (:class:`convcli.display.MapStats`: min, max, the sampled rows for the
   99th percentile), keeping the bands only if they fit
   :attr:`Job.hold_bytes`, else recomputing them in the second pass; when
   the mapping needs only the percentile (``auto`` on feature maps, e.g.
   an edge map), the first pass computes the sampled rows alone (about
   2**20 values);
4. the render pass computes each band of output rows
   (:func:`convcli.pipeline.render.render_rows`), maps it to pixels and hands it
   to every sink.

Memory is a few bands (:attr:`Job.band_bytes` each), never a full-size float
map, except where a format or option needs the whole result: ``npz``,
``--montage`` and ``--verify`` hold the float maps. The written pixels are
identical to those of a whole-image run.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from contextlib import ExitStack
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from convcli.errors import ConvcliError, KernelError, OptionError, OutputError, ShapeError
from convcli.pipeline.bands import DEFAULT_BAND_BYTES, Rows, band_height, split_rows

__all__ = [
    "DEFAULT_HOLD_BYTES",
    "Destination",
    "Job",
    "is_directory_target",
    "output_format",
    "plan_targets",
    "planned_outputs",
    "run",
]

DEFAULT_HOLD_BYTES = 32 << 20
"""Float maps up to this size are kept between the statistics and render passes."""

_EXTENSIONS = {"png": ".png", "tiff": ".tiff", "npy": ".npy", "npz": ".npz", "zarr": ".zarr",
               "jpeg": ".jpg", "webp": ".webp"}
_FLOAT_FORMATS = ("npy", "npz", "zarr")


@dataclass(frozen=True)
class Job:
    """What to do to every input of a run (frozen, picklable, no open resources).

    Attributes
    ----------
    weights : ndarray, (F, kh, kw) or (F, kh, kw, C)
        The bank's correlation weights.
    labels : tuple of str
        One label per kernel (file names ``<stem>.<label>.png``).
    bank_name : str
        The bank's name (npy/npz file names, reduce labels).
    display_hint : str or None
        The preset's display scale for ``--scale auto``.
    geometry : dict
        Keyword arguments of :func:`convcli.pipeline.render.plan_render`:
        stride, padding, dilation, channels, flip, bias, method, dtype and
        ``border`` (forward) or ``output_padding`` (transposed).
    transpose : bool
    reduce : {'none', 'magnitude', 'max', 'min', 'sum'}
    scale : str
        ``raw`` (float32 TIFF) or a :func:`convcli.display.parse_scale` name.
    out_format : str or None
        ``png``, ``tiff``, ``npy``, ``npz``, ``zarr``; None: from the output
        suffix, else ``png`` (``npy`` for npy input).
    bit_depth : {None, 8, 16}
        Image outputs; None: 16 for 16-bit input, else 8.
    compress_level : int
        PNG / TIFF deflate level 0–9.
    alpha : str
        ``keep`` (premultiplied filtering; image kernels keep a filtered alpha),
        ``drop`` (flatten over ``background``, opaque maps) or ``channel`` /
        ``filter`` (alpha as a plain channel); see :mod:`convcli.alpha`.
    background : str or None
        ``--background`` colour of ``drop`` (None: black).
    quality : int
        JPEG / WebP quality 1–100.
    lossless : bool
        Lossless WebP (keeps the colour under transparent pixels).
    strip : bool
        Write no metadata (ICC profile, EXIF, dpi, text) into image outputs.
    max_pixels : int or None
        Decoding limit of inputs decoded whole, and working-image limit (see
        :func:`convcli.pipeline.render.plan_render`).
    streamed_max_pixels : int or None
        Pixel limit of inputs read by region (TIFF, npy, zarr); default none.
    verify : bool
        Recompute with scipy.signal and record the difference (holds the maps).
    map_stats : bool
        Record each map's min and max (``--json``).
    spec_text : str
        How the user named the bank, for messages (``-k sobel``).
    normalize : ((mean, …), (std, …)) or None
        Normalise the input as a network was trained before filtering
        (:class:`convcli.layers.NormalizedSource`: ``(x/scale − mean)/std``).
    activation : {'none', 'relu'}
        Applied to the maps after the bias (:func:`convcli.layers.activate`);
        not with ``reduce`` (it would come after it).
    band_bytes, hold_bytes : int
        Memory budgets in bytes.
    """

    weights: np.ndarray
    labels: tuple[str, ...]
    bank_name: str
    geometry: dict = field(default_factory=dict)
    display_hint: str | None = None
    transpose: bool = False
    reduce: str = "none"
    scale: str = "auto"
    out_format: str | None = None
    bit_depth: int | None = None
    compress_level: int = 4
    alpha: str = "keep"
    max_pixels: int | None = None
    streamed_max_pixels: int | None = None
    verify: bool = False
    map_stats: bool = False
    spec_text: str = "bank"
    band_bytes: int = DEFAULT_BAND_BYTES
    hold_bytes: int = DEFAULT_HOLD_BYTES
    normalize: tuple[tuple[float, ...], tuple[float, ...]] | None = None
    activation: str = "none"
    background: str | None = None
    quality: int = 90
    lossless: bool = False
    strip: bool = False


@dataclass(frozen=True)
class Destination:
    """Where one input's outputs go.

    Attributes
    ----------
    output : str or None
        None: ``<stem>.<label>.<ext>`` in the current directory; a directory
        (existing, or ending in ``/``); a file (one map, or ``<stem>.<label><suffix>``
        beside it for several); ``-`` for standard output.
    stem : str or None
        Stem of generated names (default: the input's).
    force : bool
        Overwrite existing files (never an input: see ``protect``).
    protect : tuple of str
        Paths that must never be written (the run's inputs).
    montage : str or None
        Also write a labelled contact sheet of all maps (PNG) there.
    collect : list or None
        Frames of a multi-frame input that go into one file (multi-page TIFF,
        animated WebP, ``(T, H', W', N)`` npy): instead of writing, every
        output's final array is appended here as ``(path, array)`` for the
        caller to write once all frames are done.
    """

    output: str | None = None
    stem: str | None = None
    force: bool = False
    protect: tuple[str, ...] = ()
    montage: str | None = None
    collect: list | None = None


def is_directory_target(output: str) -> bool:
    """True for an existing directory or a path ending in a separator.

    A ``NAME.zarr`` path is a zarr output even when that directory exists
    (it is then replaced with ``--force``, or refused), never a folder to
    write other files into.
    """
    if output.endswith(("/", "\\")):
        return True
    return Path(output).suffix.lower() != ".zarr" and Path(output).is_dir()


def output_format(job: Job, destination: Destination, input_mode: str) -> str:
    """The format of an input's outputs: ``-f``, else the ``-o`` suffix, else png (npy for npy)."""
    from convcli.imageio import format_from_suffix

    if job.out_format:
        return job.out_format
    output = destination.output
    if output and output != "-" and not is_directory_target(output):
        if Path(output).suffix.lower() == ".zarr":
            return "zarr"
        suffix_format = format_from_suffix(output)
        if suffix_format:
            return suffix_format
    return "npy" if input_mode in ("npy", "zarr") else "png"


def plan_targets(destination: Destination, stem: str, labels: Sequence[str], fmt: str) -> list[str]:
    """Output paths, one per label.

    ``-o -`` takes exactly one; no ``-o`` or ``-o DIR``: ``<stem>.<label><ext>``
    in that directory; ``-o FILE``: the file itself for one label, else
    ``<file stem>.<label><suffix>`` beside it.
    """
    ext = _EXTENSIONS[fmt]
    output = destination.output
    stem = destination.stem or stem
    if output == "-":
        if len(labels) != 1:
            raise OptionError(
                f"{len(labels)} maps cannot go to stdout as {fmt}; use -f npy/npz, --reduce, or -o DIR"
            )
        return ["-"]
    if output is None or is_directory_target(output):
        folder = Path(output) if output else Path()
        return [str(folder / f"{stem}.{label}{ext}") for label in labels]
    target = Path(output)
    if len(labels) == 1:
        return [str(target)]
    suffix = target.suffix or ext
    return [str(target.with_name(f"{target.stem}.{label}{suffix}")) for label in labels]


def _map_names(labels: Sequence[str], n_out: int, channel_names: Sequence[str]) -> list[str]:
    per_kernel = n_out // len(labels)
    if per_kernel == 1:
        return list(labels)
    names = channel_names if len(channel_names) == per_kernel else tuple(f"c{i}" for i in range(per_kernel))
    return [f"{label}.{name}" for label in labels for name in names]


def _json_number(value: float) -> float | str:
    """JSON has no NaN/inf: give them as strings."""
    return value if np.isfinite(value) else str(value)


def _bounded(source: Any, weights: np.ndarray, bias: Any, limit: float, channels: int) -> bool:
    """Whether no map value (nor a square of one, for ``magnitude``) can pass ``limit``: an 8/16-bit
    source and finite weights bound every output by ``max pixel · Σ|w| · C + |bias|``, so the
    per-band overflow check can be skipped."""
    dtype = np.dtype(getattr(source, "dtype", np.float64))
    if dtype.kind not in "ui" or not np.issubdtype(np.asarray(weights).dtype, np.number):
        return False
    info = np.iinfo(dtype)
    top = float(max(abs(int(info.min)), int(info.max)))
    table = np.abs(np.asarray(weights, dtype=np.float64))
    if not np.isfinite(table).all():
        return False
    n_filters = table.shape[0] if table.ndim >= 3 else 1
    per_filter = float(table.reshape(n_filters, -1).sum(axis=1).max()) if table.size else 0.0
    try:
        offset = float(np.max(np.abs(np.asarray(bias, dtype=np.float64)))) if np.size(bias) else 0.0
    except (TypeError, ValueError):
        return False
    bound = top * per_filter * max(1, channels) + offset
    return bool(np.isfinite(bound) and bound * n_filters < limit / 4
                and bound * bound * n_filters < limit / 4)


class _Runner:
    """The state of one :func:`run`: the plan, the band schedule and the output layout."""

    def __init__(self, job: Job, source: Any, destination: Destination, *,
                 float_unit: bool | None = None) -> None:
        """``float_unit``: whether the source is a ``[0, 1]`` float image, when already known (a Dask
        block gets the client's answer instead of reading the image's first rows again)."""
        from convcli import alpha as alpha_rules
        from convcli.maps import group_maps
        from convcli.pipeline.prepared import PreparedRows, is_float_unit
        from convcli.pipeline.render import plan_render

        if job.activation not in ("none", "relu"):
            raise OptionError(f"`activation` must be none or relu, got {job.activation!r}")
        if job.activation != "none" and job.reduce != "none":
            raise OptionError("--activation applies to the maps, --reduce would combine them first; "
                              "use one of them (or chain two runs through -f npy)")
        self.input_source = source  # the pixels as read (the montage shows them)
        if job.normalize is not None:
            from convcli.layers import NormalizedSource

            source = NormalizedSource(source, *job.normalize)
        self.job, self.source, self.destination = job, source, destination
        self.name = "stdin" if source.name == "-" else source.name
        channel_names = tuple(source.channel_names)
        self.float_unit = is_float_unit(source) if float_unit is None else bool(float_unit)
        mode = alpha_rules.parse_alpha_mode(job.alpha)
        self.colour_source: Any = source
        self.alpha_source: Any = None
        self.max_alpha = 255.0
        if alpha_rules.has_alpha(channel_names) and mode != "channel":
            self.max_alpha = alpha_rules.alpha_max(source.bit_depth, float_unit=self.float_unit)
            prepared = PreparedRows(source, channel_names, mode, max_value=self.max_alpha,
                                    background=job.background)
            self.colour_source, channel_names = prepared.colour, prepared.channel_names
            self.alpha_source = prepared.alpha
        geometry = dict(job.geometry)
        dtype = geometry.get("dtype", "float32")
        limit = float(np.finfo(dtype).max)
        weights = np.asarray(job.weights)
        if weights.size and np.issubdtype(weights.dtype, np.number) \
                and float(np.max(np.abs(weights))) > limit:
            raise KernelError(f"{job.spec_text}: weights exceed the {dtype} range (±{limit:.3g})"
                              + ("; use --dtype float64" if dtype == "float32" else ""))
        channels_mode = geometry.get("channels", "depthwise")
        self.kinds = alpha_rules.kernel_kinds(weights, channels_mode)
        self.bias = geometry.get("bias", 0.0)
        self.has_bias = bool(np.any(np.asarray(self.bias, dtype=np.float64) != 0))
        # --alpha keep: image kernels are divided by the alpha filtered alongside (reduce: feature maps)
        keep = self.alpha_source is not None and job.reduce == "none" and "image" in self.kinds
        if not keep:
            self.alpha_source = None
        try:
            self.plan = plan_render(self.colour_source.shape, weights, transpose=job.transpose,
                                    reduce=job.reduce, max_pixels=job.max_pixels,
                                    **(dict(geometry, bias=0.0) if keep else geometry))
            self.alpha_plan = None if not keep else plan_render(
                self.alpha_source.shape, alpha_rules.alpha_weights(weights, channels_mode),
                transpose=job.transpose, max_pixels=job.max_pixels,
                **dict(geometry, bias=0.0, channels="depthwise"))
        except (KernelError, ShapeError) as exc:
            raise type(exc)(f"{self.name}: {job.spec_text}: {exc}") from None
        self.limit = limit
        self.dtype = np.dtype(dtype)
        self.bounded = self.alpha_plan is None and _bounded(self.colour_source, weights, self.bias, limit,
                                                            self.plan.channels_used)
        out_rows, out_cols, n_out = self.plan.out_shape
        labels = list(job.labels)
        if job.reduce != "none":
            labels = [f"{job.bank_name}-{job.reduce}"]
            self.kinds = ("feature",)
        if n_out // len(labels) != len(channel_names):
            channel_names = ()  # sum / gray modes: one channel per kernel
        self.labels = labels
        per_kernel = n_out // len(labels)
        if keep:  # per kernel: colour (+ the filtered alpha for an image kernel)
            self.layout = alpha_rules.keep_layout(self.kinds, per_kernel)
            names = channel_names or (("L",) if per_kernel == 1
                                      else tuple(f"c{i}" for i in range(per_kernel)))
            self.groups_all = [
                _Group(label, tuple(range(g.start, g.start + g.count)),
                       names + (("A",) if g.has_alpha else ()), f, g.has_alpha)
                for f, (label, g) in enumerate(zip(labels, self.layout))]
            n_out = self.layout[-1].start + self.layout[-1].count
            self.names = [f"{g.label}.{name}" if len(g.channel_names) > 1 else g.label
                          for g in self.groups_all for name in g.channel_names]
        else:
            self.layout = None
            self.groups_all = [
                _Group(g.label, g.channels, g.channel_names, g.channels[0] // per_kernel, False)
                for g in group_maps(labels, n_out, channel_names)]
            self.names = _map_names(labels, n_out, channel_names)
        self.out_shape = (out_rows, out_cols, n_out)
        self.fmt = output_format(job, destination, source.mode)
        self.stem = destination.stem or source.stem
        if self.fmt in _FLOAT_FORMATS:
            self.groups = None
            label = labels[0] if len(labels) == 1 else job.bank_name
            self.targets = plan_targets(destination, source.stem, [label], self.fmt)
        else:
            self.groups = self.groups_all
            self.targets = plan_targets(destination, source.stem, [g.label for g in self.groups], self.fmt)
        raw_values = self.plan.raw_shape[1] * self.plan.raw_shape[2]
        in_values = self.plan.in_shape[1] * self.plan.in_shape[2]
        stride_rows = self.plan.conv_options["stride"][0]
        dilation_rows = self.plan.conv_options["dilation"][0]
        kernel_rows = weights.shape[-2] if weights.ndim == 2 else weights.shape[1]
        itemsize = self.plan.itemsize
        height = band_height(
            out_rows, in_row_bytes=in_values * itemsize, out_row_bytes=3 * raw_values * itemsize,
            stride=stride_rows, reach=dilation_rows * (kernel_rows - 1), budget=job.band_bytes,
            transposed=job.transpose,
        )
        self.bands = split_rows(out_rows, height, stride_rows if job.transpose else 1)
        self.map_bytes = out_rows * out_cols * n_out * itemsize
        self.notes: list[str] = []
        self.map_ranges: list[list[float]] | None = None
        self.progress: Callable[[float], None] | None = None
        self.passes = 1
        self.rendered = 0

    def render(self, rows: Rows) -> np.ndarray:
        """One band of maps; an overflow of the compute type is an error naming the input."""
        from convcli.pipeline.render import render_rows

        maps = self._maps(render_rows, rows)
        with np.errstate(over="ignore", invalid="ignore"):
            total = float(np.add.reduce(maps, axis=None)) if maps.size and not self.bounded else 0.0
        if not np.isfinite(total) and not np.isfinite(maps).all():
            raise ShapeError(f"{self.name}: {self.job.spec_text}: the result overflows {self.dtype} "
                             f"(|value| > {self.limit:.3g})"
                             + ("; use --dtype float64 or smaller weights"
                                if self.dtype == np.float32 else ""))
        if self.job.map_stats:
            lows, highs = maps.min(axis=(0, 1)), maps.max(axis=(0, 1))
            if self.map_ranges is None:
                self.map_ranges = [[float(lo), float(hi)] for lo, hi in zip(lows, highs)]
            else:
                for entry, lo, hi in zip(self.map_ranges, lows, highs):
                    entry[0], entry[1] = min(entry[0], float(lo)), max(entry[1], float(hi))
        return maps

    def render_sampled(self, rows: Sequence[int]) -> np.ndarray:
        """Output rows ``rows`` (any increasing list) of the maps, ``(len(rows), W', N)``, as :meth:`render`
        gives them (for the statistics pass: no overflow check, no per-map ranges)."""
        from convcli.pipeline.render import render_row_list

        return self._maps(render_row_list, rows)

    def _maps(self, render: Callable[[Any, Any, Any], np.ndarray], rows: Any) -> np.ndarray:
        """``render(plan, source, rows)`` of the colour (and, for ``--alpha keep``, the alpha), then the
        activation; a geometry error names the input."""
        try:
            maps = render(self.plan, self.colour_source, rows)
            if self.alpha_plan is not None:
                maps = self._keep(maps, render(self.alpha_plan, self.alpha_source, rows))
        except (KernelError, ShapeError) as exc:
            raise type(exc)(f"{self.name}: {self.job.spec_text}: {exc}") from None
        if self.job.activation != "none":
            from convcli.layers import activate

            maps = activate(maps, self.job.activation)
        return maps

    def _keep(self, colour: np.ndarray, alpha: np.ndarray) -> np.ndarray:
        """``--alpha keep`` of one band: unpremultiplied image-kernel maps and their alpha, then the bias
        (on the colour channels, as the core adds it: scalar, per kernel or per output channel)."""
        from convcli.alpha import keep_alpha

        kept = keep_alpha(colour, alpha, self.kinds, self.max_alpha)
        if self.has_bias:
            n_colour = colour.shape[2]
            values = np.asarray(self.bias, dtype=kept.dtype).ravel()
            per_channel = np.broadcast_to(values, (n_colour,)) if values.size in (1, n_colour) \
                else np.repeat(values, n_colour // values.size)
            per_kernel = n_colour // len(self.kinds)
            index = [g.start + c for g in self.layout for c in range(per_kernel)]
            kept[:, :, index] += per_channel
        return kept

    def bands_of_maps(self) -> Iterator[tuple[Rows, np.ndarray]]:
        """Render every band in order, reporting the fraction of the run done after each."""
        for rows in self.bands:
            maps = self.render(rows)
            self.rendered += 1
            if self.progress is not None:
                self.progress(min(1.0, self.rendered / (len(self.bands) * self.passes)))
            yield rows, maps


@dataclass(frozen=True)
class _Group:
    """Channels of the maps written to one image file."""

    label: str
    channels: tuple[int, ...]
    channel_names: tuple[str, ...]
    kernel: int
    has_alpha: bool


def planned_outputs(job: Job, source: Any, destination: Destination | None = None) -> list[str]:
    """The paths :func:`run` would write for ``source`` (an opened Source), computing nothing.

    Lets a batch refuse two inputs that would write one file before either is written.
    """
    destination = destination or Destination()
    runner = _Runner(job, source, destination)
    return runner.targets + ([destination.montage] if destination.montage else [])


def run(job: Job, source: Any, destination: Destination | None = None, *,
        progress: Callable[[float], None] | None = None) -> dict[str, Any]:
    """Filter one input with ``job`` and write its outputs; return its JSON record.

    Parameters
    ----------
    job : Job
    source : str or Source
        A path (``-`` for stdin), or an opened :class:`convcli.pipeline.sources.Source`.
    destination : Destination, optional
        Where the outputs go (default: the current directory).
    progress : callable, optional
        Called with the fraction of the work done (0–1] after every band.

    Returns
    -------
    dict
        ``input``, ``mode``, ``shape_in`` (H, W, C filtered), ``shape_out``
        (H', W', N), ``outputs`` (path, format, shape, map), and ``maps``
        (per-map min/max) with :attr:`Job.map_stats`, ``verify`` with
        :attr:`Job.verify`.

    Raises
    ------
    ConvcliError
        ImageError (unreadable input), OutputError (unwritable or existing
        output), ShapeError / KernelError / OptionError (geometry, bank,
        options). No partial output file is left behind.
    """
    from convcli.pipeline.sources import Source, open_source

    destination = destination or Destination()
    opened = source if isinstance(source, Source) else open_source(
        source, max_pixels=job.max_pixels, streamed_max_pixels=job.streamed_max_pixels)
    try:
        return _run(job, opened, destination, progress)
    finally:
        if opened is not source:
            opened.close()


def _run(job: Job, source: Any, destination: Destination,
         progress: Callable[[float], None] | None = None) -> dict[str, Any]:
    runner = _Runner(job, source, destination)
    runner.progress = progress
    record: dict[str, Any] = {
        "input": source.name, "mode": source.mode,
        "shape_in": [source.shape[0], source.shape[1], runner.plan.channels_used],
        "shape_out": list(runner.out_shape), "outputs": [],
        "geometry": _geometry_record(job, runner.plan),
        "alpha": job.alpha if runner.colour_source is not source else "none",
    }
    montage_target = destination.montage
    if montage_target:
        _check_target(runner, montage_target)
    hold = job.verify or montage_target is not None or runner.fmt == "npz"
    held: list[np.ndarray] | None = [] if hold else None
    if runner.fmt in _FLOAT_FORMATS:
        _write_float(runner, record, held)
    else:
        _write_images(runner, record, held)
    if held is not None and (job.verify or montage_target):
        maps = np.concatenate(held) if held else np.zeros(runner.out_shape, runner.dtype)
        if job.verify:
            record["verify"] = _verify(runner, maps)
        if montage_target:
            _write_montage(runner, maps, montage_target, record)
    if job.map_stats and runner.map_ranges is not None:
        record["maps"] = [{"name": name, "min": _json_number(lo), "max": _json_number(hi)}
                          for name, (lo, hi) in zip(runner.names, runner.map_ranges)]
    return record


def _geometry_record(job: Job, plan: Any) -> dict[str, Any]:
    """What was computed, as JSON: the padding asked for and resolved, border, stride, dilation, method."""
    padding = job.geometry.get("padding", "valid")
    options = plan.conv_options
    top, bottom, left, right = plan.pads
    record: dict[str, Any] = {
        "transpose": job.transpose,
        "padding": padding if isinstance(padding, str) else list(np.atleast_1d(padding).tolist()),
        "pads": {"top": top, "bottom": bottom, "left": left, "right": right},
        "stride": list(options["stride"]),
        "dilation": list(options["dilation"]),
        "border": None if job.transpose else str(options["border"]),
        "channels": options["channels"],
        "method": plan.method,
        "dtype": str(np.dtype(options["dtype"])),
    }
    if job.transpose:
        record["output_padding"] = list(np.broadcast_to(job.geometry.get("output_padding", 0), 2).tolist())
    return record


def _write_float(runner: _Runner, record: dict[str, Any], held: list[np.ndarray] | None) -> None:
    """npy / zarr streamed (exact float maps), npz from the held maps."""
    from convcli import imageio
    from convcli.pipeline.sinks import open_sink

    destination, target = runner.destination, runner.targets[0]
    shape = runner.out_shape
    dtype = np.float64 if runner.dtype == np.float64 else np.float32
    if runner.fmt == "npz":
        _check_target(runner, target)
        for _, maps in runner.bands_of_maps():
            held.append(maps)
        maps = np.concatenate(held)
        payload = imageio.encode_npz({name: maps[..., i] for i, name in enumerate(runner.names)})
        imageio.write_output(target, payload, force=destination.force, protect=list(destination.protect))
    else:
        with (_CollectSink(target, shape, dtype, destination.collect) if destination.collect is not None
              else open_sink(target, runner.fmt, shape, dtype, force=destination.force,
                             protect=destination.protect)) as sink:
            for _, maps in runner.bands_of_maps():
                if held is not None:
                    held.append(maps)
                sink.write_rows(np.ascontiguousarray(maps, dtype=dtype))
            sink.commit()
    record["outputs"].append({"path": target, "format": runner.fmt, "shape": list(shape)})


def _check_target(runner: _Runner, target: str) -> None:
    from convcli import imageio

    if target != "-":
        imageio.check_output_target(target, force=runner.destination.force,
                                    protect=list(runner.destination.protect))


class _StatsAccumulator:
    """:class:`convcli.display.MapStats` of one output group, gathered band by band.

    The range is the min/max of every value of the bands given to :meth:`add`;
    the sample is ``|x|`` of the group's sampled rows
    (:func:`convcli.display.sample_rows`), the values the whole-map
    statistics take. :meth:`add_rows` takes sampled rows alone (a pass that
    computed only those rows: the range then stays unknown).
    """

    def __init__(self, shape: tuple[int, int, int]) -> None:
        from convcli.display import sample_rows

        self.sampled = sample_rows(shape[0], shape[1] * shape[2])
        self.row_values = shape[1] * shape[2]
        self.low = np.inf
        self.high = -np.inf
        self.has_nan = False
        self.samples: list[np.ndarray] = []
        self.sample: np.ndarray | None = None  # filled in place when the bands are float32/float64
        self.filled = 0

    def add(self, rows: Rows, values: np.ndarray) -> None:
        """Fold in the band ``values`` (output rows ``rows``): min/max of its finite values, NaN, sample.

        With the compiled kernels one pass (:func:`convcli.display.compiled_stats`) for
        float32/float64 bands; else the numpy steps.
        """
        from convcli.display import compiled_stats

        fast = compiled_stats(values, 0, max(1, values.size))
        if fast is not None:
            low, high, has_nan, _ = fast
            self.has_nan = self.has_nan or has_nan
            self.low, self.high = min(self.low, low), max(self.high, high)
        else:
            flat = values.reshape(-1)
            nan = np.isnan(flat)
            if nan.any():
                self.has_nan = True
                flat = np.where(nan, 0, flat)
            finite = flat if np.isfinite(flat).all() else flat[np.isfinite(flat)]
            if finite.size:
                self.low = min(self.low, float(finite.min()))
                self.high = max(self.high, float(finite.max()))
        step = self.sampled.step
        first = self.sampled.start + max(0, -(-(rows.start - self.sampled.start) // step)) * step
        if first < rows.stop:
            self.add_rows(values[first - rows.start::step])

    def add_rows(self, values: np.ndarray) -> None:
        """Fold in sampled rows ``values`` (the next ones in order) to the sample only.

        Float32/float64 rows go straight into one preallocated sample (no concatenation of
        millions of values at the end); anything else is kept as its own piece.
        """
        from convcli.display import row_sample

        if not values.size:
            return
        if self.sample is None and values.dtype in (np.float32, np.float64):
            self.sample = np.empty(len(self.sampled) * self.row_values, values.dtype)
        if (self.sample is not None and values.dtype == self.sample.dtype
                and self.filled + values.size <= self.sample.size):
            row_sample(values, self.sample[self.filled:self.filled + values.size])
            self.filled += values.size
        else:
            self.samples.append(row_sample(values))

    def stats(self) -> Any:
        from convcli.display import MapStats

        parts = ([self.sample[:self.filled]] if self.sample is not None else []) + self.samples
        sample = parts[0] if len(parts) == 1 else np.concatenate(parts) if parts else np.zeros(0, np.float32)
        if self.low > self.high:
            return MapStats(None, None, self.has_nan, sample)
        return MapStats(self.low, self.high, self.has_nan, sample)


class _WholeImageSink:
    """JPEG / WebP (no band-by-band encoder): rows collected, encoded and written atomically at commit."""

    def __init__(self, target: str, fmt: str, shape: tuple[int, int, int], dtype: Any, *, job: Job,
                 destination: Destination, metadata: Any, notes: list[str]) -> None:
        from convcli import imageio

        if target != "-":
            imageio.check_output_target(target, force=destination.force, protect=list(destination.protect))
        self.target, self.fmt, self.job, self.destination = target, fmt, job, destination
        self.metadata, self.notes = metadata, notes
        self.pixels = np.empty(shape, dtype)
        self.row = 0

    def __enter__(self) -> _WholeImageSink:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.pixels = None  # nothing was written before commit

    def write_rows(self, band: np.ndarray) -> None:
        self.pixels[self.row:self.row + band.shape[0]] = band.reshape(band.shape[0], *self.pixels.shape[1:])
        self.row += band.shape[0]

    def commit(self) -> None:
        from convcli import imageio

        job = self.job
        if self.fmt == "jpeg":
            data = imageio.encode_jpeg(self.pixels, quality=job.quality, metadata=self.metadata,
                                       strip=job.strip, notes=self.notes)
        else:
            data = imageio.encode_webp(self.pixels, quality=job.quality, lossless=job.lossless,
                                       metadata=self.metadata, strip=job.strip, notes=self.notes)
        imageio.write_output(self.target, data, force=self.destination.force,
                             protect=list(self.destination.protect))


class _CollectSink:
    """Rows gathered into one array, handed to ``collect`` at commit (:attr:`Destination.collect`)."""

    def __init__(self, target: str, shape: tuple[int, int, int], dtype: Any, collect: list) -> None:
        self.target, self.collect = target, collect
        self.pixels = np.empty(shape, dtype)
        self.row = 0

    def __enter__(self) -> _CollectSink:
        return self

    def __exit__(self, *exc_info: object) -> None:
        pass

    def write_rows(self, band: np.ndarray) -> None:
        self.pixels[self.row:self.row + band.shape[0]] = band.reshape(band.shape[0], *self.pixels.shape[1:])
        self.row += band.shape[0]

    def commit(self) -> None:
        self.collect.append((self.target, self.pixels))


def _open_image_sink(runner: _Runner, target: str, shape: tuple[int, int, int], dtype: Any) -> Any:
    from convcli.pipeline.sinks import open_sink

    job, destination = runner.job, runner.destination
    if destination.collect is not None:
        return _CollectSink(target, shape, dtype, destination.collect)
    metadata = None if job.strip else dict(getattr(runner.source, "metadata", {}) or {})
    if runner.fmt in ("jpeg", "webp"):
        return _WholeImageSink(target, runner.fmt, shape, dtype, job=job, destination=destination,
                               metadata=metadata, notes=runner.notes)
    return open_sink(target, runner.fmt, shape, dtype, force=destination.force, protect=destination.protect,
                     compress_level=job.compress_level, metadata=metadata)


def _write_images(runner: _Runner, record: dict[str, Any], held: list[np.ndarray] | None) -> None:
    """PNG / TIFF / JPEG / WebP: statistics pass if needed, then the render pass.

    Each group (one file) is mapped by the display rule of its kernel's kind
    (:func:`convcli.display.plan_display`); a kept alpha channel (``--alpha
    keep``, image kernels) is written clipped, as alpha.
    """
    from convcli import display

    job, source = runner.job, runner.source
    groups = runner.groups
    bit_depth = job.bit_depth or (16 if source.bit_depth == 16 else 8)
    factor = 1.0
    if source.bit_depth in (8, 16) and bit_depth != source.bit_depth:
        factor = 257.0 if bit_depth == 16 else 1 / 257.0  # 0-255 ↔ 0-65535, the same picture
    hint = job.display_hint if job.reduce in ("none", "max", "min", "sum") else None
    raw = job.scale == "raw"
    if raw and runner.fmt != "tiff":
        raise OptionError("`--scale raw` (float pixels) needs -f tiff, npy, npz or zarr")
    out_rows, out_cols, _ = runner.out_shape
    pixel_dtype = np.float32 if raw else (np.uint8 if bit_depth == 8 else np.uint16)
    kinds = [runner.kinds[min(group.kernel, len(runner.kinds) - 1)] for group in groups]
    options = {"scale": job.scale, "bit_depth": bit_depth, "hint": hint, "bias": runner.has_bias,
               "float_unit": runner.float_unit}

    def plane(maps: np.ndarray, group: _Group, colour_only: bool = False) -> np.ndarray:
        channels = list(group.channels[:-1] if colour_only and group.has_alpha else group.channels)
        values = maps[:, :, channels[0]:channels[-1] + 1] \
            if channels == list(range(channels[0], channels[-1] + 1)) else maps[:, :, channels]
        if factor != 1.0 and not raw:
            values = values * factor
        return values

    mappings: list[Any] = [None] * len(groups)
    alpha_mapping = display.alpha_mapping(bit_depth, float_unit=runner.float_unit)
    kept: list[tuple[Rows, np.ndarray]] | None = None
    with ExitStack() as stack:
        sinks = [stack.enter_context(_open_image_sink(
            runner, target, (out_rows, out_cols, len(group.channels)), pixel_dtype))
            for group, target in zip(groups, runner.targets)]
        needs = [not raw and display.needs_stats(job.scale, hint, kind=kind, bias=runner.has_bias)
                 for kind in kinds]
        if not raw and any(needs):
            accumulators = [_StatsAccumulator((out_rows, out_cols, len(g.channels) - g.has_alpha))
                            for g in groups]
            kept = [] if runner.map_bytes <= job.hold_bytes else None
            ranges = [need and display.needs_range(job.scale, hint, kind=kind, bias=runner.has_bias)
                      for need, kind in zip(needs, kinds)]
            if kept is None and not any(ranges):
                _sample_pass(runner, groups, accumulators, needs, plane)  # the sampled rows alone
            else:
                runner.passes = 1 if kept is not None else 2
                for rows, maps in runner.bands_of_maps():
                    for group, accumulator, need in zip(groups, accumulators, needs):
                        if need:
                            accumulator.add(rows, plane(maps, group, colour_only=True))
                    if kept is not None:
                        kept.append((rows, maps))
            stats = [a.stats() if need else display.MapStats(0.0, 0.0)
                     for a, need in zip(accumulators, needs)]
        else:
            stats = [display.MapStats(0.0, 0.0)] * len(groups)
        if not raw:
            mappings = [display.plan_display(st, kind=kind, **options) for st, kind in zip(stats, kinds)]
        bands = iter(kept) if kept is not None else runner.bands_of_maps()
        for _rows, maps in bands:
            if held is not None:
                held.append(maps)
            for group, sink, mapping in zip(groups, sinks, mappings):
                values = plane(maps, group)
                if raw:
                    sink.write_rows(np.ascontiguousarray(values, dtype=np.float32))
                    continue
                # groups are disjoint channels, so mapping in place is safe unless the maps are held
                scratch = held is None or not np.may_share_memory(values, maps)
                if group.has_alpha:
                    pixels = np.empty(values.shape, pixel_dtype)
                    display.apply_mapping(values[:, :, :-1], mapping, out=pixels[:, :, :-1])
                    display.apply_mapping(values[:, :, -1:], alpha_mapping, out=pixels[:, :, -1:])
                    sink.write_rows(pixels)
                else:
                    sink.write_rows(display.apply_mapping(values, mapping, overwrite=scratch))
        for sink in sinks:
            sink.commit()
    for group, target in zip(groups, runner.targets):
        record["outputs"].append({"path": target, "format": runner.fmt,
                                  "shape": [out_rows, out_cols, len(group.channels)], "map": group.label})
    if runner.notes:
        record["notes"] = sorted(set(runner.notes))


def _sample_pass(runner: _Runner, groups: Sequence[_Group], accumulators: Sequence[_StatsAccumulator],
                 needs: Sequence[bool], plane: Callable[..., np.ndarray]) -> None:
    """Statistics from the sampled rows alone (:func:`convcli.display.sample_rows`), computed in
    pieces of at most :attr:`Job.band_bytes` of maps: for ``auto`` on feature maps, whose mapping
    depends on the sample's percentile only (:func:`convcli.display.needs_range`)."""
    wanted = sorted({row for accumulator, need in zip(accumulators, needs) if need
                     for row in accumulator.sampled})
    if not wanted:
        return
    row_bytes = max(1, runner.plan.raw_shape[1] * runner.plan.raw_shape[2] * runner.plan.itemsize)
    piece = max(1, runner.job.band_bytes // row_bytes)
    for start in range(0, len(wanted), piece):
        rows = wanted[start:start + piece]
        maps = runner.render_sampled(rows)
        position = {row: index for index, row in enumerate(rows)}
        for group, accumulator, need in zip(groups, accumulators, needs):
            if need:
                mine = [position[row] for row in accumulator.sampled if row in position]
                accumulator.add_rows(plane(maps[mine], group, colour_only=True))


_VERIFY_TOLERANCE = {"float32": 1e-4, "float64": 1e-10}  # relative to max |reference|


def _verify(runner: _Runner, maps: np.ndarray) -> dict[str, Any]:
    """Recompute with scipy.signal on the whole image; a mismatch is an error."""
    from convcli.verify import max_abs_difference, reference_conv2d, reference_conv_transpose2d

    job, plan = runner.job, runner.plan
    if job.reduce != "none":
        raise OptionError("--verify compares the raw maps; drop --reduce to verify")
    if job.activation != "none":
        raise OptionError("--verify compares the raw maps; drop --activation to verify")
    image = np.asarray(runner.colour_source.read_rows(0, plan.in_shape[0])[..., :plan.channels_used],
                       dtype=np.float64)
    if runner.alpha_plan is not None:  # --alpha keep: verify the convolution of the premultiplied colour
        from convcli.pipeline.render import render_rows

        raw = render_rows(plan, runner.colour_source, Rows(0, plan.out_shape[0]))  # planned without bias
    geometry = {k: v for k, v in job.geometry.items() if k not in ("bias", "method", "dtype")}
    reference = (reference_conv_transpose2d if job.transpose else reference_conv2d)(
        image, job.weights, **geometry)
    if runner.alpha_plan is None:
        raw = _without_bias(maps, job.geometry.get("bias", 0), plan.n_filters)
    difference = max_abs_difference(raw, reference)
    peak = max(1.0, float(np.max(np.abs(reference))) if reference.size else 1.0)
    relative = difference / peak
    dtype_name = str(runner.dtype)
    ok = relative <= _VERIFY_TOLERANCE.get(dtype_name, 1e-4)
    if not ok:
        raise ShapeError(
            f"{runner.name}: --verify: result differs from scipy.signal by {difference:.3g} "
            f"(relative {relative:.3g}); please report this"
        )
    return {"max_abs_difference": difference, "relative": relative, "ok": ok}


def _without_bias(maps: np.ndarray, bias: Any, n_filters: int) -> np.ndarray:
    """The maps minus the bias that the core added (scalar, per kernel or per channel)."""
    values = np.asarray(bias, dtype=np.float64).ravel()
    if values.size == 1:
        return maps - values[0]
    if values.size == maps.shape[2]:
        return maps - values
    return maps - np.repeat(values, maps.shape[2] // n_filters)


def _write_montage(runner: _Runner, maps: np.ndarray, target: str, record: dict[str, Any]) -> None:
    """The labelled contact sheet of all maps next to the input."""
    from convcli import imageio
    from convcli.montage import make_montage

    source, plan = runner.input_source, runner.plan
    image = np.asarray(source.read_rows(0, plan.in_shape[0])[..., :plan.channels_used], dtype=np.float32)
    sheet = make_montage(maps, runner.names, input_image=image)
    imageio.write_output(target, imageio.encode_png(sheet), force=runner.destination.force,
                         protect=list(runner.destination.protect))
    record["outputs"].append({"path": target, "format": "png", "shape": list(sheet.shape), "map": "montage"})


def describe_error(exc: BaseException, source: str) -> ConvcliError:
    """A :class:`ConvcliError` for ``exc`` raised while filtering ``source`` (MemoryError included)."""
    if isinstance(exc, ConvcliError):
        return exc
    if isinstance(exc, MemoryError):
        from convcli.errors import ImageError

        return ImageError(f"{source}: not enough memory to filter it")
    if isinstance(exc, OSError):
        return OutputError(f"{source}: {exc.strerror or exc}")
    raise exc

