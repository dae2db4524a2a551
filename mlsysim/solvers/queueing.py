"""Tail latency of a replicated service under load: M/M/c queueing, with an approximation for
general service times.

A service of ``c`` identical replicas, each taking ``S`` seconds per request on average, receives
Poisson arrivals at ``lambda`` requests/s and serves them first-come first-served from one
shared queue. Everything here is closed-form or a one-dimensional root find in pure Python
(``math`` only), so a solve takes 10-100 microseconds (most of it Erlang C at ~1000 servers).

Notation (SI: seconds, 1/s)::

    mu  = 1 / S                 service rate of one replica
    a   = lambda * S            offered load in Erlangs
    rho = a / c                 utilization; the queue is stable only while rho < 1
    C   = ErlangC(c, a)         probability that an arrival has to wait
    theta = c*mu - lambda       decay rate of the waiting-time tail

Exact M/M/c results (Kleinrock, *Queueing Systems Vol. 1*, 1975, sec. 3.5; Gross & Harris,
*Fundamentals of Queueing Theory*, 4th ed. 2008, sec. 2.3)::

    P(W_q > t) = C * exp(-theta t)                      (t >= 0; W_q = 0 with prob. 1 - C)
    E[W_q]     = C / theta
    T = W_q + S,  W_q and S independent,  S ~ Exp(mu)   (response / sojourn time)
    P(T > t)   = (1 - C) e^{-mu t} + C * P(Exp(theta) + Exp(mu) > t)

The last term is a hypoexponential survival function,
``(mu e^{-theta t} - theta e^{-mu t}) / (mu - theta)``, whose limit at ``theta == mu`` is the
Erlang-2 survival ``(1 + mu t) e^{-mu t}``; :func:`_wait_plus_exp_survival` evaluates it in a
form without cancellation or overflow for any ``theta``, ``mu``.

General service times (``service_time_cv`` = std(S) / E[S] != 1) are an APPROXIMATION:

* waiting time: Allen-Cunneen (Allen, *Probability, Statistics, and Queueing Theory*, 2nd ed.
  1990, eq. 6.83; the c = 1 case is Kingman's heavy-traffic formula, Kingman 1961)::

      E[W_q](G/G/c) ~= E[W_q](M/M/c) * (c_a^2 + c_s^2) / 2,   c_a = 1 (Poisson arrivals)

  and the whole waiting-time distribution is scaled the same way,
  ``P(W_q > t) ~= C * exp(-theta t / k)`` with ``k = (1 + c_s^2) / 2``, so every waiting-time
  quantile is ``k`` times the M/M/c one. ``c_s = 1`` reproduces M/M/c exactly; ``c_s = 0``
  (deterministic service, M/D/c) halves the waits.
* service time: a two-moment phase-type fit with the given mean and cv, independent of the
  wait. For ``c_s <= 1`` a shifted exponential, ``S = (1 - c_s) E[S] + Exp(mean c_s E[S])``
  (deterministic at ``c_s = 0``, exponential at ``c_s = 1``); for ``c_s > 1`` a two-phase
  hyperexponential with balanced means (Whitt, "Approximating a point process by a renewal
  process", Oper. Res. 1982; Sauer & Chandy 1975)::

      p_1,2 = (1 +- sqrt((c_s^2 - 1) / (c_s^2 + 1))) / 2,   rate_i = 2 p_i / E[S]

  Each phase convolves with the waiting time in closed form, so the response-time CDF stays
  exact under the approximation and its quantiles come from a bracketing root find.
"""

from __future__ import annotations

import math
import numbers
from dataclasses import dataclass
from typing import Any

from ..core import validate as check
from ..core.contract import REQUIRED, ForwardModel, Option, Result
from ..errors import ValidationError
from ..units import Q_, Rate

__all__ = [
    "TailLatencyModel",
    "TailLatencyResult",
    "allen_cunneen_factor",
    "erlang_b",
    "erlang_c",
    "mmc_mean_wait",
    "mmc_wait_quantile",
    "response_time_quantile",
    "response_time_survival",
]

