"""Failures of a training fleet, and the checkpoint interval that wastes the least time.

A synchronous job stops whenever any of its accelerators (or their hosts, NICs, switches,
software) fails, so failures of the whole fleet arrive at the sum of the parts' rates. Modelled
here, with failures a Poisson process of rate ``1 / M`` (memoryless, independent parts)::

    M      = fleet.mtbf_hours, if the fleet states one; else
             1 / (lambda_acc * n_acc)                   lambda_acc from zoo/data/reliability.yaml
    E[failures in T]   = T / M
    P(>= 1 failure)    = 1 - exp(-T / M)
    tau_Young          = sqrt(2 delta M)                Young 1974, first order
    tau_Daly           = sqrt(2 delta M) [1 + sqrt(delta / 2M) / 3 + (delta / 2M) / 9] - delta
                         (delta < 2M; else M)           Daly 2006, eq. 37

``lambda_acc`` is a published per-accelerator interruption rate: Meta's Llama 3 405B run
(Dubey et al. 2024, "The Llama 3 Herd of Models", sec. 3.3.4) saw 419 unexpected
interruptions in 54 days on 16,384 H100, one per 54 x 24 / 419 = 3.09 h for the job, i.e.
1.97e-5 per GPU-hour. The file keeps the published counts and their source; the rate is
derived here, and it scales with the fleet's accelerator count.

Goodput: with ``tau`` of work between checkpoints, each of ``delta`` seconds (blocking), a
recovery of ``R`` seconds per failure and, on average, half a segment ``(tau + delta) / 2`` of
work lost per failure (the failure strikes uniformly within a segment)::

    goodput = tau / (tau + delta) * (1 - (R + (tau + delta) / 2) / M)

the first factor the share of a segment spent computing, the second the share of wall time not
lost to failures. To first order its loss is ``delta / tau + tau / (2M) + R / M``, which
``tau_Young`` minimizes; the checkpoint interval used is ``checkpoint_interval_hours`` when
given, else ``tau_Young``.

Chained onto a training run (``run=``, a DistributedResult with a ``token_budget``): the
run's ``time_to_train`` is the failure-free compute ``C``, and since goodput does not depend on
the job's length the wall time it takes is ``T = C / goodput`` (``wall_time_to_train``; GPU-hours
``T x n``), with ``E[failures] = T / M`` over that wall time.

Left out: failures during recovery or during a checkpoint write, correlated failures (a
switch taking down many nodes at once), time-varying rates (infant mortality, wear-out),
planned maintenance, spare capacity that hides failures, and partial restarts.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from functools import lru_cache
from typing import Annotated, Any

from pydantic import Field

from ..core import validate as check
from ..core.contract import ForwardModel, Option, Result
from ..errors import DataFileError, UnknownNameError, ValidationError
from ..specs.base import QuantityOf, Sourced
from ..specs.system import Fleet, Node
from ..units import Q_

__all__ = ["ReliabilityModel", "ReliabilityResult", "InterruptionRate", "interruption_rates",
           "per_accelerator_rate", "fleet_mtbf_hours", "young_interval", "daly_interval",
           "goodput", "as_fleet"]

OWNER = "ReliabilityModel"
# The entry of zoo/data/reliability.yaml used when a fleet states no mtbf_hours.
DEFAULT_RATE = "Llama3_405B_H100"
HOUR = 3600.0


# --- the sourced data -----------------------------------------------------------------------
class InterruptionRate(Sourced):
    """Published interruptions of one training job: ``interruptions`` over ``window`` on
    ``accelerators`` devices (an entry of ``zoo/data/reliability.yaml``)."""

    key: Annotated[str, Field(pattern=r"^[A-Za-z_][A-Za-z0-9_]*$")]
    name: str
    measured_on: str
    accelerators: Annotated[int, Field(gt=0, strict=True)]
    interruptions: Annotated[int, Field(gt=0, strict=True)]
    window: QuantityOf("hour")

    @property
    def per_accelerator_hour(self) -> float:
        """Interruptions per accelerator-hour: ``interruptions / (accelerators x window)``."""
        return self.interruptions / (self.accelerators * float(self.window.to("hour").magnitude))


@lru_cache(maxsize=1)
def interruption_rates() -> dict[str, InterruptionRate]:
    """The entries of ``zoo/data/reliability.yaml`` by key (read once)."""
    from ..zoo import DATA, _read_yaml

    path = DATA / "reliability.yaml"
    out: dict[str, InterruptionRate] = {}
    for i, raw in enumerate(_read_yaml(path)):
        key = raw.get("key", f"#{i + 1}") if isinstance(raw, dict) else f"#{i + 1}"
        entry = InterruptionRate.from_dict(raw, f"{path.name} entry {key}")
        if entry.key in out:
            raise DataFileError(f"{path.name}: duplicate key '{entry.key}'")
        out[entry.key] = entry
    return out


def per_accelerator_rate(key: str = DEFAULT_RATE) -> float:
    """Interruptions per accelerator-hour of a published job (default: Llama 3 405B).

    >>> round(1 / per_accelerator_rate())        # GPU-hours per interruption: 16384*54*24/419
    50677
    """
    rates = interruption_rates()
    if key not in rates:
        raise UnknownNameError("interruption rate", key, rates)
    return rates[key].per_accelerator_hour


# --- closed forms (floats in, floats out) ---------------------------------------------------
def fleet_mtbf_hours(accelerators: int, rate_per_accelerator_hour: float) -> float:
    """``M = 1 / (lambda_acc * n)``: independent parts' rates add up."""
    return 1.0 / (rate_per_accelerator_hour * accelerators)


