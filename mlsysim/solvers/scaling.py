"""Compute-optimal model and data size for a training budget (Chinchilla), and how long the
budget takes on a fleet.

Training a dense transformer of ``N`` parameters on ``D`` tokens costs about

    C ~= 6 N D  flop                        (Kaplan et al. 2020, sec. 2.1; Hoffmann et al. 2022)

(2 N D for the forward pass, 4 N D for the backward; attention's context-dependent term and
the embeddings are left out). Hoffmann et al. 2022 ("Training Compute-Optimal Large Language
Models") fit ``N_opt ~ C^a`` and ``D_opt ~ C^b`` with a = b = 0.50 (approach 1, Table 2;
approaches 2 and 3 give 0.49/0.51 and 0.46/0.54), so the compute-optimal ratio ``D / N`` does
not depend on the budget; their Table 3 puts it at ~20 tokens per parameter (8.0 B tokens for
400 M parameters, 205.1 B for 10 B, 1.5 T for 67 B). With the ratio ``r = D / N``::

    N = sqrt(C / (6 r)),   D = r N                                  (compute-optimal)
    D = C / (6 N)                                                   (given N)

So Chinchilla's budget of 5.76e23 flop gives N = sqrt(5.76e23 / 120) = 69.3 B parameters and
D = 1.39 T tokens (Chinchilla itself: 70 B on 1.4 T).

On a fleet of ``n`` accelerators of dense peak ``P`` at ``precision`` (bf16 by default),
running at model-flops utilization ``mfu``::

    time_to_train = C / (n P mfu),    gpu_hours = n * time_to_train

Left out: data-constrained regimes (repeating tokens, Muennighoff et al. 2023; here a budget
whose tokens exceed ``dataset_tokens`` is infeasible instead), loss prediction, MoE and
inference-aware sizing, and everything that sets ``mfu`` (use ``DistributedModel`` for that).
"""

from __future__ import annotations

import math
import numbers
from dataclasses import dataclass
from typing import Any

from ..core import validate as check
from ..core.contract import REQUIRED, ForwardModel, Option, Result
from ..errors import ValidationError
from ..specs.model import ModelSpec
from ..specs.system import Fleet
from ..units import Q_
from .reliability import as_fleet

__all__ = ["ScalingModel", "ScalingResult", "CHINCHILLA_TOKENS_PER_PARAMETER",
           "FLOP_PER_PARAM_TOKEN", "compute_optimal"]

OWNER = "ScalingModel"
# C = 6 N D: flop per parameter per training token (Kaplan et al. 2020, sec. 2.1).
FLOP_PER_PARAM_TOKEN = 6.0
# Compute-optimal tokens per parameter (Hoffmann et al. 2022, Table 3, rounded).
CHINCHILLA_TOKENS_PER_PARAMETER = 20.0


def compute_optimal(compute_flop: float, tokens_per_parameter: float =
                    CHINCHILLA_TOKENS_PER_PARAMETER) -> tuple[float, float]:
    """``(N, D)`` with ``6 N D = C`` and ``D = r N``: ``N = sqrt(C / (6 r))``.

    >>> n, d = compute_optimal(5.76e23)                  # Chinchilla's budget
    >>> round(n / 1e9, 1), round(d / 1e12, 2)
    (69.3, 1.39)
    """
    n = math.sqrt(compute_flop / (FLOP_PER_PARAM_TOKEN * tokens_per_parameter))
    return n, tokens_per_parameter * n