# Beyond this the two-moment approximations mean nothing (and cv^2 starts to lose precision).
MAX_SERVICE_TIME_CV = 1e6
# The Erlang B recursion costs one step per server (~0.1 s at the cap).
MAX_SERVERS = 1_000_000
# Service times below a picosecond would make rates such as c / S overflow.
MIN_SERVICE_TIME_S = 1e-12


# --- input checks ---------------------------------------------------------------------------
def _cv(value, owner: str, name: str = "service_time_cv") -> float:
    cv = check.positive_float(name, value, owner, allow_zero=True)
    if cv > MAX_SERVICE_TIME_CV:
        raise ValidationError(name, f"must be at most {MAX_SERVICE_TIME_CV:g} (a coefficient of "
                              f"variation; 1 = exponential, 0 = deterministic). Got {value!r} "
                              "instead.", owner=owner)
    return cv


def _quantile(value, owner: str, name: str = "q") -> float:
    if isinstance(value, bool) or not isinstance(value, numbers.Real) or \
            not math.isfinite(float(value)) or not 0.0 < float(value) < 1.0:
        raise ValidationError(name, "must be a probability strictly between 0 and 1 (0.99 for "
                              f"the p99). Got {value!r} instead.", owner=owner)
    return float(value)


def _servers(value, owner: str, name: str = "servers") -> int:
    c = check.positive_int(name, value, owner)
    if c > MAX_SERVERS:
        raise ValidationError(name, f"must be at most {MAX_SERVERS:,} (the Erlang recursion is "
                              f"O(servers)). Got {value!r} instead.", owner=owner)
    return c


def _service_time(value, owner: str, name: str = "service_time", scale: float = 1.0) -> float:
    """A service time, converted to seconds by ``scale``; at least a picosecond so that rates
    like c / S stay finite."""
    s = check.positive_float(name, value, owner) * scale
    if s < MIN_SERVICE_TIME_S:
        raise ValidationError(name, f"must be at least {MIN_SERVICE_TIME_S / scale:g} (1 ps). "
                              f"Got {value!r} instead.", owner=owner)
    return s


def _queue(arrival_rate, service_time, servers, cv, owner: str) -> tuple[float, float, int, float]:
    return (check.positive_float("arrival_rate", arrival_rate, owner),
            _service_time(service_time, owner), _servers(servers, owner), _cv(cv, owner))


# --- Erlang formulas ------------------------------------------------------------------------
def _erlang_b(c: int, a: float) -> float:
    # Erlang B (blocking probability of M/M/c/c) by the standard recursion
    #   B(0, a) = 1,   B(k, a) = a B(k-1, a) / (k + a B(k-1, a)),
    # which stays in [0, 1] at every step (no factorials, no overflow) for any c.
    # Once B underflows to 0 it stays 0, so the loop may stop early.
    b = 1.0
    for k in range(1, c + 1):
        ab = a * b
        b = ab / (k + ab)
        if b == 0.0:
            break
    return b


def _erlang_c(c: int, a: float) -> float:
    # Erlang C from Erlang B (Gross & Harris 2008, eq. 2.34 and sec. 2.5):
    #   C(c, a) = c B / (c - a (1 - B)),   valid for a < c; an unstable queue always waits.
    if a >= c:
        return 1.0
    b = _erlang_b(c, a)
    return min(1.0, c * b / (c - a * (1.0 - b)))


def erlang_b(servers: int, offered_load: float) -> float:
    """Erlang B: probability that all ``servers`` are busy in M/M/c/c at ``offered_load`` a =
    lambda / mu Erlangs (the loss system, no queue)."""
    owner = "erlang_b"
    return _erlang_b(_servers(servers, owner),
                     check.positive_float("offered_load", offered_load, owner, allow_zero=True))


