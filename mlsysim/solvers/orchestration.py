"""How long a job waits for its GPUs on a shared cluster: the scheduler as an M/M/c queue.

Jobs arrive at random (Poisson, ``lambda`` jobs per hour), each asks for ``G`` GPUs (the mean
job size) and holds them for ``T`` hours on average. A cluster of ``N`` GPUs then runs at most
``c = floor(N / G)`` such jobs at once, so it behaves as ``c`` servers sharing one FCFS queue
(Kleinrock, *Queueing Systems Vol. 1*, 1975, sec. 3.5; Gross & Harris, *Fundamentals of
Queueing Theory*, 4th ed. 2008, sec. 2.3)::

    a      = lambda * T               offered load, in jobs running at once (Erlangs)
    rho    = a / c                    utilization of the job slots; stable only while rho < 1
    C      = ErlangC(c, a)            probability that a job has to wait
    E[W]   = C / (c / T - lambda)     mean wait for GPUs
    P(W > t) = C exp(-(c / T - lambda) t)

Every formula is the one :mod:`mlsysim.solvers.queueing` implements (Erlang C from the
Erlang B recursion, the Allen-Cunneen factor ``(1 + cv^2) / 2`` for job lengths that are not
exponential); this module only maps a cluster onto it. The GPUs left over by the floor
(``N - c G``) stay idle: ``gpu_utilization = lambda G T / N`` is below ``rho`` by that share.

Left out: a distribution of job sizes (every job asks for the mean), fragmentation across
nodes and topology-aware placement, backfilling, priorities and preemption, gang-scheduling
delays, failures and restarts (ReliabilityModel), and arrivals that are burstier than Poisson.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

from ..core import validate as check
from ..core.contract import REQUIRED, ForwardModel, Option, Result
from ..errors import ValidationError
from ..units import Q_
from .queueing import (
    MAX_SERVERS,
    MAX_SERVICE_TIME_CV,
    erlang_c,
    mmc_mean_wait,
    mmc_wait_quantile,
)

__all__ = ["OrchestrationModel", "OrchestrationResult"]

OWNER = "OrchestrationModel"
HOUR = 3600.0


def _hours(seconds: float):
    return Q_(seconds / HOUR, "hour")


@dataclass(frozen=True, eq=False, repr=False)
class OrchestrationResult(Result):
    """Queueing of jobs for GPUs. Rates are per second and times are seconds inside; the
    properties give jobs per hour and hours (``result.mean_wait.to('min')``)."""

    arrival_rate_per_s: float      # lambda, jobs/s
    job_gpus: float                # G, GPUs per job (the mean)
    job_s: float                   # T, mean job length, s
    cluster_gpus: int              # N
    servers: int                   # c = floor(N / G)
    job_time_cv: float             # std/mean of the job length (1: exponential)
    offered_load: float            # a = lambda T
    probability_of_waiting: float  # Erlang C
    mean_wait_s: float
    p50_wait_s: float
    p90_wait_s: float
    p99_wait_s: float

    summary_numbers = ("servers:slots", "utilization", "mean_wait")

    # -- quantities and ratios
    @property
    def arrival_rate(self):
        """Jobs submitted per hour."""
        return Q_(self.arrival_rate_per_s * HOUR, "1/hour")

    @property
    def utilization(self) -> float:
        """``rho = a / c``: share of the job slots busy (>= 1: the queue grows forever)."""
        return self.offered_load / self.servers

    @property
    def gpu_utilization(self) -> float:
        """``lambda G T / N``: share of all GPUs busy, counting the ones no job fits in."""
        return self.offered_load * self.job_gpus / self.cluster_gpus

    @property
    def idle_gpus(self) -> float:
        """``N - c G``: GPUs too few to start another job of the mean size."""
        return self.cluster_gpus - self.servers * self.job_gpus

    @property
    def mean_wait(self):
        return _hours(self.mean_wait_s)

    @property
    def p50_wait(self):
        return _hours(self.p50_wait_s)

    @property
    def p90_wait(self):
        return _hours(self.p90_wait_s)

    @property
    def p99_wait(self):
        return _hours(self.p99_wait_s)

    @property
    def job_duration(self):
        return _hours(self.job_s)

    @property
    def mean_turnaround(self):
        """Submission to completion, ``E[W] + T`` (hours)."""
        return _hours(self.mean_wait_s + self.job_s)

    @property
    def min_gpus(self) -> int:
        """Fewest GPUs that keep the queue stable: ``(floor(a) + 1)`` slots of ``G`` GPUs."""
        return math.ceil((math.floor(self.offered_load) + 1) * self.job_gpus)

    @property
    def exact(self) -> bool:
        """True for exponential job lengths (exact M/M/c); else Allen-Cunneen."""
        return self.job_time_cv == 1.0

    # -- the contract
    @property
    def feasible(self) -> bool:
        return self.offered_load < self.servers          # rho < 1, without rounding a / c

    @property
    def reason(self) -> str | None:
        if self.feasible:
            return None
        return (f"utilization {self.utilization:.4g} >= 1: jobs bring "
                f"{self.offered_load:.4g} jobs' worth of work at once, the cluster runs "
                f"{self.servers}; the queue grows without bound (needs at least "
                f"{self.min_gpus} GPUs)")

    @property
    def binding(self) -> str:
        """"cluster capacity" when unstable; "queueing" when the mean wait outlasts the job
        itself; else "job runtime"."""
        if not self.feasible:
            return "cluster capacity"
        return "queueing" if self.mean_wait_s > self.job_s else "job runtime"

    @property
    def assumptions(self) -> tuple[str, ...]:
        return ("Poisson job arrivals; one FCFS queue", "every job asks for the mean "
                "number of GPUs; c = floor(cluster / job) slots",
                "exponential job lengths (exact M/M/c)" if self.exact else
                f"job length cv {self.job_time_cv:.3g}: Allen-Cunneen approximation",
                "no backfilling, priorities, preemption, fragmentation or failures")

    def headline(self) -> dict[str, Any]:
        return {
            "arrival_rate": self.arrival_rate, "job_gpus": self.job_gpus,
            "job_duration": self.job_duration, "cluster_gpus": self.cluster_gpus,
            "servers": self.servers, "offered_load": round(self.offered_load, 6),
            "utilization": round(self.utilization, 6),
            "gpu_utilization": round(self.gpu_utilization, 6),
            "probability_of_waiting": round(self.probability_of_waiting, 6),
            "mean_wait": self.mean_wait, "p50_wait": self.p50_wait,
            "p90_wait": self.p90_wait, "p99_wait": self.p99_wait,
            "mean_turnaround": self.mean_turnaround,
            "feasible": self.feasible, "reason": self.reason,
        }

    def explain(self) -> str:
        lam_h, t_h, c, g, n = (self.arrival_rate_per_s * HOUR, self.job_s / HOUR,
                               self.servers, self.job_gpus, self.cluster_gpus)
        a = self.offered_load
        lines = [
            f"{n} GPUs, jobs of {g:.4g} GPUs x {t_h:.4g} h arriving at {lam_h:.4g}/h",
            f"  c = floor(N/G) = floor({n}/{g:.4g}) = {c} job slots "
            f"({self.idle_gpus:.4g} GPUs left over)",
            f"  a = lambda*T = {lam_h:.4g}/h * {t_h:.4g} h = {a:.4g} jobs at once",
            f"  rho = a/c = {a:.4g}/{c} = {self.utilization:.4g}; GPU utilization "
            f"lambda*G*T/N = {self.gpu_utilization:.4g}",
        ]
        if not self.feasible:
            lines.append(f"  infeasible: {self.reason}; every wait is inf")
            return "\n".join(lines)
        theta_h = (c - a) / t_h
        k = 0.5 * (1.0 + self.job_time_cv ** 2)
        kline = "" if self.exact else f" * k, k = (1 + cv^2)/2 = {k:.4g} (Allen-Cunneen)"
        lines += [
            f"  P(wait) = ErlangC(c, a) = ErlangC({c}, {a:.4g}) = "
            f"{self.probability_of_waiting:.4g}",
            f"  c/T - lambda = {c}/{t_h:.4g} h - {lam_h:.4g}/h = {theta_h:.4g}/h",
            f"  E[W] = P(wait)/(c/T - lambda){kline} = {self.mean_wait_s / HOUR:.4g} h "
            f"= {self.mean_wait_s / 60:.4g} min",
            f"  P(W > t) = P(wait) exp(-(c/T - lambda) t{'' if self.exact else ' / k'}): "
            f"p50 {self.p50_wait_s / HOUR:.4g} h, p90 {self.p90_wait_s / HOUR:.4g} h, "
            f"p99 {self.p99_wait_s / HOUR:.4g} h",
            f"  turnaround E[W] + T = {self.mean_wait_s / HOUR:.4g} + {t_h:.4g} = "
            f"{(self.mean_wait_s + self.job_s) / HOUR:.4g} h",
        ]
        return "\n".join(lines)


class OrchestrationModel(ForwardModel):
    """Queue wait and utilization of a GPU cluster shared by jobs (M/M/c; see the module
    docstring)."""

    options = (
        Option("arrival_rate_jobs_per_h", REQUIRED, "jobs submitted per hour (Poisson), > 0"),
        Option("mean_job_gpus", REQUIRED, "GPUs one job asks for (the mean), > 0"),
        Option("mean_job_hours", REQUIRED, "hours a job holds its GPUs (the mean), > 0"),
        Option("cluster_gpus", REQUIRED, "GPUs in the cluster: an int, or a Fleet, Node or "
               "zoo cluster name (its accelerator count)"),
        Option("job_time_cv", 1.0, "std/mean of the job length (1: exponential, exact)"),
    )

    @classmethod
    def example(cls, feasible: bool = True) -> dict[str, Any]:
        """256 GPUs running 8-GPU jobs of 12 h, 2.5 submitted per hour (rho = 30/32 =
        0.9375); then 3 per hour (rho = 36/32 = 1.125)."""
        rate = 2.5 if feasible else 3.0
        return dict(arrival_rate_jobs_per_h=rate, mean_job_gpus=8, mean_job_hours=12.0,
                    cluster_gpus=256)

    def solve(self, arrival_rate_jobs_per_h: float, mean_job_gpus: float,
              mean_job_hours: float, cluster_gpus, job_time_cv: float = 1.0
              ) -> OrchestrationResult:
        """Expected wait for GPUs and the cluster's utilization.

        Parameters
        ----------
        arrival_rate_jobs_per_h : float > 0, jobs submitted per hour (Poisson arrivals)
        mean_job_gpus : float > 0, GPUs one job holds (the mean size)
        mean_job_hours : float > 0, hours a job holds them (the mean length)
        cluster_gpus : int >= mean_job_gpus, or a Fleet / Node / zoo cluster name whose
            accelerator count is used
        job_time_cv : float >= 0, std/mean of the job length: 1 = exponential (exact
            M/M/c), 0 = every job equally long, > 1 = heavy-tailed (Allen-Cunneen)

        Returns
        -------
        OrchestrationResult with ``servers`` (c job slots), ``utilization`` (rho),
        ``gpu_utilization``, ``probability_of_waiting``, ``mean_wait``, ``p50_wait``,
        ``p90_wait``, ``p99_wait`` and ``mean_turnaround`` (hours); ``feasible`` is False
        when rho >= 1.

        Examples
        --------
        Two slots (16 GPUs, 8-GPU jobs of 1 h), one job per hour: a = 1, rho = 0.5,
        ErlangC(2, 1) = 1/3, E[W] = (1/3) / (2/1 h - 1/h) = 1/3 h = 20 min.

        >>> r = OrchestrationModel().solve(arrival_rate_jobs_per_h=1, mean_job_gpus=8,
        ...                                mean_job_hours=1, cluster_gpus=16)
        >>> r.servers, r.utilization, round(r.mean_wait.to("min").magnitude, 6)
        (2, 0.5, 20.0)
        >>> OrchestrationModel().solve(3, 8, 1, 16).feasible     # a = 3 >= c = 2
        False
        """
        lam = check.positive_float("arrival_rate_jobs_per_h", arrival_rate_jobs_per_h,
                                   OWNER) / HOUR
        g = check.positive_float("mean_job_gpus", mean_job_gpus, OWNER)
        t = check.positive_float("mean_job_hours", mean_job_hours, OWNER) * HOUR
        n = self._gpus(cluster_gpus)
        cv = check.positive_float("job_time_cv", job_time_cv, OWNER, allow_zero=True)
        if cv > MAX_SERVICE_TIME_CV:
            raise ValidationError("job_time_cv", f"must be at most {MAX_SERVICE_TIME_CV:g}. "
                                  f"Got {job_time_cv!r} instead.", owner=OWNER)
        if n < g:
            raise ValidationError("cluster_gpus", f"must hold at least one job of "
                                  f"mean_job_gpus (={g:g}) GPUs. Got {n} instead.", owner=OWNER)
        c = math.floor(n / g)
        if c > MAX_SERVERS:
            raise ValidationError("cluster_gpus", f"divided by mean_job_gpus must be at most "
                                  f"{MAX_SERVERS:,} job slots. Got {c:,} instead.", owner=OWNER)
        a = lam * t
        q = [mmc_wait_quantile(p, lam, t, c, cv) for p in (0.5, 0.9, 0.99)]
        return OrchestrationResult(
            arrival_rate_per_s=lam, job_gpus=g, job_s=t, cluster_gpus=n, servers=c,
            job_time_cv=cv, offered_load=a, probability_of_waiting=erlang_c(c, a),
            mean_wait_s=mmc_mean_wait(lam, t, c, cv), p50_wait_s=q[0], p90_wait_s=q[1],
            p99_wait_s=q[2])

    @staticmethod
    def _gpus(value) -> int:
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            return check.positive_int("cluster_gpus", value, OWNER)
        from .reliability import as_fleet
        return as_fleet(value, OWNER, "cluster_gpus").total_accelerators

