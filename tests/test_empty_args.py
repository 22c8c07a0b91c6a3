"""An empty path argument is a mistake, never "use the default" (issue 16).

The path parameters are found from the click command objects: every
parameter whose metavar names a path (``_plain.PATH_WORDS``) is invoked with
``""`` and must exit 1 with one line ``convcli: error: <name> is empty (an
unset shell variable?)``, writing nothing. A second test makes sure every
parameter whose *name* says it takes a path carries such a metavar, so an
option added later cannot be forgotten.
"""

from __future__ import annotations

import enum
import os
import re

import pytest
import typer
from typer.testing import CliRunner

from convcli.cli import app
from convcli.cli._plain import is_path_param, param_label

RUNNER = CliRunner()
ROOT = typer.main.get_command(app)

#: Parameter names that say "a path" (whole name or a ``_file``/``_path``/``_dir`` ending).
PATH_NAMES = re.compile(r"^(inputs?|outputs?|montage|gif|image|images|file|files|path|paths|dir|directory|"
                        r"weights|model)$|_(file|path|dir)$")


def _walk(command, path=()):
    found = [(path, command)]
    if hasattr(command, "list_commands"):
        ctx = typer.Context(command)
        for name in command.list_commands(ctx):
            found += _walk(command.get_command(ctx, name), (*path, name))
    return found


COMMANDS = [(path, command) for path, command in _walk(ROOT)
            if path and not hasattr(command, "list_commands")]


def _params(command):
    return [p for p in command.get_params(typer.Context(command)) if p.name != "help"]


def _filler(param) -> list[str]:
    """A syntactically fine value for a required parameter that is not under test."""
    annotation = getattr(getattr(param, "type_descriptor", None), "annotation", None)
    if isinstance(annotation, type) and issubclass(annotation, enum.Enum):
        return [str(next(iter(annotation)).value)]
    return ["3"] if not is_path_param(param) else ["x.png"]


def _args_with_empty(command, target) -> list[str]:
    args: list[str] = []
    for param in _params(command):
        if param is target:
            values = [""]
        elif param.required:
            values = _filler(param)
        else:
            continue
        if param.param_type_name == "argument":
            args += values
        else:
            args += [param.opts[0], *values]
    return args


PATH_CASES = [(path, command, param) for path, command in COMMANDS for param in _params(command)
              if is_path_param(param)]


def test_the_walk_finds_the_known_path_parameters():
    found = {(" ".join(path), param.name) for path, _, param in PATH_CASES}
    assert {("apply", "inputs"), ("apply", "output"), ("apply", "montage"), ("explain", "image"),
            ("explain", "gif"), ("shape", "size")} <= found


@pytest.mark.parametrize(("path", "command", "param"), PATH_CASES,
                         ids=[f"{' '.join(p)}:{param_label(x)}" for p, _, x in PATH_CASES])
def test_empty_path_is_refused_with_one_line_and_nothing_written(path, command, param, tmp_path,
                                                                 monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "ok.npy").write_bytes(b"")  # what `apply ""` used to pick up from the directory
    args = [*path, *_args_with_empty(command, param)]
    result = RUNNER.invoke(app, args)
    assert result.exit_code == 1, (args, result.output)
    lines = result.stderr.strip().splitlines()
    assert lines == [f"convcli: error: {param_label(param)} is empty (an unset shell variable?)"], args
    assert result.stdout == ""
    assert sorted(os.listdir(tmp_path)) == ["ok.npy"]


@pytest.mark.parametrize(("path", "command"), COMMANDS, ids=[" ".join(p) for p, _ in COMMANDS])
def test_every_parameter_named_like_a_path_is_marked(path, command):
    for param in _params(command):
        if PATH_NAMES.search(param.name or ""):
            assert is_path_param(param), f"{' '.join(path)} {param.name}: metavar {param.metavar!r}"


@pytest.mark.parametrize("args", [
    ["explain", "--input", "1,2;3,4", "--gif", ""],
    ["explain", "--image", ""],
    ["shape", "", "-k", "3"],
    ["apply", "", "-k", "box"],
    ["apply", "ok.png", "-k", "box", "-o", ""],
    ["apply", "ok.png", "-k", "box", "--montage", "", "-f", "npy", "-o", "e.npy"],
])
def test_issue_examples(args, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "o5.npy").write_bytes(b"")
    result = RUNNER.invoke(app, args)
    assert result.exit_code == 1
    assert len(result.stderr.strip().splitlines()) == 1
    assert "is empty (an unset shell variable?)" in result.stderr
    assert os.listdir(tmp_path) == ["o5.npy"]