def erlang_c(servers: int, offered_load: float) -> float:
    """Erlang C: probability that an arrival waits in M/M/c, ``offered_load`` a = lambda / mu.

    ``C = c B / (c - a (1 - B))`` with ``B`` the Erlang B value from its recursion, which is
    stable for thousands of servers. Returns 1 when ``a >= c`` (unstable: everyone waits).

    >>> round(erlang_c(2, 1.0), 6)   # textbook value: 1/3
    0.333333
    """
    owner = "erlang_c"
    return _erlang_c(_servers(servers, owner),
                     check.positive_float("offered_load", offered_load, owner, allow_zero=True))


def allen_cunneen_factor(service_time_cv: float, arrival_cv: float = 1.0) -> float:
    """Allen-Cunneen / Kingman waiting-time factor ``(c_a^2 + c_s^2) / 2`` (1 for M/M/c)."""
    owner = "allen_cunneen_factor"
    ca = _cv(arrival_cv, owner, "arrival_cv")
    cs = _cv(service_time_cv, owner)
    return 0.5 * (ca * ca + cs * cs)


# --- the queue's state: everything the distributions need ------------------------------------
class _State:
    """rho, C and the waiting-time tail rate of one queue, plus the service-time phase fit."""

    __slots__ = ("C", "a", "k", "phases", "rho", "service_time", "shift", "stable", "theta")

    def __init__(self, arrival_rate: float, service_time: float, servers: int, cv: float):
        a = arrival_rate * service_time
        self.a, self.rho, self.service_time = a, a / servers, service_time
        self.stable = a < servers
        self.k = 0.5 * (1.0 + cv * cv)                  # Allen-Cunneen factor, c_a = 1
        self.C = _erlang_c(servers, a)
        # theta = c*mu - lambda = (c - a) / S (written this way to avoid cancellation), divided
        # by k: the approximate G/G/c waiting time keeps the M/M/c shape, stretched by k.
        self.theta = (servers - a) / service_time / self.k if self.stable else 0.0
        self.shift, self.phases = _service_fit(service_time, cv)

    def wait_quantile(self, q: float) -> float:
        if not self.stable:
            return math.inf
        tail = 1.0 - q
        if self.C <= tail:
            return 0.0
        return math.log(self.C / tail) / self.theta

    def survival(self, t: float) -> float:
        """P(T > t) for the response time T = W_q + S."""
        if not self.stable:
            return 1.0
        x = t - self.shift
        if x < 0.0:
            return 1.0
        if not self.phases:                              # deterministic service: T = S + W_q
            return self.C * math.exp(-self.theta * x)
        return sum(p * _wait_plus_exp_survival(x, self.C, self.theta, r) for p, r in self.phases)

    def response_quantile(self, q: float) -> float:
        if not self.stable:
            return math.inf
        tail = 1.0 - q
        if not self.phases:
            return self.shift + self.wait_quantile(q)
        # Bracket: P(W + X > u + v) <= P(W > u) + P(X > v); choose each term = tail / 2. The
        # exponential mixture X has P(X > v) <= exp(-r_min v).
        r_min = min(r for _, r in self.phases)
        half = 0.5 * tail
        u = math.log(self.C / half) / self.theta if self.C > half else 0.0
        lo = self.shift
        hi = max(lo + u + math.log(1.0 / half) / r_min, math.nextafter(lo, math.inf))
        log_tail = math.log(tail)

        def g(t: float) -> float:  # ln P(T > t) - ln(1 - q): decreasing, nearly linear in t
            return math.log(max(self.survival(t), 1e-300)) - log_tail

        g_lo, g_hi = g(lo), g(hi)
        if g_lo <= 0.0:
            return lo
        for _ in range(60):              # the bound above is a bracket; rounding may need more
            if g_hi <= 0.0:
                break
            hi += hi - lo
            g_hi = g(hi)
        # Illinois (regula falsi that halves the stale end's value): a bracket that converges
        # superlinearly, ~10 steps to 1e-15 here against ~60 for bisection.
        side = 0
        for _ in range(200):
            if hi - lo <= 4e-16 * hi:
                break
            t = (lo * g_hi - hi * g_lo) / (g_hi - g_lo)
            if not lo < t < hi:
                t = 0.5 * (lo + hi)
            g_t = g(t)
            if abs(g_t) <= 1e-15:
                return t
            if g_t > 0.0:
                lo, g_lo = t, g_t
                if side == 1:
                    g_hi *= 0.5
                side = 1
            else:
                hi, g_hi = t, g_t
                if side == -1:
                    g_lo *= 0.5
                side = -1
        return hi

    @property
    def mean_wait(self) -> float:
        # E[W_q] = k * C / (c*mu - lambda)   (Allen-Cunneen; exact M/M/c at k = 1)
        return self.C / self.theta if self.stable else math.inf