def young_interval(delta: float, mtbf: float) -> float:
    """Young's (1974) first-order optimum ``sqrt(2 delta M)`` (same units in and out).

    >>> round(young_interval(60.0, 3.0930787589 * 3600.0), 1)   # 60 s checkpoints, M = 3.09 h
    1155.9
    """
    return math.sqrt(2.0 * delta * mtbf)


def daly_interval(delta: float, mtbf: float) -> float:
    """Daly's (2006, eq. 37) higher-order optimum:
    ``sqrt(2 delta M) [1 + sqrt(delta/2M)/3 + (delta/2M)/9] - delta`` for ``delta < 2M``,
    else ``M``."""
    if delta >= 2.0 * mtbf:
        return mtbf
    x = delta / (2.0 * mtbf)
    return math.sqrt(2.0 * delta * mtbf) * (1.0 + math.sqrt(x) / 3.0 + x / 9.0) - delta


def goodput(tau: float, delta: float, recovery: float, mtbf: float) -> float:
    """Useful share of wall time, ``tau/(tau+delta) * (1 - (R + (tau+delta)/2) / M)``; may be
    negative when failures come faster than a segment and its recovery (nothing finishes)."""
    segment = tau + delta
    return tau / segment * (1.0 - (recovery + 0.5 * segment) / mtbf)


# --- inputs ---------------------------------------------------------------------------------
def as_fleet(value, owner: str, name: str = "fleet") -> Fleet:
    """A Fleet from a Fleet, a Node (one node) or a zoo cluster or node name."""
    if isinstance(value, str):
        from ..zoo import Clusters, Nodes
        if value not in Clusters and value in Nodes:
            value = Nodes.get(value)
        else:
            value = Clusters.get(value)       # unknown names raise with the closest matches
    if isinstance(value, Node):
        return Fleet(name=f"1 x {value.name}", node=value, count=1)
    if isinstance(value, Fleet):
        return value
    raise ValidationError(name, "must be a Fleet, a Node or a zoo cluster name "
                          f"(Systems.Clusters). Got {value!r} instead.", owner=owner)


