"""Importers: graphs from outside the zoo onto the operator table.

``onnx_import``: ONNX files (extra ``onnx``), imported lazily by ``Models.from_onnx``.
"""

from __future__ import annotations

__all__ = ["from_onnx"]


def from_onnx(path, **kwargs):
    """See :func:`mlsysim.importers.onnx_import.from_onnx`."""
    from .onnx_import import from_onnx as _from_onnx
    return _from_onnx(path, **kwargs)