def _service_fit(mean: float, cv: float) -> tuple[float, list[tuple[float, float]]]:
    """(shift, [(probability, rate), ...]): S = shift + X, X an exponential mixture with the
    given mean and coefficient of variation. No phases means deterministic service."""
    if cv <= 1.0:
        # Shifted exponential: mean = shift + m, std = m  ->  m = cv * E[S].
        m = cv * mean
        if m == 0.0 or not math.isfinite(1.0 / m):     # cv = 0 (or below float range)
            return mean, []
        return mean - m, [(1.0, 1.0 / m)]
    # Balanced-means H2: p1/r1 = p2/r2 = E[S]/2. p2 = (1 - sqrt(1 - eps)) / 2 with
    # eps = 2 / (cv^2 + 1), written as eps / (2 (1 + sqrt(1 - eps))) to keep its digits.
    eps = 2.0 / (cv * cv + 1.0)
    p2 = eps / (2.0 * (1.0 + math.sqrt(1.0 - eps)))
    p1 = 1.0 - p2
    return 0.0, [(p1, 2.0 * p1 / mean), (p2, 2.0 * p2 / mean)]


def _h(x: float) -> float:
    """expm1(x) / x, continuous at 0 (=1); used for x <= 0, where it lies in (0, 1]."""
    return math.expm1(x) / x if x != 0.0 else 1.0


def _wait_plus_exp_survival(x: float, C: float, theta: float, r: float) -> float:
    """P(W + X > x) for W = 0 w.p. 1 - C else Exp(theta), X ~ Exp(r) independent.

        P = (1 - C) e^{-r x} + C (r e^{-theta x} - theta e^{-r x}) / (r - theta)
          = e^{-r x} + C r x e^{-m x} h(-|r - theta| x),    m = min(r, theta),
          h(y) = expm1(y) / y

    The second form has no cancellation as theta -> r (where it becomes the Erlang-2 term
    C r x e^{-r x}) and no overflow for any rates. Check at M/M/1 (C = lambda/mu, theta =
    mu - lambda, r = mu): e^{-mu x} + e^{-theta x} (1 - e^{-lambda x}) = e^{-(mu - lambda) x}.
    """
    d = abs(r - theta)
    m = min(r, theta)
    dx = d * x
    if dx < 1.0:
        mixed = r * x * _h(-dx)
    else:                                  # r x h(-d x) = (r / d)(1 - e^{-d x}), r x may overflow
        mixed = (r / d) * -math.expm1(-dx)
    return min(1.0, math.exp(-r * x) + C * mixed * math.exp(-m * x))


# --- public pure functions ------------------------------------------------------------------
def mmc_mean_wait(arrival_rate: float, service_time: float, servers: int,
                  service_time_cv: float = 1.0) -> float:
    """Mean queueing delay E[W_q] in seconds: ``C / (c mu - lambda)`` (M/M/c), times the
    Allen-Cunneen factor ``(1 + cv^2) / 2`` for general service. ``inf`` when rho >= 1."""
    return _State(*_queue(arrival_rate, service_time, servers, service_time_cv,
                          "mmc_mean_wait")).mean_wait


