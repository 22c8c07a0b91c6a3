"""A batch of inputs for one job: which files, where their outputs go, and running each of them.

``convcli apply`` is a thin layer over this module: it parses the options,
builds a :class:`convcli.jobfactory.JobFactory` and a :class:`Batch`, and
reports the :class:`Outcome` of every input. Nothing here prints.

1. **Inputs** — :func:`expand_inputs`: a directory becomes its image files
   and zarr arrays, sorted; a directory without any is one failed entry, so a
   batch reports it and goes on.
2. **Outputs, checked first** — :func:`check_output` and
   :func:`check_file_output` refuse a bad ``-o`` / ``-f`` / ``--montage``
   before any image is read.
3. **Names, decided first** — :func:`plan_names`: every output name of a
   batch written into a directory is decided before the first write
   (:func:`convcli.naming.plan_batch`: colliding stems keep their suffix, the
   run's own outputs found among the inputs are skipped); while running,
   :meth:`Batch.claim` refuses a path this run already wrote.
4. **Frames** — a multi-frame input (animated GIF/WebP/APNG, multi-page
   TIFF) is decoded frame by frame (``--frames``): into one file per map as
   TIFF pages, animated WebP frames or a ``(T, H', W', N)`` npy, else one
   file per frame and map, ``<stem>.fNNN.<label><ext>``.
5. **Running** — :meth:`Batch.outcomes` yields one :class:`Outcome` per input:
   in this process one after the other, or, with ``jobs``/``scheduler``, the
   one-frame inputs of a job that is the same for every input on worker
   processes or Dask (:func:`convcli.distributed.execute`), as they finish.
   Errors a user can cause in one input are its outcome's ``error``; an
   :class:`~convcli.errors.OptionError` is the same for every input and is
   raised (it stops the batch).
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from convcli.errors import ConvcliError, ImageError, OptionError, OutputError

__all__ = [
    "IMAGE_SUFFIXES",
    "ONE_FILE_FORMATS",
    "Batch",
    "BatchOptions",
    "Entry",
    "Outcome",
    "check_file_output",
    "check_output",
    "expand_inputs",
    "files_per_input",
    "plan_names",
    "requested_format",
]

IMAGE_SUFFIXES = frozenset({".png", ".jpg", ".jpeg", ".tif", ".tiff", ".bmp", ".webp", ".gif", ".npy"})
"""File suffixes taken from a directory given as an input (besides zarr arrays)."""

ONE_FILE_FORMATS = ("tiff", "webp", "npy")
"""Output formats that hold every frame of a multi-frame input in one file."""

Entry = tuple[str, ConvcliError | None]
"""One input of a batch: its path (``-``: stdin) and why it already failed (None: it did not)."""

_SKIPPED_EXISTING = "{}: skipped, its outputs exist (--skip-existing)"


# ---------------------------------------------------------------------------
# inputs, output checks and names (nothing is read or written)


def expand_inputs(inputs: Sequence[str]) -> list[Entry]:
    """The batch's entries: a directory becomes its image files and zarr arrays (sorted).

    Parameters
    ----------
    inputs : sequence of str
        Paths as given: files, directories, zarr array directories, ``-``.

    Returns
    -------
    list of (str, ConvcliError or None)
        Other paths stay as given, with no error. A directory with no file
        of :data:`IMAGE_SUFFIXES` and no zarr array is one entry
        ``(dir, ImageError)`` naming the suffixes.
    """
    from convcli.pipeline.sources import is_zarr_array

    expanded: list[Entry] = []
    for source in inputs:
        path = Path(source)
        if source != "-" and path.is_dir() and not is_zarr_array(path):
            files = sorted(str(p) for p in path.iterdir()
                           if (p.suffix.lower() in IMAGE_SUFFIXES and p.is_file()) or is_zarr_array(p))
            if not files:
                expanded.append((source, ImageError(
                    f"{source}: directory has no image files "
                    f"({', '.join(sorted(IMAGE_SUFFIXES))}) or zarr arrays")))
            expanded.extend((file, None) for file in files)
        else:
            expanded.append((source, None))
    return expanded


def check_output(output: str | None, *, out_format: str | None = None, montage: str | None = None,
                 several: bool = False, stdout_taken: bool = False) -> None:
    """Refuse a bad ``-o`` / ``-f`` / ``--montage`` before any image is read.

    Parameters
    ----------
    output : str or None
        ``-o``: None, ``-`` (stdout), a directory (existing, or ending in a
        separator) or a file.
    out_format : str, optional
        ``-f``.
    montage : str, optional
        ``--montage`` path (a PNG).
    several : bool
        The batch has more than one input (it needs a directory).
    stdout_taken : bool
        Standard output is already used (``--json``).

    Raises
    ------
    OptionError
        A montage not named ``.png``; ``-o -`` with ``stdout_taken`` or
        ``several``; an ``-o`` that exists and is not a directory; a file ``-o``
        for ``several`` inputs; a suffix that disagrees with ``out_format`` or
        names no format; an output directory that does not exist.
    """
    from convcli.imageio import format_from_suffix
    from convcli.job import is_directory_target

    if montage and Path(montage).suffix.lower() not in ("", ".png"):
        raise OptionError(f"--montage {montage}: the contact sheet is a PNG; name it .png")
    if output is None:
        return
    if output == "-":
        if stdout_taken:
            raise OptionError("--json and -o - both want stdout; choose one")
        if several:
            raise OptionError("a batch of several inputs cannot be written to stdout (-o -); use -o DIR")
        return
    if is_directory_target(output):
        if Path(output).exists() and not Path(output).is_dir():
            raise OptionError(f"-o {output}: exists and is not a directory")
        return  # an existing directory, or DIR/ (created just before the first write)
    if several:
        raise OptionError(f"several inputs need a directory: -o {output}/ (created if missing), "
                          f"not the file {output}")
    suffix = Path(output).suffix
    suffix_format = ("zarr" if suffix.lower() == ".zarr" else format_from_suffix(output)) if suffix else None
    if out_format and suffix_format and suffix_format != out_format:
        raise OptionError(
            f"-o {output} names a {suffix_format} file but -f asks for {out_format}; "
            "make them agree (or drop one)"
        )
    if not out_format and suffix and suffix_format is None:
        raise OptionError(
            f"-o {output}: unknown output suffix {suffix!r}; use .png, .jpg, .webp, .tif/.tiff, .npy, .npz "
            "or .zarr, "
            "or name the format with -f"
        )
    parent = Path(output).parent
    if not parent.is_dir():
        what = "is not a directory" if parent.exists() else "does not exist"
        raise OptionError(f"-o {output}: output directory {parent} {what}")


def files_per_input(job: Any, source: str, out_format: str | None) -> tuple[str, tuple[str, ...]]:
    """The output format and the labels of one input's files, from its name (nothing is read).

    Parameters
    ----------
    job : convcli.job.Job
    source : str
        The input path.
    out_format : str or None
        The format asked for (:func:`requested_format`); None: ``npy`` for a
        ``.npy``/``.zarr`` input, else ``png``.

    Returns
    -------
    (str, tuple of str)
        The format and one label per file: the kernels' labels,
        ``<bank>-<reduce>`` with a reduce step, and a single label (the map's,
        else the bank's name) for ``npy``/``npz``/``zarr``, which hold every map.
    """
    fmt = out_format or ("npy" if source.lower().endswith((".npy", ".zarr")) else "png")
    if job.reduce != "none":
        labels: tuple[str, ...] = (f"{job.bank_name}-{job.reduce}",)
    else:
        labels = tuple(job.labels)
    if fmt in ("npy", "npz", "zarr"):
        labels = (labels[0] if len(labels) == 1 else job.bank_name,)
    return fmt, labels


def requested_format(output: str | None, out_format: str | None) -> str | None:
    """``out_format`` (``-f``), else the format the ``output`` file's suffix names; None: per input."""
    from convcli.imageio import format_from_suffix
    from convcli.job import is_directory_target

    if out_format:
        return out_format
    if output and output != "-" and not is_directory_target(output) and Path(output).suffix:
        return "zarr" if Path(output).suffix.lower() == ".zarr" else format_from_suffix(output)
    return None


def check_file_output(output: str | None, out_format: str | None, job: Any, sources: Sequence[str]) -> None:
    """Refuse ``-o NAME`` without a suffix: it is not a stem (a typo of ``NAME/``?).

    Raises
    ------
    OptionError
        For several maps (it names them and the two ways out), or for one
        map without ``out_format`` (no format to write).
    """
    from convcli.job import is_directory_target

    if not output or output == "-" or is_directory_target(output) or Path(output).suffix:
        return
    _fmt, labels = files_per_input(job, sources[0] if sources else "", requested_format(output, out_format))
    if len(labels) > 1:
        raise OptionError(
            f"-o {output}: {len(labels)} maps ({', '.join(labels)}) need a directory (-o {output}/, "
            f"created) or a file name with a suffix (-o {output}.png writes {output}.{labels[0]}.png, …)"
        )
    if not out_format:
        raise OptionError(
            f"-o {output}: no suffix to tell the format; name the file (.png, .tiff, .jpg, .webp, .npy, "
            f".npz, .zarr), give -f, or write {output}/ for a directory"
        )


def plan_names(job: Any, entries: Sequence[Entry], *, output: str | None = None,
               out_format: str | None = None, montage: str | None = None,
               named_inputs: Sequence[str] = ()) -> list[Any]:
    """Every output name of a batch written into a directory, decided before the first write.

    Parameters
    ----------
    job : convcli.job.Job
    entries : sequence of Entry
        :func:`expand_inputs`.
    output : str or None
        ``-o``: None (the current directory), a directory, a file or ``-``.
    out_format : str or None
        ``-f``.
    montage : str or None
        A contact sheet per input (``sheet.png`` → ``sheet.<stem>.png``).
    named_inputs : sequence of str
        The inputs as given: these are never skipped as outputs of the run.

    Returns
    -------
    list of convcli.naming.Planned or None
        One per entry: None for a failed entry, and for every entry when
        ``output`` is a file or ``-`` (its names follow from it).

    Raises
    ------
    OptionError
        Two inputs would still write one file (:func:`convcli.naming.plan_batch`).
    """
    from convcli.job import _EXTENSIONS, is_directory_target
    from convcli.naming import Request, plan_batch

    if output == "-" or (output is not None and not is_directory_target(output)):
        return [None] * len(entries)
    fmt_given = requested_format(output, out_format)
    named = set(named_inputs)
    requests = []
    for source, problem in entries:
        if problem is None:
            fmt, labels = files_per_input(job, source, fmt_given)
            requests.append(Request(source, labels, _EXTENSIONS.get(fmt, f".{fmt}"),
                                    found=source not in named))
    planned = iter(plan_batch(requests, output, montage=montage))
    return [next(planned) if problem is None else None for _, problem in entries]


# ---------------------------------------------------------------------------
# running a batch


@dataclass(frozen=True)
class BatchOptions:
    """Where a batch's outputs go and which inputs and frames it runs.

    Attributes
    ----------
    output : str or None
        ``-o`` (see :class:`convcli.job.Destination`).
    out_format : str or None
        ``-f``.
    force : bool
        Overwrite existing outputs (never an input).
    montage : str or None
        Also write a contact sheet (in a batch of several: one per input,
        ``sheet.<stem>.png``).
    skip_existing : bool
        Do not run an input whose outputs all exist.
    frames : str
        ``--frames`` of multi-frame inputs: ``all``, ``N`` or ``A-B``.
    """

    output: str | None = None
    out_format: str | None = None
    force: bool = False
    montage: str | None = None
    skip_existing: bool = False
    frames: str = "all"


@dataclass(frozen=True)
class Outcome:
    """What became of one input of a batch: a record, a skip or an error.

    Attributes
    ----------
    index : int
        Its position among :attr:`Batch.entries`.
    source : str
        The input path.
    record : dict or None
        Its JSON record (:func:`convcli.job.run`; a multi-frame input adds
        ``frames``), None when it was skipped or failed.
    error : ConvcliError or None
        Why it failed.
    skipped : str or None
        Why it was not run (``<input>: skipped, …``).
    outputs_exist : bool
        It was skipped because its outputs exist (``skip_existing``), not
        because the batch's names plan skipped it (given twice, an output of
        this run).
    notes : tuple of str
        Notes on how it was filtered, one line each.
    written : tuple of (str, tuple of int)
        Every file written (``-``: stdout) with the shape of one image in it,
        ``(H, W[, C])`` (of one frame for a file holding every frame).
    verify : dict or None
        The scipy check of ``verify`` jobs (``max_abs_difference``,
        ``relative``), when there is one to show.
    """

    index: int
    source: str
    record: dict[str, Any] | None = None
    error: ConvcliError | None = None
    skipped: str | None = None
    outputs_exist: bool = False
    notes: tuple[str, ...] = ()
    written: tuple[tuple[str, tuple[int, ...]], ...] = ()
    verify: dict[str, Any] | None = None


def _mkdir_reason(error: OSError) -> str:
    if isinstance(error, (NotADirectoryError, FileExistsError)):
        return "a part of it is not a directory"
    return error.strerror or str(error)


def _check_creatable(directory: str) -> None:
    """Raise :class:`OutputError` if ``directory`` (``-o DIR/``) surely cannot be created: an
    existing part of its path is a file, or its nearest existing folder is not writable."""
    path = Path(directory).absolute()
    existing = path
    while not existing.exists() and existing != existing.parent:
        existing = existing.parent
    if not existing.is_dir():
        raise OutputError(f"-o {directory}: cannot create the output directory "
                          "(a part of it is not a directory)")
    if existing != path and not os.access(existing, os.W_OK | os.X_OK):
        raise OutputError(f"-o {directory}: cannot create the output directory "
                          f"({existing} is not writable)")


class Batch:
    """The inputs of one run, their planned output names and what this run has written.

    Building it expands the inputs, checks the outputs, plans every name and
    creates an ``-o DIR/`` that does not exist yet, in that order, before any
    image is read.

    Parameters
    ----------
    inputs : sequence of str
        As given: files, directories, zarr arrays, ``-`` (stdin, once).
    jobs : convcli.jobfactory.JobFactory
        The job of each opened input.
    options : BatchOptions
    stdout_taken : bool
        Standard output is used by something else (``--json``): ``-o -`` is refused.

    Attributes
    ----------
    entries : list of Entry
        :func:`expand_inputs` of ``inputs``.
    sources : list of str
        The entries' paths.
    several : bool
        More than one entry.
    plans : list of convcli.naming.Planned or None
        :func:`plan_names`, one per entry.
    protected : list of str
        The input files that no output may overwrite (not those skipped as
        outputs of this run, not stdin).
    written : set of str
        Absolute paths this run has written so far.

    Raises
    ------
    OptionError
        stdin given twice; a bad output (:func:`check_output`,
        :func:`check_file_output`); two inputs that would write one file.
    """

    def __init__(self, inputs: Sequence[str], jobs: Any, options: BatchOptions, *,
                 stdout_taken: bool = False) -> None:
        self.jobs = jobs
        self.options = options
        self.entries = expand_inputs(inputs)
        self.sources = [source for source, _ in self.entries]
        if self.sources.count("-") > 1:
            raise OptionError("stdin (-) can be read only once")
        self.several = len(self.entries) > 1
        output = options.output
        check_output(output, out_format=options.out_format, montage=options.montage,
                     several=self.several, stdout_taken=stdout_taken)
        check_file_output(output, options.out_format, jobs.job, self.sources)
        self.plans = plan_names(jobs.job, self.entries, output=output, out_format=options.out_format,
                                montage=options.montage if self.several else None,
                                named_inputs=tuple(inputs))
        # -o DIR/: checked now, created before the first input runs (a batch that fails first,
        # e.g. on an unreachable scheduler, leaves no empty directory behind)
        self._directory = output if output and output != "-" and output.endswith(("/", "\\")) else None
        if self._directory is not None:
            _check_creatable(self._directory)
        # files skipped as this run's own outputs are outputs, not protected inputs
        own_outputs = {index for index, plan in enumerate(self.plans)
                       if plan is not None and (plan.skip or "").endswith("an output of this run")}
        self.protected = [source for index, source in enumerate(self.sources)
                          if source != "-" and index not in own_outputs]
        self.written: set[str] = set()

    # -- names ------------------------------------------------------------

    def destination(self, source: str, plan: Any = None) -> Any:
        """The :class:`convcli.job.Destination` of one input.

        ``plan`` (a :class:`convcli.naming.Planned`) gives the stem and
        montage decided for the whole batch; without one, a montage in a batch
        of several is ``sheet.<stem>.png`` per input.
        """
        from convcli.job import Destination

        options = self.options
        if plan is not None:
            return Destination(output=options.output, stem=plan.stem, force=options.force,
                               protect=tuple(self.protected), montage=plan.montage or (
                                   None if self.several else options.montage))
        montage = options.montage
        if montage and self.several:
            target = Path(montage)
            stem = "stdin" if source == "-" else Path(source).stem
            montage = str(target.with_name(f"{target.stem}.{stem}{target.suffix or '.png'}"))
        return Destination(output=options.output, force=options.force, protect=tuple(self.protected),
                           montage=montage)

    def claim(self, paths: Sequence[str]) -> None:
        """Refuse paths this run already wrote, or one path twice (``-`` is never refused).

        Raises
        ------
        OutputError
            Naming the first such path.
        """
        seen: set[str] = set()
        for target in paths:
            if target == "-":
                continue
            key = os.path.abspath(target)
            if key in self.written or key in seen:
                raise OutputError(
                    f"{target}: already written by this run for another input or map; "
                    "use -o DIR with distinct input names"
                )
            seen.add(key)

    def _done(self, index: int, source: str, record: dict[str, Any], *, notes: Sequence[str] | None = None,
              frame_shapes: bool = False, verify: bool = True) -> Outcome:
        """The outcome of a run input (its outputs are remembered as written)."""
        written = tuple((output["path"], tuple(output["shape"][1:] if frame_shapes else output["shape"]))
                        for output in record["outputs"])
        self.written.update(os.path.abspath(path) for path, _ in written if path != "-")
        return Outcome(index, source, record=record,
                       notes=tuple(record.get("notes", []) if notes is None else notes),
                       written=written, verify=record.get("verify") if verify else None)

    @staticmethod
    def _failed(index: int, source: str, exc: BaseException) -> Outcome:
        """The outcome of a failed input; an OptionError (the same for every input) is raised."""
        from convcli.job import describe_error

        if isinstance(exc, OptionError):
            raise exc
        return Outcome(index, source, error=describe_error(exc, source))

    # -- one input ----------------------------------------------------------

    def run_input(self, index: int, progress: Callable[[float], None] | None = None) -> Outcome:
        """Run entry ``index`` in this process (streaming; a multi-frame input frame by frame).

        Parameters
        ----------
        index : int
            Its position in :attr:`entries`.
        progress : callable, optional
            Called with the fraction of this input done (0–1] after every band.

        Returns
        -------
        Outcome
            A record; a skip (the plan's, or ``skip_existing`` finding every
            output); or the error of a failed entry or run.

        Raises
        ------
        OptionError
            The same for every input: the batch stops.
        """
        source, problem = self.entries[index]
        plan = self.plans[index]
        if problem is not None:
            return self._failed(index, source, problem)
        if plan is not None and plan.skip:
            return Outcome(index, source, skipped=plan.skip)
        self.make_output_directory()
        try:
            return self._run(index, source, plan, progress)
        except (ConvcliError, MemoryError) as exc:
            return self._failed(index, source, exc)

    def _frame_sources(self, source: str) -> list[tuple[Any, int | None, int]] | None:
        """The frames of a multi-frame input as in-memory sources, each with its index and the
        last index written; None for a one-frame input (streamed)."""
        from convcli import imageio
        from convcli.pipeline.sources import PillowSource

        frames = self.options.frames
        count = 1 if source == "-" else imageio.frame_count(source)
        if count <= 1:
            if frames not in ("all", "0", "0-0") and source != "-":
                imageio.select_frames(frames, 1, source)  # the error names the file
            return None
        pages = self._tiff_pages(source, imageio.select_frames(frames, count, source))
        if pages is not None:
            return pages
        loaded = imageio.read_frames(source, frames, max_pixels=self.jobs.max_pixels)
        last = loaded[-1].frame or 0
        return [(PillowSource(frame), frame.frame, last) for frame in loaded]

    def _tiff_pages(self, source: str, indices: range) -> list[tuple[Any, int | None, int]] | None:
        """The pages ``indices`` of a multi-page TIFF as streamed sources (tifffile reads every TIFF
        variant, big-endian BigTIFF included); None when the file is not a TIFF or some page cannot
        be read by region (Pillow then decodes the frames, as for GIF and WebP)."""
        from convcli.pipeline import sources

        if not sources.is_tiff(source):
            return None
        try:
            pages = [sources.TiffSource(source, frame=i, max_pixels=self.jobs.streamed_max_pixels)
                     for i in indices]
        except (ImageError, sources._NotStreamable, ValueError, OSError):
            return None
        return [(page, i, indices[-1]) for page, i in zip(pages, indices)]

    def _run(self, index: int, source: str, plan: Any, progress: Callable[[float], None] | None) -> Outcome:
        from convcli import imageio
        from convcli.job import output_format, planned_outputs, run
        from convcli.pipeline.sources import open_source

        destination = self.destination(source, plan)
        suffix_format = None
        frames = self._frame_sources(source)
        if frames is not None:
            job = self.jobs(frames[0][0])
            if output_format(job, destination, frames[0][0].mode) in ONE_FILE_FORMATS:
                return self._run_frames_into_one_file(index, job, source, frames, destination)
        if frames is None:
            opened = open_source(source, max_pixels=self.jobs.max_pixels,
                                 streamed_max_pixels=self.jobs.streamed_max_pixels)
            frames = [(opened, None, 0)]
        elif destination.output == "-":
            raise OptionError(f"{source}: {len(frames)} frames go to stdout only as -f npy; or use -o DIR")
        elif len(frames) == 1 and destination.output is not None:
            frames = [(frames[0][0], None, 0)]  # one frame picked (--frames N): written as -o names it
        elif destination.output is not None and not Path(destination.output).is_dir() \
                and not destination.output.endswith(("/", "\\")):
            # -o FILE with several frames: FILE's stem, one file per frame beside it, in FILE's format
            suffix_format = output_format(self.jobs(frames[0][0]), destination, frames[0][0].mode)
            target = Path(destination.output)
            destination = dataclasses.replace(destination, output=str(target.parent) + os.sep,
                                              stem=target.stem)
        skipped = Outcome(index, source, skipped=_SKIPPED_EXISTING.format(source), outputs_exist=True)
        records = []
        for opened, frame, last in frames:
            frame_destination = destination if frame is None else dataclasses.replace(
                destination, stem=imageio.frame_stem(destination.stem or opened.stem, frame, last))
            try:
                job = self.jobs(opened)
                if suffix_format is not None and job.out_format is None:
                    job = dataclasses.replace(job, out_format=suffix_format)
                planned = planned_outputs(job, opened, frame_destination)
                files = [path for path in planned if path != "-"]
                if self.options.skip_existing and files and all(Path(path).exists() for path in files):
                    if frame is None:
                        return skipped
                    continue
                self.claim(planned)
                records.append(run(job, opened, frame_destination, progress=progress))
            finally:
                opened.close()
        if not records:
            return skipped
        record = records[0]
        if len(records) > 1:
            record = dict(record, frames=[dict(r, frame=i) for r, (_, i, _) in zip(records, frames)],
                          outputs=[output for r in records for output in r["outputs"]])
        return self._done(index, source, record)

    def _run_frames_into_one_file(self, index: int, job: Any, source: str, frames: list,
                                  destination: Any) -> Outcome:
        """A multi-frame input into one file per map: a TIFF page, an animated WebP frame or a
        ``(T, H', W', N)`` npy slice per frame (the frames' arrays collected, then written)."""
        import numpy as np

        from convcli import imageio
        from convcli.job import output_format, planned_outputs, run

        collected: list[tuple[str, Any]] = []
        collecting = dataclasses.replace(destination, collect=collected)
        records = []
        for number, (opened, frame, _) in enumerate(frames):
            try:
                if number == 0:
                    planned = planned_outputs(job, opened, collecting)
                    self.claim(planned)
                    for target in planned:
                        if target != "-":
                            imageio.check_output_target(target, force=destination.force,
                                                        protect=list(destination.protect))
                records.append(dict(run(job, opened, collecting), frame=frame))
            finally:
                opened.close()
        fmt = output_format(job, destination, frames[0][0].mode)
        by_target: dict[str, list[Any]] = {}
        for target, array in collected:
            by_target.setdefault(target, []).append(array)
        metadata = dict(getattr(frames[0][0], "metadata", {}) or {})
        notes: list[str] = []
        outputs = []
        for target, arrays in by_target.items():
            if len({a.shape for a in arrays}) != 1 and fmt != "tiff":
                raise OptionError(f"{source}: frames of different sizes need -f tiff or one file per frame")
            if fmt == "tiff":
                data = imageio.encode_tiff_pages(arrays, metadata=metadata, strip=job.strip)
            elif fmt == "webp":
                data = imageio.encode_webp(arrays, quality=job.quality, lossless=job.lossless,
                                           metadata=metadata, strip=job.strip, notes=notes)
            else:
                data = imageio.encode_npy(np.stack(arrays))
            imageio.write_output(target, data, force=destination.force, protect=list(destination.protect))
            outputs.append({"path": target, "format": fmt, "shape": [len(arrays), *arrays[0].shape],
                            "frames": [r["frame"] for r in records]})
        record = dict(records[0], outputs=outputs, frames=records)
        notes = sorted(set(notes + [n for r in records for n in r.get("notes", [])]))
        return self._done(index, source, record, notes=notes, frame_shapes=True, verify=False)

    # -- every input --------------------------------------------------------

    def outcomes(self, *, jobs: int = 1, scheduler: str | None = None,
                 chunks: tuple[int, int | None] | None = None,
                 progress: Callable[[int, float], None] | None = None) -> Iterator[Outcome]:
        """Run every entry; yield one :class:`Outcome` per entry.

        Parameters
        ----------
        jobs : int
            Worker processes (``--jobs``; 0: one per core).
        scheduler : str, optional
            Dask: ``threads``, ``processes`` or a scheduler address.
        chunks : (rows, cols or None), optional
            Chunk size of a chunked zarr output (:func:`convcli.distributed.parse_chunks`).
        progress : callable, optional
            ``progress(index, fraction)`` after every band of an input run in
            this process.

        Yields
        ------
        Outcome
            With ``jobs == 1`` and no scheduler every entry in order, run
            here (:meth:`run_input`). Otherwise the one-frame inputs of a job
            that is the same for every input go to
            :func:`convcli.distributed.execute` and come back as they finish;
            the others (multi-frame inputs, fitted jobs, stdin, failed or
            skipped entries) run here first.

        Raises
        ------
        OptionError
            From an input (the same for every input) or the executor (bad
            scheduler, Dask missing).
        """
        if jobs == 1 and scheduler is None:
            for index in range(len(self.entries)):
                yield self.run_input(index, self._progress_of(index, progress))
            return
        from convcli import distributed, imageio

        runnable = []
        for index, ((source, problem), plan) in enumerate(zip(self.entries, self.plans)):
            single = False
            if self.jobs.same_for_every_input and problem is None and source != "-" \
                    and not (plan is not None and plan.skip):
                try:
                    single = source.lower().endswith((".npy", ".zarr")) or imageio.frame_count(source) <= 1
                except (ConvcliError, OSError):
                    single = False  # run here, which reports it
            if single:
                runnable.append(distributed.Task(index, source, self.destination(source, plan)))
            else:
                yield self.run_input(index, self._progress_of(index, progress))
        for outcome in distributed.execute(self.jobs.job, runnable, jobs=jobs, scheduler=scheduler,
                                           chunks=chunks, skip_existing=self.options.skip_existing,
                                           prepare=lambda task: self.make_output_directory()):
            index, source = outcome.task.index, outcome.task.source
            if outcome.error is not None:
                yield self._failed(index, source, outcome.error)
            elif outcome.record.get("skipped"):
                yield Outcome(index, source, skipped=outcome.record["skipped"], outputs_exist=True)
            else:
                yield self._done(index, source, outcome.record)

    def make_output_directory(self) -> None:
        """Create ``-o DIR/`` (once, before the first input writes; checked when the batch was made).

        Raises
        ------
        OutputError
            It cannot be created.
        """
        if self._directory is None:
            return
        try:
            Path(self._directory).mkdir(parents=True, exist_ok=True)
        except OSError as error:
            raise OutputError(f"-o {self._directory}: cannot create the output directory "
                              f"({_mkdir_reason(error)})") from None
        self._directory = None

    @staticmethod
    def _progress_of(index: int, progress: Callable[[int, float], None] | None
                     ) -> Callable[[float], None] | None:
        if progress is None:
            return None
        return lambda fraction: progress(index, fraction)
