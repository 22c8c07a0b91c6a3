"""Names of a batch's outputs, decided for the whole batch before the first write.

``convcli apply`` writes ``<stem>.<label><ext>`` per input and map (one file
per input for ``npy``/``npz``). This module plans every name first, so that a
batch cannot fail half-way on a name clash:

* **Collisions** — two inputs that would produce one name (``chelsea.png``
  and ``chelsea.jpg`` both want ``chelsea.sobel-x.png``) both keep their
  input suffix: ``chelsea.png.sobel-x.png``, ``chelsea.jpg.sobel-x.png``.
  Names without a collision stay ``<stem>.<label><ext>``. Inputs that still
  clash (``a/x.png`` and ``b/x.png`` into one directory) are an
  :class:`~convcli.errors.OptionError` before anything is written.
* **Own outputs** — an input found in a directory whose path is an output of
  this batch (a re-run into the input directory finds ``x.blur.png`` next to
  ``x.png``) is skipped, not filtered into ``x.blur.blur.png``. A file named
  on the command line is never skipped this way (it stays a protected input).
* **Resume** — with ``skip_existing`` an input whose outputs all exist is
  skipped (an interrupted batch goes on where it stopped).

Kernel labels come from :func:`load_labelled_bank`: ``-k NAME=SPEC`` names a
kernel; inline weights without a name get a short content hash (``k-3fa2``),
so two runs with different inline kernels never share a name.

The parse order of one ``-k`` spec: an existing file path (for a model file
``PATH:MEMBER``, the part before the last ``:``), then a ``NAME=`` prefix
(NAME without ``:`` ``,`` ``;`` ``=`` or spaces), then presets, then inline
weights (the last two as :func:`convcli.presets.resolve_kernel`).
"""

from __future__ import annotations

import hashlib
import os
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from convcli.errors import OptionError

__all__ = [
    "Planned",
    "Request",
    "inline_label",
    "load_labelled_bank",
    "plan_batch",
    "split_name",
]

_NAME = re.compile(r"^([^:,;=\s]+)=(.+)$", re.S)


def _is_file(text: str) -> bool:
    try:
        return Path(text).expanduser().is_file()
    except (OSError, ValueError, RuntimeError):
        return False


def split_name(spec: str) -> tuple[str | None, str]:
    """``"edge=1,0,-1"`` → ``("edge", "1,0,-1")``; a file path or a spec without ``NAME=`` → ``(None, spec)``.

    A path that exists is never split (``a=b.npy`` may be a file name), nor is
    a model file's ``PATH:MEMBER`` whose PATH exists.
    """
    text = spec.strip()
    if _is_file(text) or (":" in text and _is_file(text.rsplit(":", 1)[0])):
        return None, text
    match = _NAME.match(text)
    if match is None:
        return None, text
    return match.group(1), match.group(2).strip()


def inline_label(weights: Any) -> str:
    """``k-`` and 4 hex digits of a hash of the weights (shape and float64 bytes)."""
    import numpy as np

    array = np.ascontiguousarray(weights, dtype=np.float64)
    digest = hashlib.sha1(repr(array.shape).encode() + array.tobytes()).hexdigest()
    return f"k-{digest[:4]}"


def load_labelled_bank(specs: Sequence[str]) -> Any:
    """Resolve ``-k`` specs into one bank with file-name-safe, distinct labels.

    ``NAME=SPEC`` labels SPEC's kernel ``NAME`` (a bank of several: ``NAME-1``,
    ``NAME-2``, …); unnamed inline weights are labelled :func:`inline_label`;
    a repeated label gets ``-2``, ``-3``. The bank's name joins the parts'
    names with ``+``.

    Raises
    ------
    KernelError
        From :func:`convcli.presets.resolve_kernel` (naming the spec).
    OptionError
        For ``NAME=`` with an empty NAME or SPEC.
    """
    from convcli.errors import KernelError
    from convcli.kernels import KernelBank
    from convcli.presets import relabel_unique, resolve_kernel

    if not specs:
        raise KernelError("no kernel given; use -k NAME (convcli kernels list)")
    parts: list[tuple[str, list[Any]]] = []
    for spec in specs:
        name, text = split_name(spec)
        bank = resolve_kernel(text)
        if getattr(bank, "layer", None) is not None:
            if len(specs) > 1:
                raise KernelError(
                    f"-k {spec}: a model layer must be the only -k (its kernels sum over its groups' "
                    "channels, with its own bias and padding); filter with the other kernels in a second run"
                )
            return bank  # the layer's own labels (conv1-00, …) and semantics
        members = list(bank.kernels)
        if name is not None:
            labels = [name] if len(members) == 1 else [f"{name}-{i}" for i in range(1, len(members) + 1)]
            bank_name = name
        elif bank.name == "inline":
            labels = [inline_label(kernel.weights) for kernel in members]
            bank_name = labels[0] if len(labels) == 1 else "inline"
        else:
            labels = [kernel.name for kernel in members]
            bank_name = bank.name
        parts.append((bank_name, [(label, kernel) for label, kernel in zip(labels, members)]))
    if len(parts) == 1 and all(label == kernel.name for label, kernel in parts[0][1]):
        return resolve_kernel(split_name(specs[0])[1])
    kernels = relabel_unique(pair for _, members in parts for pair in members)
    return KernelBank("+".join(name for name, _ in parts), kernels)


