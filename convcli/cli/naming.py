"""Moved to :mod:`convcli.naming` (the library plans a batch's names); re-exported for old imports."""

from __future__ import annotations

from convcli.naming import Planned, Request, inline_label, load_labelled_bank, plan_batch, split_name

__all__ = ["Planned", "Request", "inline_label", "load_labelled_bank", "plan_batch", "split_name"]
