"""The batch size that maximizes throughput while the p99 latency meets an SLA.

Requests arrive at ``arrival_rate_qps`` (Poisson). A batch of b requests is served together in
S(b) = TTFT(b) + (output_len - 1) * ITL(b) (ServingModel, evaluated for every b at once with
the same equations). Batches reach the server at lambda / b per second; the server is an
M/D/1 queue of batches (deterministic service, Allen-Cunneen with cv = 0), and a request also
waits for its batch to fill, at worst (b - 1) / lambda. So

    p99(b) = (b - 1) / lambda + W_q,99(lambda / b, S(b)) + S(b),
    throughput(b) = min(lambda, b / S(b)),

and the best b is the largest-throughput one with p99(b) <= SLA (ties: the lower p99). Every
b's point is kept (the front), infeasible ones with their reason.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np

from ..core import validate as check
from ..core.contract import REQUIRED, ForwardModel, Option, Result, jsonable
from ..solvers.queueing import mmc_wait_quantile
from ..solvers.serving import ServingModel, serving_times
from ..specs.configs import ServingConfig, serving_options
from ..units import Q_, Rate

__all__ = ["BatchingOptimizer", "BatchingResult", "batched_p99", "server_capacity"]

OWNER = "BatchingOptimizer"


def batched_p99(batch: int, rate: float, service_s: float) -> float:
    """p99 latency (s) of Poisson requests at ``rate`` served in batches of ``batch`` taking
    ``service_s`` each (module docstring): the fill wait (b - 1) / lambda, the M/D/1 queue of
    batches at lambda / b and the service; inf when the server is saturated.

    One request at a time, 5 ms each, 100 per second: rho = 0.5, and W_q,99 = ln(rho / 0.01) /
    (mu - lambda) x (1 + cv^2) / 2 = ln(50) / 100 / 2 = 19.56 ms, plus the 5 ms service:

    >>> round(batched_p99(1, 100.0, 0.005) * 1e3, 2)
    24.56
    """
    if rate / batch * service_s >= 1.0:
        return math.inf
    return ((batch - 1) / rate
            + mmc_wait_quantile(0.99, rate / batch, service_s, 1, service_time_cv=0.0)
            + service_s)


def server_capacity(service_s, batches, bound_s: float) -> tuple[float, int, float]:
    """The highest Poisson arrival rate (requests/s) a batched server sustains with p99 latency
    <= ``bound_s`` (MLPerf's Server scenario), with the batch that reaches it and its p99:
    ``(0.0, 0, inf)`` when no batch meets the bound even at a vanishing rate.
    ``service_s[i]``: seconds to serve a batch of ``batches[i]``. For each batch the p99 falls
    as the fill wait shrinks and then climbs with the queue, so the rate is found by bisection
    on the climbing side, above the rate that minimizes it (golden-section search)."""
    best = (0.0, 0, math.inf)
    for b, s in zip(batches, service_s):
        b, s = int(b), float(s)
        if s > bound_s:
            continue
        top = b / s * (1 - 1e-9)

        def p99(rate: float, b: int = b, s: float = s) -> float:
            return batched_p99(b, rate, s)

        lo, hi = top * 1e-6, top        # golden-section search for the rate of least p99
        g = (math.sqrt(5) - 1) / 2
        for _ in range(60):
            x1, x2 = hi - g * (hi - lo), lo + g * (hi - lo)
            if p99(x1) <= p99(x2):
                hi = x2
            else:
                lo = x1
        start = (lo + hi) / 2
        if p99(start) > bound_s:
            continue
        lo, hi = start, top             # the largest rate with p99 <= bound
        for _ in range(60):
            mid = (lo + hi) / 2
            lo, hi = (mid, hi) if p99(mid) <= bound_s else (lo, mid)
        if lo > best[0]:
            best = (lo, b, p99(lo))
    return best


@dataclass(frozen=True, eq=False, repr=False)
class BatchingResult(Result):
    model: Any
    hardware: Any
    sla_s: float
    arrival_rate: float
    batch_sizes: np.ndarray
    service_s: np.ndarray
    p99_s: np.ndarray
    throughput: np.ndarray           # requests/s
    fits: np.ndarray                 # KV cache fits at that batch
    best_index: int | None

    @property
    def feasible(self) -> bool:
        return self.best_index is not None

    @property
    def reason(self) -> str | None:
        if self.feasible:
            return None
        return (f"no batch size meets p99 <= {self.sla_s * 1e3:g} ms at {self.arrival_rate:g} "
                f"req/s (best p99 {np.nanmin(self.p99_s) * 1e3:.4g} ms)")

    @property
    def binding(self) -> str:
        """What stops the choice: "latency SLA" (no batch, or no larger batch, meets it),
        "KV capacity" (the next batch does not fit), or "arrival rate" (the best batch
        already serves every request: throughput = lambda)."""
        i = self.best_index
        if i is None:
            return "latency SLA"
        if self.throughput[i] >= self.arrival_rate * (1 - 1e-9):
            return "arrival rate"
        if i + 1 < len(self.fits) and not self.fits[i + 1]:
            return "KV capacity"
        return "latency SLA"

    assumptions = ("Poisson arrivals; batches served one at a time (M/D/1 of batches)",
                   "a request waits at worst (b - 1) / lambda for its batch to fill",
                   "service time S(b) = TTFT(b) + (output_len - 1) ITL(b) (ServingModel)")
    main_latency = "service_s"
    summary_inputs = ("model", "hardware", "sla_p99:sla", "arrival_rate_q:rate")
    summary_numbers = ("best_batch_size:best", "best_throughput:", "best_p99:p99")

    @property
    def sla_p99(self):
        """The p99 target as a quantity (ms)."""
        return Q_(self.sla_s, "s").to("ms")

    @property
    def arrival_rate_q(self) -> Rate:
        """The arrival rate as a Rate (requests per second)."""
        return Rate(self.arrival_rate, "1/s")

    @property
    def best_batch_size(self) -> int | None:
        return None if self.best_index is None else int(self.batch_sizes[self.best_index])

    @property
    def best_throughput(self) -> Rate | None:
        return None if self.best_index is None else Rate(self.throughput[self.best_index], "1/s")

    @property
    def best_p99(self):
        return None if self.best_index is None else Q_(self.p99_s[self.best_index], "s").to("ms")

    def front(self) -> list[dict[str, Any]]:
        """Every batch size: throughput, p99, and whether it meets the SLA and fits."""
        return [{"batch_size": int(b), "throughput_rps": float(x), "p99_ms": float(p) * 1e3,
                 "service_ms": float(s) * 1e3, "fits": bool(f),
                 "meets_sla": bool(f and p <= self.sla_s)}
                for b, s, p, x, f in zip(self.batch_sizes, self.service_s, self.p99_s,
                                         self.throughput, self.fits)]

    def headline(self) -> dict[str, Any]:
        return {"model": self.model.name, "hardware": self.hardware.name,
                "sla_p99": self.sla_p99, "arrival_rate": self.arrival_rate_q,
                "best_batch_size": self.best_batch_size, "best_throughput": self.best_throughput,
                "best_p99": self.best_p99, "feasible": self.feasible, "reason": self.reason}

    def to_dict(self) -> dict[str, Any]:
        d = super().to_dict()
        d["front"] = jsonable(self.front())
        return d

    def explain(self) -> str:
        lines = ["p99(b) = (b-1)/lambda + W_q,99(lambda/b, S(b)) + S(b); throughput = "
                 "min(lambda, b/S(b))"]
        if self.feasible:
            i = self.best_index
            lines.append(f"  best b = {self.best_batch_size}: S = {self.service_s[i] * 1e3:.4g}"
                         f" ms, p99 = {self.p99_s[i] * 1e3:.4g} ms <= "
                         f"{self.sla_s * 1e3:g} ms, throughput {self.throughput[i]:.4g} req/s")
        else:
            lines.append(f"  {self.reason}")
        return "\n".join(lines)


class BatchingOptimizer(ForwardModel):
    """The throughput-maximizing batch size under a p99 latency SLA (module docstring)."""

    options = (
        Option("model", REQUIRED, "generative model: spec or zoo name"),
        Option("hardware", REQUIRED, "device: spec or zoo name"),
        Option("seq_len", REQUIRED, "prompt tokens per request"),
        Option("sla_latency_ms", REQUIRED, "p99 latency target, ms"),
        Option("arrival_rate_qps", REQUIRED, "requests per second (Poisson)"),
        Option("output_len", 128, "generated tokens per request"),
        Option("max_batch_size", 256, "largest batch searched"),
        Option("precision", None, "compute precision; default: the device's"),
        Option("tp_size", 1, "tensor-parallel devices"),
        Option("serving", None, "further ServingModel options: a dict of ServingConfig "
               "fields or a ServingConfig"),
    )

    @classmethod
    def example(cls, feasible: bool = True) -> dict[str, Any]:
        """Llama-3-8B on an H100 at 2 req/s under a 5 s p99; no batch meets a 1 ms p99."""
        from ..zoo import Hardware, Models
        return dict(model=Models.Llama3_8B, hardware=Hardware.H100, seq_len=256,
                    output_len=32, sla_latency_ms=5000 if feasible else 1,
                    arrival_rate_qps=2)

    def solve(self, model, hardware, seq_len: int, sla_latency_ms: float,
              arrival_rate_qps: float, output_len: int = 128, max_batch_size: int = 256,
              precision: str | None = None, tp_size: int = 1,
              serving: ServingConfig | dict | None = None) -> BatchingResult:
        """``serving``: further ServingModel options (a dict of ServingConfig fields or a
        ServingConfig), e.g. ``{"kv_precision": "fp8"}``; the batch is the optimizer's."""
        sla = check.positive_float("sla_latency_ms", sla_latency_ms, OWNER) / 1e3
        lam = check.positive_float("arrival_rate_qps", arrival_rate_qps, OWNER)
        bmax = check.positive_int("max_batch_size", max_batch_size, OWNER)
        opts = serving_options(serving, OWNER, {"batch_size": "what it optimizes; give "
                                                "max_batch_size instead"})
        # One plan validates everything and serves every batch size with the same equations
        # (speculative decoding, sparsity, TP/PP and all).
        plan = ServingModel().prepare(model, hardware, seq_len=seq_len, output_len=output_len,
                                      **{"precision": precision, "tp_size": tp_size, **opts})
        b = np.arange(1, bmax + 1, dtype=np.float64)
        prefill, comm_p, _, _, itl, kv_transfer = serving_times(plan, b[:, None])
        service = prefill + comm_p + kv_transfer + (plan.out - 1) * itl
        fits = plan.memory.fits(b)
        p99 = np.array([batched_p99(int(bb), lam, float(s)) for bb, s in zip(b, service)])
        throughput = np.minimum(lam, b / service)
        ok = fits & (p99 <= sla)
        best = None
        if ok.any():
            cand = np.where(ok)[0]
            top = throughput[cand].max()
            near = cand[throughput[cand] >= top * (1 - 1e-9)]
            best = int(near[np.argmin(p99[near])])
        return BatchingResult(model=plan.model, hardware=plan.hardware, sla_s=sla, arrival_rate=lam,
                              batch_sizes=b.astype(int), service_s=service, p99_s=p99,
                              throughput=throughput, fits=fits, best_index=best)
