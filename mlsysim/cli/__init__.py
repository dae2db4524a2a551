"""The ``mlsysim`` command line: thin commands over the solvers.

Every command takes ``--json``. User errors print one line (or a JSON error object) and exit
2; an infeasible config or a failed assertion exits 3. Never a traceback for user error.
"""

from __future__ import annotations

import json
import os
import sys

__all__ = ["main", "run", "app"]

EXIT_USAGE, EXIT_INFEASIBLE = 2, 3


def _is(exc: BaseException, name: str) -> bool:
    """Match click's exception classes by name: typer vendors its own copy of click."""
    return any(c.__name__ == name for c in type(exc).__mro__)


def main(argv: list[str] | None = None) -> int:
    from .app import app

    args = sys.argv[1:] if argv is None else list(argv)
    if not args:  # `mlsysim` alone: the help text, once
        args = ["--help"]
    try:
        # Without standalone mode click returns a command's exit code instead of exiting.
        code = app(args=args, prog_name="mlsysim", standalone_mode=False)
    except Exception as exc:
        if _is(exc, "NoArgsIsHelpError"):  # a group without a command: its help text
            # typer's rich help prints while the error is built; plain click's is the message.
            text = exc.format_message()
            if text.strip():
                print(text)
            return 0
        if _is(exc, "UsageError"):  # bad option value, unknown command: one line, exit 2
            ctx = getattr(exc, "ctx", None)
            where = ctx.command_path if ctx is not None else "mlsysim"
            hint = _footprint_hint(args)
            emit_error(_Usage(f"{exc.format_message()} ({hint or f'see: {where} --help'})"),
                       "--json" in args)
            return EXIT_USAGE
        if _is(exc, "Exit"):
            return int(getattr(exc, "exit_code", 0) or 0)
        if _is(exc, "Abort"):
            return 1
        raise
    return code if isinstance(code, int) else 0


def run() -> None:
    """The process entry point (the ``mlsysim`` script, ``python -m mlsysim``): :func:`main`,
    then the exit without the interpreter's teardown. Freeing the unit registry, the schemas
    and numpy's state at exit costs ~50 ms of every command; output is flushed first and the
    commands leave no file open, so nothing is lost. ``main`` itself returns (tests call it)."""
    code = main()
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except (BrokenPipeError, OSError):   # a reader that left early (`| head -1`)
            pass
    os._exit(code)


def _footprint_hint(args: list[str]) -> str | None:
    """``mlsysim carbon MODEL SYSTEM ...``, in the order ``train`` takes them: the command
    that means it (the footprint commands take the system, and the model as ``--train``)."""
    if len(args) < 3 or args[0] not in ("carbon", "cost", "place") or \
            any(a.startswith("-") for a in args[1:3]):
        return None
    from ..zoo import Clusters, Hardware, Models, Nodes
    model, system = args[1], args[2]
    if model not in Models or not any(system in reg for reg in (Hardware, Nodes, Clusters)):
        return None
    rest = " ".join(args[3:])
    batch = "" if "--batch-size" in args or "-b" in args else " --batch-size N"
    return f"the model goes in --train: mlsysim {args[0]} {system} --train {model}{batch}" + \
        (f" {rest}" if rest else "")


class _Usage(Exception):
    """A command-line usage error (wrong option value, unknown command)."""


def __getattr__(name: str):
    if name == "app":
        from .app import app
        return app
    raise AttributeError(name)


def emit_error(exc: Exception, as_json: bool) -> None:
    if as_json:
        name = "UsageError" if isinstance(exc, _Usage) else type(exc).__name__
        print(json.dumps({"error": name, "message": str(exc)}))
    else:
        print(f"error: {exc}", file=sys.stderr)
