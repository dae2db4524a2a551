"""The solver contract, where solver authors look for it: :class:`ForwardModel` (declared
options, registry, examples) and :class:`Result` (feasible/reason, binding resource,
assumptions, explain, strict JSON, trace, compact display). Defined in
:mod:`mlsysim.core.contract` because the core's own solver (``SingleNodeModel``) derives from
it and the core never imports this package; re-exported here. Nothing is modelled here."""

from __future__ import annotations

from ..core.contract import (
    REQUIRED,
    ForwardModel,
    Option,
    Result,
    all_solvers,
    jsonable,
    registered_solvers,
)

__all__ = ["ForwardModel", "Option", "REQUIRED", "Result", "all_solvers", "jsonable",
           "registered_solvers"]
