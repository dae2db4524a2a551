"""Opening the package's and the user's data files with errors that name the file."""

from __future__ import annotations

from pathlib import Path
from typing import TextIO

from ..errors import DataFileError

__all__ = ["open_text"]


def open_text(path: str | Path) -> TextIO:
    """Open a text data file (CSV-ready: no newline translation) or raise DataFileError."""
    try:
        return Path(path).open(newline="", encoding="utf-8")
    except OSError as exc:
        raise DataFileError(f"cannot read {path}: {exc.strerror}") from None
