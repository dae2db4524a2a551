"""Opening the package's and the user's data files with errors that name the file."""

from __future__ import annotations

import io
import os
from pathlib import Path
from typing import Any, TextIO

from ..errors import DataFileError, ValidationError

__all__ = ["as_path", "open_text", "read_text"]


def as_path(path: Any, owner: str, field: str = "path") -> Path:
    """A path argument as a Path, or ValidationError naming the argument (``Path(None)``
    would raise a bare TypeError)."""
    if isinstance(path, (str, os.PathLike)) and not isinstance(path, bytes):
        return Path(path)
    raise ValidationError(field, f"must be a file path (str or os.PathLike), got "
                          f"{type(path).__name__} {path!r}", owner=owner)


def read_text(path: str | Path, what: str = "") -> str:
    """A data file's text as UTF-8, or DataFileError naming the file (``what`` prefixes it,
    e.g. "Hugging Face config ") and the line of the first bad byte: a binary file or another
    encoding, instead of a bare UnicodeDecodeError. NUL bytes (binary files that happen to
    decode) are refused the same way."""
    path = Path(path)
    try:
        raw = path.read_bytes()
    except OSError as exc:
        raise DataFileError(f"cannot read {what}{path}: {exc.strerror or exc}") from None
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = raw.count(b"\n", 0, exc.start) + 1
        raise DataFileError(f"{what}{path}, line {line}: not UTF-8 text (byte "
                            f"0x{raw[exc.start]:02x} at offset {exc.start}: a binary file or "
                            "another encoding; save it as UTF-8)") from None
    nul = text.find("\x00")
    if nul >= 0:
        line = text.count("\n", 0, nul) + 1
        raise DataFileError(f"{what}{path}, line {line}: contains a NUL byte (a binary file?)")
    return text.removeprefix("\ufeff")          # a BOM from Windows editors is not content


def open_text(path: str | Path) -> TextIO:
    """Open a text data file (CSV-ready: no newline translation) or raise DataFileError; the
    whole file is decoded up front, so a bad byte is reported here, naming file and line."""
    return io.StringIO(read_text(path), newline="")