# --- inputs ---------------------------------------------------------------------------------
def _amount(name: str, value, unit: str, example: str, *, bare: bool) -> float:
    """A positive finite amount in ``unit``: a quantity, a string with units, or (``bare``)
    a plain number already in ``unit``."""
    if isinstance(value, bool) or value is None:
        raise ValidationError(name, f"must be an amount such as {example}. Got {value!r} "
                              "instead.", owner=OWNER)
    if isinstance(value, numbers.Real):
        if not bare:
            raise ValidationError(name, f"must carry units, e.g. {example} or Q_(1e24, "
                                  f"'{unit}'); a bare number could be flop, MAC or flop/s. "
                                  f"Got {value!r} instead.", owner=OWNER)
        return check.positive_float(name, value, OWNER)
    try:
        q = Q_(value) if isinstance(value, str) else value
        mag = float(q.to(unit).magnitude)
    except Exception:
        raise ValidationError(name, f"must be an amount of {unit} such as {example}. Got "
                              f"{value!r} instead.", owner=OWNER) from None
    if not math.isfinite(mag) or mag <= 0:
        raise ValidationError(name, f"must be positive and finite. Got {value!r} instead.",
                              owner=OWNER)
    return mag


# --- the result -----------------------------------------------------------------------------
@dataclass(frozen=True, eq=False, repr=False)
class ScalingResult(Result):
    """Model and data size for one budget; counts and SI floats inside, quantities in the
    properties (``result.optimal_tokens.to('Ttoken')``)."""

    compute_flop: float
    parameters: float
    tokens: float
    mode: str                      # "compute-optimal" or "given model size"
    fleet: Fleet | None
    accelerators: int
    precision: str | None
    peak_flops: float              # one accelerator's dense peak at precision, flop/s (nan)
    mfu: float                     # nan without a fleet
    dataset_tokens: float          # inf when not given

    summary_inputs = ("compute_budget:",)
    summary_numbers = ("optimal_parameters:N", "optimal_tokens:D", "time_to_train:time")
    main_latency = "train_s"

    @property
    def compute_budget(self):
        return Q_(self.compute_flop, "flop")

    @property
    def optimal_parameters(self):
        return Q_(self.parameters, "param")

    @property
    def optimal_tokens(self):
        return Q_(self.tokens, "token")

    @property
    def tokens_per_parameter(self) -> float:
        return self.tokens / self.parameters

    @property
    def train_s(self) -> float:
        """``C / (n P mfu)`` in seconds (nan without a fleet)."""
        if self.fleet is None:
            return math.nan
        return self.compute_flop / (self.accelerators * self.peak_flops * self.mfu)

    @property
    def time_to_train(self):
        """Wall time on the fleet (days), None without one."""
        return None if self.fleet is None else Q_(self.train_s / 86400.0, "day")

    @property
    def gpu_hours(self) -> float | None:
        """Accelerator-hours: accelerators x time_to_train, None without a fleet."""
        return None if self.fleet is None else self.accelerators * self.train_s / 3600.0

    @property
    def feasible(self) -> bool:
        return self.tokens <= self.dataset_tokens

    @property
    def reason(self) -> str | None:
        if self.feasible:
            return None
        return (f"needs {self.tokens:.4g} tokens, the dataset has {self.dataset_tokens:.4g} "
                "(repeating data is not modelled)")

    @property
    def binding(self) -> str:
        """"dataset size" when the tokens exceed the dataset, else "compute budget"."""
        return "compute budget" if self.feasible else "dataset size"

    @property
    def assumptions(self) -> tuple[str, ...]:
        a = ["C = 6 N D (dense transformer; attention and embeddings left out)"]
        if self.mode == "compute-optimal":
            a.append(f"compute-optimal D/N = {self.tokens_per_parameter:.4g} (Chinchilla: "
                     "N, D ~ C^0.5)")
        if self.fleet is not None:
            a.append(f"dense {self.precision} peak x mfu {self.mfu:.3g}, the whole run")
        return tuple(a)

    def headline(self) -> dict[str, Any]:
        fleet = self.fleet is not None
        return {
            "compute_budget": self.compute_budget, "mode": self.mode,
            "optimal_parameters": self.optimal_parameters,
            "optimal_tokens": self.optimal_tokens,
            "tokens_per_parameter": self.tokens_per_parameter,
            "fleet": self.fleet.name if fleet else None,
            "accelerators": self.accelerators if fleet else None,
            "precision": self.precision if fleet else None,
            "mfu": self.mfu if fleet else None,
            "time_to_train": self.time_to_train, "gpu_hours": self.gpu_hours,
            "dataset_tokens": (None if math.isinf(self.dataset_tokens)
                               else Q_(self.dataset_tokens, "token")),
            "feasible": self.feasible, "reason": self.reason,
        }

    def explain(self) -> str:
        c, n, d, r = self.compute_flop, self.parameters, self.tokens, self.tokens_per_parameter
        if self.mode == "compute-optimal":
            lines = [f"C = {c:.4g} flop, compute-optimal with D/N = r = {r:.4g} "
                     "(Hoffmann et al. 2022)",
                     f"  N = sqrt(C / (6 r)) = sqrt({c:.4g} / {6 * r:.4g}) = {n:.4g} params",
                     f"  D = r N = {r:.4g} x {n:.4g} = {d:.4g} tokens"]
        else:
            lines = [f"C = {c:.4g} flop for a model of N = {n:.4g} params",
                     f"  D = C / (6 N) = {c:.4g} / (6 x {n:.4g}) = {d:.4g} tokens "
                     f"(D/N = {r:.4g})"]
        if self.fleet is not None:
            lines.append(
                f"  time = C / (n P mfu) = {c:.4g} / ({self.accelerators} x "
                f"{self.peak_flops:.4g} flop/s [{self.precision} dense] x {self.mfu:.3g}) = "
                f"{self.train_s:.4g} s = {self.train_s / 86400:.4g} days; "
                f"{self.gpu_hours:.4g} accelerator-hours")
        if not self.feasible:
            lines.append(f"  infeasible: {self.reason}")
        return "\n".join(lines)


