"""The result contract's old home: ``Result`` and ``jsonable`` now live in
:mod:`mlsysim.core.contract` (with the solver base) and are re-exported here, so
``from mlsysim.core.result import Result`` keeps working. Nothing is modelled here."""

from __future__ import annotations

from .contract import Result, jsonable

__all__ = ["Result", "jsonable"]
