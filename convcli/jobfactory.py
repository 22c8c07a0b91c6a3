"""The :class:`convcli.job.Job` of each input of a run: the shared one, or one fitted to the input.

A bank of plain kernels gives every input the same job. A model layer
(``-k FILE:NAME``) or ``--groups`` depends on the input: its channel count
``C`` decides how the PyTorch weights ``(F, C/G, kh, kw)`` meet the image
(``G`` groups, each kernel summing over its group's ``C/G`` channels, run as a
dense block-diagonal bank in the ``sum`` channel mode,
:func:`convcli.layers.expand_groups`), and for an ONNX node with SAME padding
its size decides the pads (:func:`convcli.layers.plan_layer`).
:class:`JobFactory` makes that job per opened source.

:func:`memory_budgets` reads the band and hold budgets of a job from the
environment.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Iterable, Mapping
from typing import Any

from convcli.errors import ConvcliError, OptionError

__all__ = ["JobFactory", "layer_options", "memory_budgets"]

_BYTE_UNITS = {"k": 1 << 10, "m": 1 << 20, "g": 1 << 30}


def memory_budgets(environ: Mapping[str, str]) -> dict[str, int]:
    """The memory budgets a job takes from ``CONVCLI_BAND_BYTES`` / ``CONVCLI_HOLD_BYTES``.

    Parameters
    ----------
    environ : mapping of str to str
        The environment (``os.environ``).

    Returns
    -------
    dict of str to int
        ``band_bytes`` and/or ``hold_bytes`` (:class:`convcli.job.Job` fields),
        only for the variables that are set and not blank. A value is a number
        of bytes with an optional unit ``k``, ``m``, ``g`` (×1024, ×1024², ×1024³,
        any case): ``64M`` → 67108864; a fraction is truncated after scaling.

    Raises
    ------
    OptionError
        A value that is not a non-negative number of bytes, naming the variable.
    """
    budgets = {}
    for key, variable in (("band_bytes", "CONVCLI_BAND_BYTES"), ("hold_bytes", "CONVCLI_HOLD_BYTES")):
        text = environ.get(variable, "").strip()
        if not text:
            continue
        factor = _BYTE_UNITS.get(text[-1].lower(), 1)
        number = text[:-1] if factor != 1 else text
        try:
            value = int(float(number) * factor)
        except ValueError:
            value = -1
        if value < 0:
            raise OptionError(f"{variable} must be a number of bytes (e.g. 64M), got {text!r}")
        budgets[key] = value
    return budgets


def layer_options(given: Iterable[str], geometry: Mapping[str, Any], transpose: bool) -> dict[str, Any]:
    """The options the user gave explicitly, as :func:`convcli.layers.plan_layer` takes them.

    Parameters
    ----------
    given : iterable of str
        Names of the explicit options among ``stride``, ``padding``,
        ``dilation``, ``output_padding``, ``bias``, ``border``, ``transpose``
        (``channels`` is left out: a layer always sums over its groups).
    geometry : mapping
        The parsed geometry (:attr:`convcli.job.Job.geometry`).
    transpose : bool
        ``--transpose``.

    Returns
    -------
    dict
        ``{name: value}``; ``border`` is ``zero`` and ``output_padding``
        ``(0, 0)`` where the geometry has none (transposed / forward).
    """
    options: dict[str, Any] = {}
    for key in given:
        if key == "channels":
            continue
        if key == "transpose":
            options[key] = transpose
        elif key == "border":
            options[key] = geometry.get("border", "zero")
        elif key == "output_padding":
            options[key] = geometry.get("output_padding", (0, 0))
        else:
            options[key] = geometry[key]
    return options


class JobFactory:
    """The job for one opened input (call it with the source).

    The shared ``job``, or, for a model layer or ``groups``, a copy fitted to
    the input: for ``groups`` the bank ``(F, kh, kw)`` becomes the dense
    ``(F, kh, kw, C)`` bank of :func:`convcli.layers.dense_grouped_bank`; for
    a layer, its weights, labels, transposition and geometry come from
    :func:`convcli.layers.plan_layer` (the explicit ``given`` options win,
    PyTorch's defaults fill the rest: stride 1, dilation 1, padding
    ``valid`` (0 transposed), bias 0, border ``zero``), all in the ``sum``
    channel mode.

    Parameters
    ----------
    job : convcli.job.Job
        The job for plain kernels (and the options every fitted job keeps).
    bank : convcli.kernels.KernelBank
        The resolved bank; ``bank.layer`` is set for a model layer.
    given : dict
        The explicit options (:func:`layer_options`), for a layer.
    groups : int or None
        ``--groups``.
    on_note : callable, optional
        Called once with the layer plan's note (an option that overrides the
        layer's own value, …) the first time a layer is fitted, if it has one.

    Attributes
    ----------
    max_pixels, streamed_max_pixels : int or None
        The job's limits, to open the sources with.
    layer_record : dict or None
        The last fitted layer as JSON (source, name, layout, shape, groups,
        transposed, bias_from_file, note); None before a layer is fitted.
    """

    def __init__(self, job: Any, bank: Any, given: dict[str, Any], groups: int | None,
                 on_note: Callable[[str], None] | None = None) -> None:
        self.job, self.bank, self.given, self.groups = job, bank, given, groups
        self.on_note = on_note
        self.max_pixels = job.max_pixels
        self.streamed_max_pixels = job.streamed_max_pixels
        self.layer_record: dict[str, Any] | None = None
        self._noted = False

    @property
    def same_for_every_input(self) -> bool:
        """True when every input gets :attr:`job` itself (no model layer, no ``groups``)."""
        return self.bank.layer is None and self.groups is None

    def _channels_used(self, source: Any) -> int:
        names = tuple(source.channel_names)
        has_alpha = len(names) in (2, 4) and names[-1] == "A"
        # alpha is filtered as a channel only with --alpha channel (filter); keep and drop feed colour
        return source.shape[2] - (1 if has_alpha and self.job.alpha not in ("channel", "filter") else 0)

    def __call__(self, source: Any) -> Any:
        """The job for ``source`` (an opened :class:`convcli.pipeline.sources.Source`).

        Raises
        ------
        ConvcliError
            The input's channels do not fit the groups (``--groups``: the
            message starts with the input's name) or the layer
            (:func:`convcli.layers.plan_layer`).
        """
        from convcli.layers import dense_grouped_bank, expand_groups, plan_layer

        if self.same_for_every_input:
            return self.job
        channels = self._channels_used(source)
        geometry = dict(self.job.geometry, channels="sum")
        if self.bank.layer is None:
            try:
                weights = dense_grouped_bank(self.bank.stack(), self.groups, channels)
            except ConvcliError as exc:
                raise type(exc)(f"{source.name}: {exc}") from None
            return dataclasses.replace(self.job, weights=weights, geometry=geometry)
        plan = plan_layer(self.bank, (*source.shape[:2], channels), self.given)
        if plan.note and not self._noted and self.on_note is not None:
            self.on_note(plan.note)
        self._noted = True
        # the layer's own values and the explicit options; PyTorch's defaults for the rest
        geometry = {key: geometry[key] for key in ("channels", "flip", "method", "dtype")}
        geometry.update({key: value for key, value in plan.options.items() if key != "groups"})
        geometry.setdefault("stride", (1, 1))
        geometry.setdefault("dilation", (1, 1))
        geometry.setdefault("padding", 0 if plan.transposed else "valid")
        geometry.setdefault("bias", 0.0)
        if plan.transposed:
            geometry.pop("border", None)
            geometry.setdefault("output_padding", (0, 0))
        else:
            geometry.pop("output_padding", None)
            geometry.setdefault("border", "zero")
        weights = plan.weights if plan.groups == 1 else expand_groups(plan.weights, plan.groups)
        layer = self.bank.layer
        self.layer_record = {
            "source": layer.source, "name": layer.name, "layout": "pytorch",
            "shape": list(layer.shape), "groups": plan.groups, "transposed": plan.transposed,
            "bias_from_file": layer.bias is not None and "bias" not in self.given,
            "note": plan.note,
        }
        return dataclasses.replace(self.job, weights=weights, labels=tuple(plan.labels),
                                   geometry=geometry, transpose=plan.transposed)