# --- the solver -----------------------------------------------------------------------------
class ScalingModel(ForwardModel):
    """Chinchilla-optimal parameters and tokens for a compute budget, and the time the budget
    takes on a fleet (see the module docstring)."""

    options = (
        Option("compute_budget", REQUIRED, "training compute with units: '1e24 flop' or a "
               "flop quantity (bare numbers are refused)"),
        Option("target_model_size", None, "fix N: parameters (a number, a param quantity or a "
               "model spec); then D = C / (6 N)"),
        Option("tokens_per_parameter", None, "compute-optimal D/N; default 20 (Chinchilla)"),
        Option("fleet", None, "Fleet, Node or zoo cluster name, for time_to_train"),
        Option("mfu", None, "model-flops utilization in (0, 1]; needed with a fleet"),
        Option("precision", "bf16", "precision whose dense peak the fleet runs at"),
        Option("dataset_tokens", None, "unique tokens available; more needed is infeasible"),
    )

    @classmethod
    def example(cls, feasible: bool = True) -> dict[str, Any]:
        """Chinchilla's 5.76e23 flop on a 256-GPU DGX H100 SuperPOD at 40 % MFU; then the same
        budget with only 1 T tokens of data (it needs 1.39 T)."""
        from ..zoo import Clusters
        kw: dict[str, Any] = dict(compute_budget="5.76e23 flop",
                                  fleet=Clusters.DGX_H100_SuperPOD_256, mfu=0.4)
        if not feasible:
            kw["dataset_tokens"] = 1e12
        return kw

    def solve(self, compute_budget, target_model_size=None,
              tokens_per_parameter: float | None = None, fleet=None, mfu: float | None = None,
              precision: str = "bf16", dataset_tokens=None) -> ScalingResult:
        """Split ``compute_budget`` between parameters and tokens.

        Parameters
        ----------
        compute_budget : training compute with units ('5.76e23 flop', Q_(1e24, 'flop'),
            '1e9 PFLOP'); bare numbers raise ValidationError (flop, MAC or flop/s?)
        target_model_size : parameters N (number, 'param' quantity or a ModelSpec); then
            ``D = C / (6 N)``. Exclusive with ``tokens_per_parameter``.
        tokens_per_parameter : float > 0, the compute-optimal ratio D/N (default 20)
        fleet : Fleet, Node or zoo cluster name; gives ``time_to_train`` and ``gpu_hours``
        mfu : float in (0, 1], required with ``fleet``
        precision : str, whose dense peak per accelerator the fleet runs at (default bf16)
        dataset_tokens : tokens available (number or 'token' quantity); needing more is
            infeasible

        Examples
        --------
        Chinchilla's budget: N = sqrt(5.76e23 / (6 x 20)) = 69.3e9, D = 20 N = 1.386e12.

        >>> r = ScalingModel().solve("5.76e23 flop")
        >>> round(r.optimal_parameters.to("Gparam").magnitude, 1)
        69.3
        >>> round(r.optimal_tokens.to("Ttoken").magnitude, 3), r.tokens_per_parameter
        (1.386, 20.0)

        A 70 B model on the same budget: D = 5.76e23 / (6 x 70e9) = 1.371e12 tokens. On 256
        H100 (989.5 TFLOP/s bf16 dense) at 40 % MFU: 5.76e23 / (256 x 989.5e12 x 0.4) =
        5.685e6 s = 65.8 days.

        >>> from mlsysim import Systems
        >>> r = ScalingModel().solve("5.76e23 flop", target_model_size=70e9,
        ...                          fleet=Systems.Clusters.DGX_H100_SuperPOD_256, mfu=0.4)
        >>> round(r.optimal_tokens.to("Ttoken").magnitude, 3), round(r.time_to_train.m, 1)
        (1.371, 65.8)
        """
        c = _amount("compute_budget", compute_budget, "flop", "'1e24 flop'", bare=False)
        if target_model_size is not None and tokens_per_parameter is not None:
            raise ValidationError("tokens_per_parameter", "cannot be given with "
                                  "target_model_size (D = C / (6 N) fixes the ratio). Got "
                                  f"{tokens_per_parameter!r} instead.", owner=OWNER)
        if target_model_size is not None:
            size = target_model_size.parameter_count \
                if isinstance(target_model_size, ModelSpec) else target_model_size
            n = _amount("target_model_size", size, "param", "70e9 or '70e9 param'", bare=True)
            d, mode = c / (FLOP_PER_PARAM_TOKEN * n), "given model size"
        else:
            r = CHINCHILLA_TOKENS_PER_PARAMETER if tokens_per_parameter is None else \
                check.positive_float("tokens_per_parameter", tokens_per_parameter, OWNER)
            (n, d), mode = compute_optimal(c, r), "compute-optimal"
        data = math.inf if dataset_tokens is None else \
            _amount("dataset_tokens", dataset_tokens, "token", "15e12 or '15e12 token'",
                    bare=True)
        system, n_acc, prec, peak, eff = None, 0, None, math.nan, math.nan
        if fleet is not None:
            system = as_fleet(fleet, OWNER)
            if mfu is None:
                raise ValidationError("mfu", "is needed with a fleet (the share of peak the "
                                      "run sustains, e.g. 0.4). Got None instead.", owner=OWNER)
            eff = check.fraction("mfu", mfu, OWNER)
            if eff == 0.0:
                raise ValidationError("mfu", f"must be above 0. Got {mfu!r} instead.",
                                      owner=OWNER)
            prec = check.precision_of(system.accelerator, precision, OWNER)
            peak = system.accelerator._base[f"peak_{prec}"]
            n_acc = system.total_accelerators
        elif mfu is not None:
            raise ValidationError("mfu", f"needs a fleet to apply to. Got {mfu!r} without "
                                  "fleet=.", owner=OWNER)
        return ScalingResult(compute_flop=c, parameters=n, tokens=d, mode=mode, fleet=system,
                             accelerators=n_acc, precision=prec, peak_flops=peak, mfu=eff,
                             dataset_tokens=data)