def mmc_wait_quantile(q: float, arrival_rate: float, service_time: float, servers: int,
                      service_time_cv: float = 1.0) -> float:
    """The ``q`` quantile of the waiting time W_q (seconds, before service starts).

    ``P(W_q > t) = C exp(-(c mu - lambda) t)``  ->  ``t_q = max(0, ln(C / (1 - q)) /
    (c mu - lambda))``; for general service multiplied by ``(1 + cv^2) / 2`` (approximation,
    see the module docstring). ``inf`` when rho >= 1.
    """
    owner = "mmc_wait_quantile"
    q = _quantile(q, owner)
    return _State(*_queue(arrival_rate, service_time, servers, service_time_cv,
                          owner)).wait_quantile(q)


def response_time_survival(t: float, arrival_rate: float, service_time: float, servers: int,
                           service_time_cv: float = 1.0) -> float:
    """P(T > t) for the response time T = W_q + S (exact for M/M/c, cv = 1)."""
    owner = "response_time_survival"
    t = check.positive_float("t", t, owner, allow_zero=True)
    return _State(*_queue(arrival_rate, service_time, servers, service_time_cv,
                          owner)).survival(t)


def response_time_quantile(q: float, arrival_rate: float, service_time: float, servers: int,
                           service_time_cv: float = 1.0) -> float:
    """The ``q`` quantile of the response (sojourn) time T = W_q + S, in seconds.

    Solved by a bracketed root find (Illinois) on the closed-form CDF to ~1e-15. M/M/1 check: T is
    Exp(mu - lambda), so ``response_time_quantile(0.99, ...) = ln(100) / (mu - lambda)``.
    ``inf`` when rho >= 1.
    """
    owner = "response_time_quantile"
    q = _quantile(q, owner)
    return _State(*_queue(arrival_rate, service_time, servers, service_time_cv,
                          owner)).response_quantile(q)


# --- the solver -----------------------------------------------------------------------------
def _ms(seconds: float):
    return Q_(seconds, "s").to("ms")


