"""The workload protocol for graphs imported from outside the zoo (ONNX today).

An :class:`ImportedWorkload` is anything that lowers to an :class:`~.operators.OperatorTable`
without a zoo spec: a name, a parameter count, and a function that builds the table for the
batch-independent shape inputs of one pass (``seq_len`` for graphs with a symbolic sequence
axis, ``None`` otherwise) at a byte size per element. ``Engine.solve`` accepts one wherever it
accepts a model spec; :func:`~mlsysim.workloads.lower` calls :meth:`ImportedWorkload.table`
and caches the result, so the source file is read once at import and never again per solve.

Operators the importer has no cost rule for are not costed: they are listed in ``unmodeled``
(operator type, node count) so that a report can say what the prediction leaves out instead of
silently assuming time 0.
Left out: training passes (an imported graph is one inference ``forward`` pass), KV caches and
per-sample state (``state_bytes_per_sample`` is 0).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable

from .operators import OperatorTable

__all__ = ["ImportedWorkload"]


@dataclass(frozen=True, eq=False)
class ImportedWorkload:
    """A workload lowered from an imported graph.

    Parameters
    ----------
    name : str, shown to users
    key : str, identifier used in traces and summaries
    parameter_count : int, weights held by the graph (initializer elements, buffers excluded)
    build : callable ``(seq_len: int | None, e: float) -> OperatorTable``; ``seq_len`` is the
        value of the symbolic sequence axis (None without one), ``e`` bytes per element
    unfused_build : optional callable, the same without epilogue fusion (every node its own
        kernel, as an eager framework runs it); without one, ``eager=True`` solves are refused
    unmodeled : tuple of (operator type, node count) with no cost rule
    seq_axis : bool, whether the graph has a symbolic sequence axis (``seq_len`` is a solve input)
    default_seq_len : int, the sequence length used when a solve gives none (with ``seq_axis``)
    unmodeled_bytes : optional callable ``(seq_len, e) -> float``: activation bytes per sample
        read and written by the unmodeled nodes (for their share in reports)
    source : str, where the graph came from (a file path)
    notes : tuple of str, what the import assumed (unresolved axes, a fixed export batch)

    Equality is identity: two imports of the same file are two workloads (their tables cache
    separately).
    """

    name: str
    key: str
    parameter_count: int
    build: Callable[[int | None, float], OperatorTable] = field(repr=False)
    unfused_build: Callable[[int | None, float], OperatorTable] | None = field(default=None,
                                                                               repr=False)
    unmodeled: tuple[tuple[str, int], ...] = ()
    seq_axis: bool = False
    default_seq_len: int = 128
    unmodeled_bytes: Callable[[int | None, float], float] | None = field(default=None,
                                                                         repr=False)
    source: str = "imported"
    notes: tuple[str, ...] = ()
    architecture: str = "Imported graph"
    max_context: int | None = None

    phases = ("forward",)

    def table(self, *, seq_len: int | None, e: float, eager: bool = False) -> OperatorTable:
        """The operator table of one forward pass per sample (uncached: see ``lower``);
        ``eager``: without epilogue fusion (needs ``unfused_build``)."""
        build = self.unfused_build if eager else self.build
        return build(seq_len if self.seq_axis else None, e)

    @property
    def unmodeled_nodes(self) -> int:
        return sum(n for _, n in self.unmodeled)

    def __str__(self) -> str:
        return self.name
