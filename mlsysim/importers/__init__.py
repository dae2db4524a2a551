"""Importers: graphs from outside the zoo onto the operator table.

``graph``: the records, cost rules and row grouping shared by every importer.
``onnx_import``: ONNX files (extra ``onnx``), imported lazily by ``Models.from_onnx``.
``torch_import``: ``torch.nn.Module`` traced by ``torch.export`` (extra ``torch``), imported
lazily by ``Models.from_torch``.
"""

from __future__ import annotations

__all__ = ["from_onnx", "from_torch"]


def from_onnx(path, **kwargs):
    """See :func:`mlsysim.importers.onnx_import.from_onnx`."""
    from .onnx_import import from_onnx as _from_onnx
    return _from_onnx(path, **kwargs)


def from_torch(module, example_inputs, **kwargs):
    """See :func:`mlsysim.importers.torch_import.from_torch`."""
    from .torch_import import from_torch as _from_torch
    return _from_torch(module, example_inputs, **kwargs)