@dataclass(frozen=True, eq=False)
class TailLatencyResult(Result):
    """Latency of requests through ``num_replicas`` replicas at ``arrival_rate_qps``. Times are
    SI seconds internally; the properties give quantities (``result.p99.to('ms')``). When the
    queue is unstable (utilization >= 1) every latency is ``inf``."""

    arrival_rate_qps: float
    service_time_s: float
    num_replicas: int
    service_time_cv: float
    offered_load: float            # a = lambda * S, Erlangs
    utilization: float             # rho = a / c
    probability_of_waiting: float  # Erlang C
    mean_wait_s: float
    mean_latency_s: float
    p50_s: float
    p90_s: float
    p99_s: float
    p99_wait_s: float

    @property
    def _state(self) -> _State:
        return _State(self.arrival_rate_qps, self.service_time_s, self.num_replicas,
                      self.service_time_cv)

    @property
    def arrival_rate(self) -> Rate:
        return Rate(self.arrival_rate_qps, "sample/s")

    @property
    def service_latency(self):
        return _ms(self.service_time_s)

    @property
    def mean_wait(self):
        return _ms(self.mean_wait_s)

    @property
    def mean_latency(self):
        return _ms(self.mean_latency_s)

    @property
    def p50(self):
        return _ms(self.p50_s)

    @property
    def p90(self):
        return _ms(self.p90_s)

    @property
    def p99(self):
        return _ms(self.p99_s)

    @property
    def p99_wait(self):
        return _ms(self.p99_wait_s)

    @property
    def exact(self) -> bool:
        """True for M/M/c (cv = 1); otherwise the Allen-Cunneen approximation."""
        return self.service_time_cv == 1.0

    @property
    def feasible(self) -> bool:
        return self.offered_load < self.num_replicas      # rho < 1, without rounding a / c

    @property
    def min_replicas(self) -> int:
        """Fewest replicas that keep the queue stable (a < c)."""
        return math.floor(self.offered_load) + 1

    @property
    def reason(self) -> str | None:
        if self.feasible:
            return None
        return (f"unstable queue: utilization {self.utilization:.4g} >= 1 (needs more "
                f"replicas: at least {self.min_replicas})")

    @property
    def binding(self) -> str:
        """"replica capacity" when unstable, "queueing" when the p99 wait outlasts the service
        time, else "service time"."""
        if not self.feasible:
            return "replica capacity"
        return "queueing" if self.p99_wait_s > self.service_time_s else "service time"

    @property
    def assumptions(self) -> tuple[str, ...]:
        return ("Poisson arrivals", "one FCFS queue shared by identical replicas",
                "exponential service (exact M/M/c)" if self.exact else
                f"service cv {self.service_time_cv:.3g}: Allen-Cunneen approximation",
                "steady state (no warm-up, no bursts beyond Poisson)")

    main_latency = "p99_s"

    def latency_quantile(self, q: float):
        """The ``q`` quantile of the response time as a quantity in ms (``inf`` if unstable)."""
        return _ms(self._state.response_quantile(_quantile(q, "TailLatencyResult."
                                                              "latency_quantile")))

    def wait_quantile(self, q: float):
        """The ``q`` quantile of the queueing delay alone, in ms."""
        return _ms(self._state.wait_quantile(_quantile(q, "TailLatencyResult.wait_quantile")))

    def headline(self) -> dict[str, Any]:
        return {
            "arrival_rate": self.arrival_rate, "service_latency": self.service_latency,
            "num_replicas": self.num_replicas, "service_time_cv": self.service_time_cv,
            "utilization": round(self.utilization, 6),
            "probability_of_waiting": round(self.probability_of_waiting, 6),
            "mean_wait": self.mean_wait, "mean_latency": self.mean_latency,
            "p50": self.p50, "p90": self.p90, "p99": self.p99,
            "feasible": self.feasible, "reason": self.reason,
        }

    def explain(self) -> str:
        lam, s, c, cv = (self.arrival_rate_qps, self.service_time_s, self.num_replicas,
                         self.service_time_cv)
        kind = ("M/M/c (Poisson arrivals, exponential service): exact" if self.exact else
                f"M/G/c with service cv = {cv:.3g}: Allen-Cunneen approximation")
        a, rho = self.offered_load, self.utilization
        lines = [
            f"{c} replica(s) at {lam:.4g} requests/s, service {s * 1e3:.4g} ms; {kind}",
            f"  a = lambda*S = {lam:.4g}/s * {s * 1e3:.4g} ms = {a:.4g} Erlang",
            f"  rho = lambda*S/c = {a:.4g}/{c} = {rho:.4g}",
        ]
        if not self.feasible:
            lines.append(f"  {self.reason}; the queue grows without bound, every "
                         "latency is inf")
            return "\n".join(lines)
        k = 0.5 * (1.0 + cv * cv)
        theta = (c - a) / s
        lines += [
            (f"  P(wait) = ErlangC(c, a) = ErlangC({c}, {a:.4g}) = "
             f"{self.probability_of_waiting:.4g}"),
            f"  c*mu - lambda = {c}/{s * 1e3:.4g} ms - {lam:.4g}/s = {theta:.4g}/s",
        ]
        if self.exact:
            lines += [
                (f"  E[Wq] = P(wait)/(c*mu - lambda) = {self.probability_of_waiting:.4g}/"
                 f"{theta:.4g} = {self.mean_wait_s * 1e3:.4g} ms"),
                (f"  P(Wq > t) = P(wait) * exp(-(c*mu - lambda) t) -> p99 wait = "
                 f"max(0, ln(P(wait)/0.01)/(c*mu - lambda)) = {self.p99_wait_s * 1e3:.4g} ms"),
            ]
        else:
            lines += [
                f"  k = (ca^2 + cs^2)/2 = (1 + {cv:.3g}^2)/2 = {k:.4g}   (Allen 1990; Kingman)",
                (f"  E[Wq] ~= k * P(wait)/(c*mu - lambda) = {k:.4g} * "
                 f"{self.probability_of_waiting:.4g}/{theta:.4g} = "
                 f"{self.mean_wait_s * 1e3:.4g} ms"),
                (f"  P(Wq > t) ~= P(wait) * exp(-(c*mu - lambda) t / k) -> p99 wait = "
                 f"{self.p99_wait_s * 1e3:.4g} ms"),
            ]
        service = ("S ~ Exp(mu)" if self.exact else
                   "S deterministic" if cv == 0 else
                   "S ~ shifted exponential fit" if cv < 1 else "S ~ balanced-means H2 fit")
        lines += [
            (f"  E[T] = E[Wq] + S = {self.mean_wait_s * 1e3:.4g} + {s * 1e3:.4g} = "
             f"{self.mean_latency_s * 1e3:.4g} ms"),
            (f"  T = Wq + S ({service}); quantiles from its CDF: p50 {self.p50_s * 1e3:.4g} ms, "
             f"p90 {self.p90_s * 1e3:.4g} ms, p99 {self.p99_s * 1e3:.4g} ms"),
        ]
        return "\n".join(lines)

    def __repr__(self) -> str:
        return (f"TailLatencyResult({self.num_replicas} replica(s) at "
                f"{self.arrival_rate_qps:.4g} qps, S={self.service_time_s * 1e3:.4g} ms, "
                f"cv={self.service_time_cv:.3g}: rho={self.utilization:.4g}, "
                f"p99={self.p99_s * 1e3:.4g} ms)")


