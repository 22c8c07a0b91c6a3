"""Shell completion (issue 14, point 3): invoked as bash, zsh and fish invoke it.

Each test starts ``convcli`` in a subprocess with the environment the shell
scripts set (``COMP_WORDS``/``COMP_CWORD`` for bash, ``_TYPER_COMPLETE_ARGS``
for zsh and fish) and reads the candidates from stdout. A path parameter
offers no candidates, so the shell's own file completion runs (bash:
``complete -o default``; zsh: ``_files``; fish: "is-args" false).
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def _convcli(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    full = {k: v for k, v in os.environ.items() if not k.startswith(("_CONVCLI", "COMP_", "_TYPER"))}
    full.pop("PYTHONUNBUFFERED", None)
    full["PYTHONPATH"] = str(ROOT) + os.pathsep + full.get("PYTHONPATH", "")
    full.update(env)
    return subprocess.run([sys.executable, "-m", "convcli", *args], env=full, capture_output=True,
                          text=True, timeout=60, stdin=subprocess.DEVNULL)


def bash(line: str, instruction: str = "bash_complete") -> list[str]:
    """Candidates for the last word of ``line`` (a trailing space: an empty word), as bash asks."""
    words = line.split(" ")
    result = _convcli({"_CONVCLI_COMPLETE": instruction, "COMP_WORDS": line,
                       "COMP_CWORD": str(len(words) - 1)})
    assert result.returncode == 0, result.stderr
    return result.stdout.split()


def test_subcommands_and_options():
    assert bash("convcli ") == ["apply", "shape", "explain", "kernels"]
    assert bash("convcli ex") == ["explain"]
    assert bash("convcli kernels ") == ["list", "show"]
    assert "--border" in bash("convcli explain --b")
    assert bash("convcli shape 224 --tar") == ["--target"]


def test_typer_instruction_order_works_too():
    assert bash("convcli ex", instruction="complete_bash") == ["explain"]


def test_preset_names_for_kernel():
    from convcli.presets import list_presets

    names = [info.name for info in list_presets()]
    assert bash("convcli explain -k sob") == [n for n in names if n.startswith("sob")]
    assert "gaussian" in bash("convcli explain -k ")


def test_choices():
    assert bash("convcli explain --border re") == ["reflect", "replicate"]
    assert bash("convcli apply x.png --channels ") == ["depthwise", "sum", "gray"]
    assert bash("convcli apply x.png --reduce m") == ["magnitude", "max", "min"]


def test_apply_scale_and_kernel_choices():
    assert bash("convcli apply x.png --scale m") == ["minmax"]
    assert "sobel" in bash("convcli apply x.png -k so")


def test_paths_are_left_to_the_shell():
    assert bash("convcli explain --image ") == []
    assert bash("convcli explain --gif sl") == []
    zsh = _convcli({"_CONVCLI_COMPLETE": "complete_zsh", "_TYPER_COMPLETE_ARGS": "convcli explain --image "})
    assert zsh.stdout.strip() == "_files"


def test_zsh_and_fish_candidates():
    zsh = _convcli({"_CONVCLI_COMPLETE": "zsh_complete", "_TYPER_COMPLETE_ARGS": "convcli explain --border "})
    assert '"reflect"' in zsh.stdout and '"wrap"' in zsh.stdout
    fish = _convcli({"_CONVCLI_COMPLETE": "complete_fish", "_TYPER_COMPLETE_FISH_ACTION": "get-args",
                     "_TYPER_COMPLETE_ARGS": "convcli explain --border "})
    assert fish.stdout.split() == ["zero", "reflect", "symmetric", "replicate", "wrap", "constant:"]


@pytest.mark.parametrize("shell", ["bash", "zsh", "fish"])
def test_source_scripts(shell):
    for instruction in (f"{shell}_source", f"source_{shell}"):
        result = _convcli({"_CONVCLI_COMPLETE": instruction})
        assert result.returncode == 0, result.stderr
        assert "convcli" in result.stdout and "_CONVCLI_COMPLETE" in result.stdout


def test_show_and_install_completion(tmp_path):
    shown = _convcli({"SHELL": "/bin/bash", "_TYPER_COMPLETE_TEST_DISABLE_SHELL_DETECTION": "1"},
                     "--show-completion", "bash")
    assert shown.returncode == 0 and "complete -o default -F _convcli_completion convcli" in shown.stdout
    installed = _convcli({"HOME": str(tmp_path), "SHELL": "/bin/bash",
                          "_TYPER_COMPLETE_TEST_DISABLE_SHELL_DETECTION": "1"},
                         "--install-completion", "bash")
    assert installed.returncode == 0, installed.stderr
    assert "_CONVCLI_COMPLETE" in (tmp_path / ".bash_completions" / "convcli.sh").read_text()
