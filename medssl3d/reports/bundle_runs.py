"""Running MONAI bundles as subprocesses: command lines, override values, launching, logs and failures.

A bundle run is ``python -m monai.bundle run --config_file ... --bundle_root ... --<key> <value> ...``. The
values go through python-fire's command-line parsing, which :func:`cli_value` writes them for, so that every
override reaches the bundle as the same JSON value (:func:`parse_override` reads ``key=value`` from a
command line of ours). :func:`subprocess_launcher` runs one command with its output appended to a log, and
:class:`BundleRunError` reports a failed one with the end of its log. :func:`config_keys` reads which keys
a bundle's configs define, so a caller can check a bundle before launching anything.
"""

from __future__ import annotations

import json
import os
import shlex
import subprocess
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

__all__ = [
    "CHECKPOINT_DIR",
    "Launcher",
    "BundleRunError",
    "parse_override",
    "cli_value",
    "override_args",
    "shell_join",
    "bundle_run_command",
    "subprocess_launcher",
    "config_keys",
    "has_checkpoints",
]

Launcher = Callable[[Sequence[str], Path], int]
"""``launcher(command, log_path) -> exit code``: runs one command, its output going to ``log_path``."""

CHECKPOINT_DIR = "checkpoints"
"""Folder of a run's ``output_dir`` holding the checkpoints a ``resume=True`` run continues from."""

TAIL_LINES = 40
"""Lines of the log that :class:`BundleRunError` shows."""

_SHELL_SPECIAL = set('"$`\\!')


class BundleRunError(RuntimeError):
    """A ``monai.bundle run`` command failed; the message names the command and its log.

    Args:
        what: the failed step, e.g. ``"evaluate of fine-tune rotation at 10 % labels, repeat 0"``.
        command: the command line (list of arguments).
        log_path: the file holding the command's output; its last :data:`TAIL_LINES` lines are shown.
        returncode: its exit status (0 for a run that exited normally without writing its output).
        hint: what went wrong, when the exit status does not say it.

    Attributes:
        command: the command line (list of arguments).
        log_path: the file holding the command's output.
        returncode: its exit status.
    """

    def __init__(self, what: str, command: Sequence[str], log_path: Path, returncode: int, hint: str = "") -> None:
        self.command = list(command)
        self.log_path = Path(log_path)
        self.returncode = int(returncode)
        tail = _tail(self.log_path)
        super().__init__(
            f"{what} failed (exit code {returncode}){': ' + hint if hint else ''}.\n"
            f"Command: {shell_join(self.command)}\nLog: {self.log_path}\n"
            f"Last lines of the log:\n{tail}\n"
            "Fix the cause and run the study again: finished runs are kept and skipped."
        )


def _tail(path: Path, lines: int = TAIL_LINES) -> str:
    try:
        text = Path(path).read_text(encoding="utf-8", errors="replace")
    except OSError:
        return "(no log written)"
    return "\n".join(text.rstrip().splitlines()[-lines:]) or "(empty log)"


def parse_override(text: str) -> tuple[str, Any]:
    """Parse a command-line override ``key=value``; the value is JSON if it parses, else a string.

    Args:
        text: e.g. ``"epochs=2"``, ``"patch_size=[32,32,32]"``, ``"spacing=null"``, ``"device=cpu"``.

    Returns:
        ``(key, value)``, e.g. ``("patch_size", [32, 32, 32])``.

    Raises:
        ValueError: no ``=`` or an empty key.

    Example:
        >>> parse_override("learning_rate=3e-3")
        ('learning_rate', 0.003)
    """
    key, sep, raw = str(text).partition("=")
    key = key.strip()
    if not sep or not key:
        raise ValueError(f"override {text!r} is not key=value; e.g. epochs=2 or patch_size=[32,32,32].")
    try:
        return key, json.loads(raw)
    except json.JSONDecodeError:
        return key, raw