# --- the result -----------------------------------------------------------------------------
@dataclass(frozen=True, eq=False, repr=False)
class ReliabilityResult(Result):
    """Failures and checkpointing of one job. Times are SI seconds inside; the properties give
    quantities in hours (``result.fleet_mtbf.to('min')``)."""

    fleet: Fleet
    accelerators: int
    job_duration_s: float
    checkpoint_time_s: float
    recovery_time_s: float
    fleet_mtbf_s: float
    mtbf_source: str               # "fleet.mtbf_hours" or the reliability.yaml key
    young_interval_s: float
    daly_interval_s: float
    interval_s: float              # the interval goodput is evaluated at
    interval_given: bool
    useful_time_s: float | None = None   # a chained run's failure-free time to train (C)

    summary_inputs = ("fleet",)
    summary_numbers = ("fleet_mtbf:mtbf", "checkpoint_interval:interval",
                       "goodput_ratio:goodput")

    # -- quantities and ratios
    @property
    def fleet_mtbf(self):
        """Mean time between failures of the whole fleet (hours)."""
        return Q_(self.fleet_mtbf_s / HOUR, "hour")

    @property
    def expected_failures(self) -> float:
        """``T / M``: failures expected during the job."""
        return self.job_duration_s / self.fleet_mtbf_s

    @property
    def failure_probability(self) -> float:
        """``1 - exp(-T / M)``: chance that the job sees at least one failure."""
        return -math.expm1(-self.expected_failures)

    @property
    def interruptions_per_day(self) -> float:
        """``24 h / M``."""
        return 24.0 * HOUR / self.fleet_mtbf_s

    @property
    def optimal_checkpoint_interval(self):
        """Young's first-order optimum ``sqrt(2 delta M)`` (hours)."""
        return Q_(self.young_interval_s / HOUR, "hour")

    @property
    def daly_checkpoint_interval(self):
        """Daly's higher-order optimum (hours)."""
        return Q_(self.daly_interval_s / HOUR, "hour")

    @property
    def checkpoint_interval(self):
        """The interval goodput is evaluated at: the one given, else Young's (hours)."""
        return Q_(self.interval_s / HOUR, "hour")

    @property
    def _raw_goodput(self) -> float:
        return goodput(self.interval_s, self.checkpoint_time_s, self.recovery_time_s,
                       self.fleet_mtbf_s)

    @property
    def goodput_ratio(self) -> float:
        """Useful time / wall time (0 when failures leave no progress)."""
        return max(0.0, self._raw_goodput)

    @property
    def lost_time(self):
        """Wall time of the job not spent on useful work, ``T (1 - goodput)`` (hours)."""
        return Q_(self.job_duration_s * (1.0 - self.goodput_ratio) / HOUR, "hour")

    @property
    def wall_time_to_train(self):
        """A chained run's wall time ``T = C / goodput`` (hours); None without ``run``."""
        if self.useful_time_s is None:
            return None
        return Q_(self.job_duration_s / HOUR, "hour")

    @property
    def gpu_hours(self):
        """Accelerator-hours of the job's wall time, ``T x n`` (failures included)."""
        return Q_(self.job_duration_s * self.accelerators / HOUR, "hour")

    @property
    def _losses(self) -> dict[str, float]:
        segment = self.interval_s + self.checkpoint_time_s
        return {"checkpoint writes": self.checkpoint_time_s / segment,
                "rework after failures": 0.5 * segment / self.fleet_mtbf_s,
                "recovery after failures": self.recovery_time_s / self.fleet_mtbf_s}

    # -- the contract
    @property
    def feasible(self) -> bool:
        return self.checkpoint_time_s < self.interval_s and self._raw_goodput > 0.0

    @property
    def reason(self) -> str | None:
        if self.checkpoint_time_s >= self.interval_s:
            return (f"a checkpoint takes {self.checkpoint_time_s:.4g} s, not less than the "
                    f"{self.interval_s:.4g} s interval between checkpoints")
        if self._raw_goodput <= 0.0:
            return (f"failures every {self.fleet_mtbf_s / HOUR:.4g} h leave no progress: "
                    f"recovery {self.recovery_time_s:.4g} s plus half a segment "
                    f"{0.5 * (self.interval_s + self.checkpoint_time_s):.4g} s exceeds the MTBF")
        return None

    @property
    def binding(self) -> str:
        """The largest loss: "checkpoint writes", "rework after failures" or "recovery after
        failures"."""
        losses = self._losses
        return max(losses, key=losses.get)

    @property
    def assumptions(self) -> tuple[str, ...]:
        src = ("fleet MTBF from fleet.mtbf_hours" if self.mtbf_source == "fleet.mtbf_hours"
               else f"per-accelerator interruption rate of {self.mtbf_source} "
                    "(reliability.yaml), scaled by accelerator count")
        return (src, "failures: Poisson, independent, constant rate",
                "a failure loses half a checkpoint segment on average",
                "checkpoint writes block training; no failures during writes or recovery")

    def headline(self) -> dict[str, Any]:
        return {
            "fleet": self.fleet.name, "accelerators": self.accelerators,
            "job_duration": Q_(self.job_duration_s / HOUR, "hour"),
            "fleet_mtbf": self.fleet_mtbf,
            "interruptions_per_day": self.interruptions_per_day,
            "expected_failures": self.expected_failures,
            "failure_probability": self.failure_probability,
            "optimal_checkpoint_interval": self.optimal_checkpoint_interval,
            "daly_checkpoint_interval": self.daly_checkpoint_interval,
            "checkpoint_interval": self.checkpoint_interval,
            "goodput_ratio": self.goodput_ratio, "lost_time": self.lost_time,
            "wall_time_to_train": self.wall_time_to_train, "gpu_hours": self.gpu_hours,
            "feasible": self.feasible, "reason": self.reason,
        }

    def explain(self) -> str:
        m, d, r, tau = (self.fleet_mtbf_s, self.checkpoint_time_s, self.recovery_time_s,
                        self.interval_s)
        if self.mtbf_source == "fleet.mtbf_hours":
            mline = f"  M = fleet.mtbf_hours = {m / HOUR:.4g} h"
        else:
            lam = per_accelerator_rate(self.mtbf_source)
            mline = (f"  M = 1/(lambda_acc * n) = 1/({lam:.4g}/h * {self.accelerators}) = "
                     f"{m / HOUR:.4g} h   (lambda_acc: {self.mtbf_source}, reliability.yaml)")
        segment = tau + d
        raw = self._raw_goodput
        lines = [
            f"{self.fleet.name}: {self.accelerators} accelerators, job of "
            f"{self.job_duration_s / HOUR:.4g} h, checkpoint delta = {d:.4g} s, recovery R = "
            f"{r:.4g} s",
            mline,
            f"  E[failures] = T/M = {self.job_duration_s / HOUR:.4g}/{m / HOUR:.4g} = "
            f"{self.expected_failures:.4g};  P(>=1) = 1 - exp(-T/M) = "
            f"{self.failure_probability:.4g};  {self.interruptions_per_day:.4g} per day",
            f"  tau_Young = sqrt(2 delta M) = sqrt(2 * {d:.4g} s * {m:.4g} s) = "
            f"{self.young_interval_s:.4g} s = {self.young_interval_s / 60:.4g} min   (Young 1974)",
            f"  tau_Daly = sqrt(2 delta M)[1 + sqrt(delta/2M)/3 + (delta/2M)/9] - delta = "
            f"{self.daly_interval_s:.4g} s   (Daly 2006)",
            f"  interval used: tau = {tau:.4g} s"
            + (" (given)" if self.interval_given else " (Young's)"),
            f"  goodput = tau/(tau+delta) * (1 - (R + (tau+delta)/2)/M) = "
            f"{tau:.4g}/{segment:.4g} * (1 - ({r:.4g} + {0.5 * segment:.4g})/{m:.4g}) = "
            f"{raw:.4g}" + ("" if raw > 0 else " -> 0"),
        ]
        if self.useful_time_s is not None and self.feasible:
            lines.append(f"  wall time T = C / goodput = {self.useful_time_s / HOUR:.4g} h / "
                         f"{raw:.4g} = {self.job_duration_s / HOUR:.4g} h; "
                         f"{self.gpu_hours.magnitude:,.0f} GPU-hours")
        if not self.feasible:
            lines.append(f"  infeasible: {self.reason}")
        return "\n".join(lines)