@dataclass(frozen=True)
class Request:
    """One input of a batch: its path (``-`` for stdin), its map labels and the output extension."""

    source: str
    labels: tuple[str, ...]
    ext: str  # ".png", ".tiff", ".npy", ".npz"
    #: False for an input named on the command line: it is never skipped as an output of the
    #: run (and stays protected from being overwritten); True for a file found in a directory.
    found: bool = True


@dataclass
class Planned:
    """The decided names of one input: ``targets`` (one per label, in order) and ``montage``.

    ``skip`` is None, or why the input is not processed (it is an output of
    this batch, or ``--skip-existing`` found all its outputs).
    """

    source: str
    targets: list[str] = field(default_factory=list)
    montage: str | None = None
    skip: str | None = None
    stem: str | None = None


def _stem(source: str, keep_suffix: bool) -> str:
    if source == "-":
        return "stdin"
    name = Path(source).name
    return name if keep_suffix else Path(source).stem


def _key(path: str) -> str:
    return os.path.normcase(os.path.abspath(path))


def plan_batch(
    requests: Sequence[Request],
    folder: str | None,
    *,
    montage: str | None = None,
    skip_existing: bool = False,
) -> list[Planned]:
    """Decide every output name of a batch written into ``folder`` (None: the current directory).

    Returns one :class:`Planned` per request, in order. ``montage`` (a
    ``sheet.png`` path) becomes ``sheet.<stem>.png`` per input, with the same
    stems as the outputs.

    Raises
    ------
    OptionError
        When two inputs would still write one file after keeping their
        suffixes (same file name in different directories), naming both.
    """
    base = Path(folder) if folder else Path()
    active = list(requests)
    skipped: dict[int, str] = {}
    first_seen: dict[str, int] = {}
    for index, request in enumerate(active):  # the same file twice: once is enough
        key = request.source if request.source == "-" else _key(request.source)
        if key in first_seen:
            skipped[index] = f"{request.source}: skipped, given twice"
        first_seen.setdefault(key, index)
    while True:
        keep: set[int] = set()
        names = _names(active, base, keep, skipped)
        clashes = _clashing(names, skipped)
        if clashes:  # both (all) inputs of a clash keep their suffix
            keep = {index for group in clashes for index in group}
            names = _names(active, base, keep, skipped)
            still = _clashing(names, skipped)
            if still:
                first, second = (active[i].source for i in sorted(still[0])[:2])
                target = next(t for t in names[sorted(still[0])[0]]
                              if t in set(names[sorted(still[0])[1]]))
                raise OptionError(
                    f"{first} and {second} would both write {target}; rename one or run them separately"
                )
        outputs = {_key(target): index for index, targets in names.items() for target in targets}
        newly = {index for index, request in enumerate(active) if index not in skipped and request.found
                 and request.source != "-" and _key(request.source) in outputs}
        if not newly:
            break
        for index in newly:
            skipped[index] = f"{active[index].source}: skipped, an output of this run"
    planned = []
    for index, request in enumerate(active):
        item = Planned(request.source, names.get(index, []), stem=_stem(request.source, index in keep))
        if montage and index not in skipped:
            sheet = Path(montage)
            item.montage = str(sheet.with_name(f"{sheet.stem}.{item.stem}{sheet.suffix or '.png'}"))
        if index in skipped:
            item.skip = skipped[index]
        elif skip_existing and item.targets and all(Path(t).exists() for t in item.targets):
            item.skip = f"{request.source}: skipped, its outputs exist (--skip-existing)"
        planned.append(item)
    return planned


def _names(requests: Sequence[Request], base: Path, keep: Iterable[int],
           skipped: dict[int, str]) -> dict[int, list[str]]:
    kept = set(keep)
    return {
        index: [str(base / f"{_stem(request.source, index in kept)}.{label}{request.ext}")
                for label in request.labels]
        for index, request in enumerate(requests) if index not in skipped
    }


def _clashing(names: dict[int, list[str]], skipped: dict[int, str]) -> list[set[int]]:
    """Groups of inputs that share an output name."""
    owners: dict[str, set[int]] = {}
    for index, targets in names.items():
        for target in targets:
            owners.setdefault(_key(target), set()).add(index)
    groups: list[set[int]] = []
    for indices in owners.values():
        if len(indices) > 1 and indices not in groups:
            groups.append(indices)
    return groups