def cli_value(value: Any) -> str:
    """An override value as ``monai.bundle``'s command line (python-fire) reads it back unchanged.

    A string fire would read back as itself (a path, ``cpu``) is passed as it is; any other value is written
    as a Python literal, so ``"1"``, ``"True"`` or ``"a,b"`` stay strings and lists stay lists. ``None`` is
    written as the expression ``$None``: ``monai.bundle run`` silently drops command-line overrides that parse
    to ``None`` (``update_kwargs(ignore_none=True)``), so ``--spacing None`` would keep the config's default.

    Example:
        >>> cli_value("1"), cli_value([32, 32]), cli_value(None)
        ("'1'", '[32, 32]', '$None')
    """
    if value is None:
        return "$None"
    if isinstance(value, os.PathLike):
        value = os.fspath(value)
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, str):
        from fire.parser import DefaultParseValue

        parsed = DefaultParseValue(value)
        if isinstance(parsed, str) and parsed == value:
            return value
    return repr(value)


def override_args(overrides: Mapping[str, Any]) -> list[str]:
    """``{"epochs": 2}`` as the command-line arguments ``["--epochs", "2"]`` of ``monai.bundle run``."""
    args: list[str] = []
    for key, value in overrides.items():
        args += [f"--{key}", cli_value(value)]
    return args


def shell_join(command: Sequence[str]) -> str:
    """``command`` as a line to paste into bash: like ``shlex.join``, but ``"['a', 'b']"`` rather than
    ``shlex.join``'s unreadable escaping of single quotes."""
    parts = []
    for arg in command:
        quoted = shlex.quote(arg)
        parts.append(f'"{arg}"' if quoted != arg and "'" in arg and not _SHELL_SPECIAL & set(arg) else quoted)
    return " ".join(parts)


def bundle_run_command(
    python: str, config_files: Sequence[Path], bundle_root: Path, overrides: Mapping[str, Any]
) -> list[str]:
    """``python -m monai.bundle run`` of ``config_files`` (merged in order) with ``overrides``.

    Args:
        python: the Python executable with medssl3d and MONAI installed.
        config_files: one or more JSON configs; later ones override earlier ones.
        bundle_root: the bundle folder, passed as ``bundle_root``.
        overrides: bundle keys and their values (see :func:`cli_value`).

    Returns:
        the command as a list of arguments.
    """
    files = [str(f) for f in config_files]
    cmd = [python, "-m", "monai.bundle", "run", "--config_file", cli_value(files[0] if len(files) == 1 else files)]
    cmd += ["--bundle_root", cli_value(str(bundle_root))]
    return cmd + override_args(overrides)


def subprocess_launcher(command: Sequence[str], log_path: Path) -> int:
    """Run ``command`` with its standard output and error appended to ``log_path``; return its exit code.

    The log gets a header line with the time and the command, so a resumed run keeps the earlier attempts.
    ``PYTHONUNBUFFERED=1`` makes the log follow the run live (``tail -f``).
    """
    log_path = Path(log_path)
    log_path.parent.mkdir(parents=True, exist_ok=True)
    env = dict(os.environ, PYTHONUNBUFFERED="1")
    with open(log_path, "a", encoding="utf-8", errors="replace") as log:
        log.write(f"\n==== {time.strftime('%Y-%m-%d %H:%M:%S')} $ {shell_join(command)}\n")
        log.flush()
        return subprocess.run(list(command), stdout=log, stderr=subprocess.STDOUT, env=env, check=False).returncode


def config_keys(files: Sequence[Path]) -> set[str]:
    """Top-level keys of merged JSON bundle configs (``a#b`` override keys count as ``a``).

    Raises:
        ValueError: a file is not valid JSON or does not hold a JSON object.
    """
    keys: set[str] = set()
    for path in files:
        try:
            content = json.loads(path.read_text(encoding="utf-8"))
        except json.JSONDecodeError as e:
            raise ValueError(f"bundle config {path} is not valid JSON ({e.msg} at line {e.lineno}).") from e
        if not isinstance(content, dict):
            raise ValueError(f"bundle config {path} must hold a JSON object, got {type(content).__name__}.")
        keys.update(k.split("#", 1)[0] for k in content)
    return keys


def has_checkpoints(output_dir: Path) -> bool:
    """Whether a run's ``output_dir`` holds checkpoints (in :data:`CHECKPOINT_DIR`) to resume from."""
    folder = output_dir / CHECKPOINT_DIR
    return folder.is_dir() and any(folder.iterdir())