# --- the solver -----------------------------------------------------------------------------
class ReliabilityModel(ForwardModel):
    """Fleet MTBF, failure odds, the Young-Daly checkpoint interval and goodput of a job (see
    the module docstring)."""

    options = (
        Option("fleet", None, "the fleet: Fleet, Node or zoo cluster name (default: the "
               "run's)"),
        Option("job_duration_hours", None, "wall-clock length of the job, hours, > 0 (or "
               "give run)"),
        Option("checkpoint_time_s", None, "time one checkpoint blocks training, s, > 0 "
               "(needed; CheckpointModel gives it)"),
        Option("avg_recovery_time_s", 300.0, "restart after a failure (reschedule, reload, "
               "warm up), s, >= 0; the incumbent's 300 s, an assumption"),
        Option("checkpoint_interval_hours", None, "work between checkpoints, hours; default: "
               "Young's optimum sqrt(2 delta M)"),
        Option("run", None, "a DistributedResult with a token_budget: its fleet, and its "
               "time to train as the failure-free work (wall time = that / goodput)"),
    )

    @classmethod
    def example(cls, feasible: bool = True) -> dict[str, Any]:
        """The Llama 3 405B partition (16,384 H100) with 60 s checkpoints for 30 days; then
        the same with a checkpoint every 36 s, shorter than a checkpoint takes."""
        from ..zoo import Clusters
        fleet = Clusters.Meta_Llama3_405B_16K
        if feasible:
            return dict(fleet=fleet, job_duration_hours=720.0, checkpoint_time_s=60.0)
        return dict(fleet=fleet, job_duration_hours=720.0, checkpoint_time_s=60.0,
                    checkpoint_interval_hours=0.01)

    def solve(self, fleet=None, job_duration_hours: float | None = None,
              checkpoint_time_s: float | None = None, avg_recovery_time_s: float = 300.0,
              checkpoint_interval_hours: float | None = None, run=None) -> ReliabilityResult:
        """Failure statistics and checkpoint cadence of a job on ``fleet``.

        Parameters
        ----------
        fleet : Fleet, Node or zoo cluster name; its ``mtbf_hours`` (the whole fleet's) is
            used when set, else the per-accelerator rate of ``zoo/data/reliability.yaml``;
            default: the run's system
        job_duration_hours : float > 0, wall-clock hours the job runs (not with ``run``)
        checkpoint_time_s : float > 0, seconds one checkpoint blocks training (``delta``)
        avg_recovery_time_s : float >= 0, seconds to restart after a failure (``R``)
        checkpoint_interval_hours : float > 0 or None, hours of work between checkpoints
            (``tau``); None uses Young's optimum
        run : DistributedResult with a ``token_budget``, or None: its ``time_to_train`` is
            the failure-free work ``C`` and the job lasts ``T = C / goodput``

        Returns
        -------
        ReliabilityResult with ``fleet_mtbf``, ``failure_probability``, ``expected_failures``,
        ``optimal_checkpoint_interval`` (Young), ``daly_checkpoint_interval``,
        ``goodput_ratio`` and ``interruptions_per_day``.

        Examples
        --------
        16,384 H100 (the Llama 3 405B run): M = 54 x 24 / 419 = 3.09 h; with 60 s
        checkpoints Young's interval is sqrt(2 x 60 s x 11,135 s) = 1,156 s = 19.3 min.

        >>> from mlsysim import Systems
        >>> r = ReliabilityModel().solve(Systems.Clusters.Meta_Llama3_405B_16K,
        ...                              job_duration_hours=720, checkpoint_time_s=60)
        >>> round(r.fleet_mtbf.to("hour").magnitude, 2), round(r.expected_failures)
        (3.09, 233)
        >>> round(r.optimal_checkpoint_interval.to("min").magnitude, 1)
        19.3
        >>> round(r.goodput_ratio, 3)    # 1156/1216 * (1 - (300 + 608)/11135)
        0.873
        """
        useful = None
        if run is not None:
            useful, fleet = _run_work(run, fleet, job_duration_hours)
        elif fleet is None:
            raise ValidationError("fleet", "is needed (a Fleet, a Node or a zoo cluster name), "
                                  "or give run=, a DistributedResult.", owner=OWNER)
        elif job_duration_hours is None:
            raise ValidationError("job_duration_hours", "is needed (wall-clock hours of the "
                                  "job), or give run=, a DistributedResult with a "
                                  "token_budget.", owner=OWNER)
        fleet = as_fleet(fleet, OWNER)
        if checkpoint_time_s is None:
            raise ValidationError("checkpoint_time_s", "is needed: seconds one checkpoint "
                                  "blocks training (CheckpointModel gives it).", owner=OWNER)
        t = useful if useful is not None else \
            check.positive_float("job_duration_hours", job_duration_hours, OWNER) * HOUR
        delta = check.positive_float("checkpoint_time_s", checkpoint_time_s, OWNER)
        rec = check.positive_float("avg_recovery_time_s", avg_recovery_time_s, OWNER,
                                   allow_zero=True)
        tau_given = None if checkpoint_interval_hours is None else \
            check.positive_float("checkpoint_interval_hours", checkpoint_interval_hours,
                                 OWNER) * HOUR
        n = fleet.total_accelerators
        if fleet.mtbf_hours is not None:
            m, source = fleet.mtbf_hours * HOUR, "fleet.mtbf_hours"
        else:
            m = fleet_mtbf_hours(n, per_accelerator_rate(DEFAULT_RATE)) * HOUR
            source = DEFAULT_RATE
        young = young_interval(delta, m)
        tau = young if tau_given is None else tau_given
        if useful is not None:
            g = goodput(tau, delta, rec, m)
            t = useful / g if g > 0.0 and delta < tau else useful
        return ReliabilityResult(
            fleet=fleet, accelerators=n, job_duration_s=t, checkpoint_time_s=delta,
            recovery_time_s=rec, fleet_mtbf_s=m, mtbf_source=source, young_interval_s=young,
            daly_interval_s=daly_interval(delta, m), interval_s=tau,
            interval_given=tau_given is not None, useful_time_s=useful)


def _run_work(run, fleet, job_duration_hours) -> tuple[float, Any]:
    """(failure-free seconds, fleet) of a chained training run."""
    if not hasattr(run, "tokens_per_s"):
        raise ValidationError("run", f"must be a DistributedResult. Got {run!r} instead.",
                              owner=OWNER)
    t = run.time_to_train
    if t is None:
        raise ValidationError("run", "has no time to train: solve DistributedModel with "
                              "token_budget=... (tokens to train on).", owner=OWNER)
    if job_duration_hours is not None:
        raise ValidationError("job_duration_hours", "and run both set the job's length; "
                              "give one (with run, the wall time is its time to train / "
                              "goodput).", owner=OWNER)
    if not run.feasible:
        raise ValidationError("run", f"is infeasible ({run.reason}); a job that does not run "
                              "has no failures to plan for.", owner=OWNER)
    return float(t.to("s").magnitude), run.system if fleet is None else fleet
