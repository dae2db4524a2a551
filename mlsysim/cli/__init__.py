"""The ``mlsysim`` command line: thin commands over the solvers.

Every command takes ``--json``. User errors print one line (or a JSON error object) and exit
2; an infeasible config or a failed assertion exits 3. Never a traceback for user error.
"""

from __future__ import annotations

import json
import sys

__all__ = ["main", "app"]

EXIT_USAGE, EXIT_INFEASIBLE = 2, 3


def main(argv: list[str] | None = None) -> int:
    from .app import app

    try:
        app(args=argv, prog_name="mlsysim", standalone_mode=True)
    except SystemExit as exc:
        return int(exc.code or 0)
    return 0


def __getattr__(name: str):
    if name == "app":
        from .app import app
        return app
    raise AttributeError(name)


def emit_error(exc: Exception, as_json: bool) -> None:
    if as_json:
        print(json.dumps({"error": type(exc).__name__, "message": str(exc)}))
    else:
        print(f"error: {exc}", file=sys.stderr)