class TailLatencyModel(ForwardModel):
    """Latency percentiles of a replicated service under Poisson load (M/M/c; M/G/c by the
    Allen-Cunneen approximation when ``service_time_cv != 1``)."""

    options = (
        Option("arrival_rate_qps", REQUIRED, "requests per second arriving (Poisson), > 0"),
        Option("service_latency_ms", REQUIRED, "mean service time of one replica, ms, > 0"),
        Option("num_replicas", 1, "replicas sharing one FCFS queue, >= 1"),
        Option("service_time_cv", 1.0, "std/mean of the service time (1: exponential)"),
    )

    @classmethod
    def example(cls, feasible: bool = True) -> dict[str, Any]:
        """Two replicas at rho = 0.75; then 250 req/s of 10 ms work on two (rho = 1.25)."""
        if feasible:
            return dict(arrival_rate_qps=150, service_latency_ms=10, num_replicas=2)
        return dict(arrival_rate_qps=250, service_latency_ms=10, num_replicas=2)

    def solve(self, arrival_rate_qps: float, service_latency_ms: float, num_replicas: int = 1,
              service_time_cv: float = 1.0) -> TailLatencyResult:
        """Predict waits and response-time percentiles.

        Parameters
        ----------
        arrival_rate_qps : float > 0, requests per second arriving (Poisson)
        service_latency_ms : float > 0, mean time one replica takes per request, in ms
        num_replicas : int >= 1, replicas sharing one FCFS queue
        service_time_cv : float >= 0, std/mean of the service time: 1 = exponential (exact
            M/M/c), 0 = deterministic, > 1 = bursty

        Examples
        --------
        >>> r = TailLatencyModel().solve(arrival_rate_qps=50, service_latency_ms=10)
        >>> round(r.utilization, 3), round(r.p99.magnitude, 2)   # M/M/1: ln(100)/(mu - lambda)
        (0.5, 92.1)
        """
        owner = "TailLatencyModel.solve"
        lam = check.positive_float("arrival_rate_qps", arrival_rate_qps, owner)
        s = _service_time(service_latency_ms, owner, "service_latency_ms", 1e-3)
        c = _servers(num_replicas, owner, "num_replicas")
        cv = _cv(service_time_cv, owner)
        st = _State(lam, s, c, cv)
        inf = math.inf
        stable = st.stable
        return TailLatencyResult(
            arrival_rate_qps=lam, service_time_s=s, num_replicas=c, service_time_cv=cv,
            offered_load=st.a, utilization=st.rho, probability_of_waiting=st.C,
            mean_wait_s=st.mean_wait, mean_latency_s=st.mean_wait + s if stable else inf,
            p50_s=st.response_quantile(0.5), p90_s=st.response_quantile(0.9),
            p99_s=st.response_quantile(0.99), p99_wait_s=st.wait_quantile(0.99),
        )
