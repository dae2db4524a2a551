"""Queueing solver: hand-derived M/M/1, M/M/c and M/G/1 values, properties, and validation."""

import dataclasses
import json
import math

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from mlsysim.errors import ValidationError
from mlsysim.solvers.queueing import (
    TailLatencyModel,
    TailLatencyResult,
    allen_cunneen_factor,
    erlang_b,
    erlang_c,
    mmc_mean_wait,
    mmc_wait_quantile,
    response_time_quantile,
    response_time_survival,
)

SOLVER = TailLatencyModel()
SETTINGS = settings(max_examples=150, deadline=None)
REL = 1e-9  # closed forms and bisection to adjacent floats: only rounding separates them


def close(x, y, rel=REL, abs_=0.0):
    return math.isclose(x, y, rel_tol=rel, abs_tol=abs_)


# --- M/M/1 by hand ------------------------------------------------------------------------
def test_mm1_hand_values():
    """lambda = 50/s, S = 10 ms -> mu = 100/s, rho = 0.5, C = rho = 0.5.
    Response time T ~ Exp(mu - lambda) = Exp(50/s):
      E[T] = 1/50 s = 20 ms, E[Wq] = rho/(mu - lambda) = 0.5/50 s = 10 ms,
      p50 = ln 2/50 = 13.863 ms, p90 = ln 10/50 = 46.052 ms, p99 = ln 100/50 = 92.103 ms.
    Wait tail P(Wq > t) = 0.5 e^{-50 t} -> p99 wait = ln(0.5/0.01)/50 = ln 50/50 = 78.24 ms."""
    r = SOLVER.solve(arrival_rate_qps=50, service_latency_ms=10)
    assert isinstance(r, TailLatencyResult)
    assert r.feasible and r.reason is None
    assert close(r.utilization, 0.5)
    assert close(r.probability_of_waiting, 0.5)
    assert close(r.mean_latency.to("ms").magnitude, 20.0)
    assert close(r.mean_wait.to("ms").magnitude, 10.0)
    assert close(r.p50.to("ms").magnitude, 1e3 * math.log(2) / 50)
    assert close(r.p90.to("ms").magnitude, 1e3 * math.log(10) / 50)
    assert close(r.p99.to("ms").magnitude, 1e3 * math.log(100) / 50)
    assert abs(r.p99.to("ms").magnitude - 92.1) < 0.01
    assert close(r.p99_wait.to("ms").magnitude, 1e3 * math.log(50) / 50)  # 78.24 ms
    assert close(r.latency_quantile(0.99).to("ms").magnitude, r.p99.magnitude)
    assert close(r.latency_quantile(0.999).to("s").magnitude, math.log(1000) / 50)


@SETTINGS
@given(st.floats(0.01, 0.999), st.floats(1e-4, 10.0), st.floats(1e-3, 0.999))
def test_single_server_is_mm1(rho, service_time, q):
    """c = 1: T ~ Exp(mu - lambda) so t_q = -ln(1 - q)/(mu - lambda); C = rho."""
    lam = rho / service_time
    assert close(erlang_c(1, rho), rho, rel=1e-12)
    expected = -math.log1p(-q) / (1 / service_time - lam)
    assert close(response_time_quantile(q, lam, service_time, 1), expected, rel=1e-8)
    r = SOLVER.solve(lam, service_time * 1e3, num_replicas=1)
    assert close(r.mean_latency_s, service_time / (1 - rho), rel=1e-9)


# --- Erlang formulas ----------------------------------------------------------------------
def test_erlang_textbook_values():
    """B(2, 1) = (1/2)/(1 + 1 + 1/2) = 1/5; C(2, 1) = 1/3 (Gross & Harris).
    C(3, 2): B = (8/6)/(1 + 2 + 2 + 8/6) = 4/19, C = 3B/(3 - 2(1 - B)) = 12/27 = 4/9."""
    assert close(erlang_b(2, 1.0), 0.2, rel=1e-12)
    assert close(erlang_c(2, 1.0), 1 / 3, rel=1e-12)
    assert close(erlang_c(3, 2.0), 4 / 9, rel=1e-12)
    assert erlang_c(4, 0.0) == 0.0
    assert erlang_c(2, 2.0) == 1.0 and erlang_c(2, 5.0) == 1.0  # unstable: everyone waits


def _erlang_c_logspace(c, a):
    """Direct C = (a^c/c! * c/(c-a)) / (sum_{k<c} a^k/k! + a^c/c! * c/(c-a)), in log space."""
    logs = [k * math.log(a) - math.lgamma(k + 1) for k in range(c)]
    last = c * math.log(a) - math.lgamma(c + 1) + math.log(c / (c - a))
    m = max(logs + [last])
    denom = sum(math.exp(x - m) for x in logs) + math.exp(last - m)
    return math.exp(last - m) / denom


@pytest.mark.parametrize("c,a", [(5, 3.7), (50, 45.0), (200, 150.0), (1000, 950.0),
                                 (1000, 999.0), (1000, 10.0)])
def test_erlang_c_large_server_counts(c, a):
    got = erlang_c(c, a)
    assert 0.0 <= got <= 1.0
    assert close(got, _erlang_c_logspace(c, a), rel=1e-9, abs_=1e-300)


@SETTINGS
@given(st.integers(1, 300), st.floats(0.01, 0.99))
def test_erlang_c_bounds(c, rho):
    """0 <= B <= C <= 1 (waiting is at least as likely as blocking)."""
    a = rho * c
    b, cc = erlang_b(c, a), erlang_c(c, a)
    assert 0.0 <= b <= cc * (1 + 1e-12) <= 1.0 + 1e-12


# --- M/M/c beyond c = 1 ---------------------------------------------------------------------
def test_mm2_equal_rates_limit():
    """lambda = 1/s, S = 1 s, c = 2: a = 1, C = 1/3 and c*mu - lambda = 1 = mu, the limit of
    the hypoexponential: P(T > t) = (1 - C) e^{-t} + C (1 + t) e^{-t} = e^{-t} (1 + t/3).
    E[T] = C/(c mu - lambda) + S = 1/3 + 1 = 4/3 s."""
    for t in (0.0, 0.1, 1.0, 3.0, 10.0):
        assert close(response_time_survival(t, 1.0, 1.0, 2), math.exp(-t) * (1 + t / 3), 1e-12)
    r = SOLVER.solve(arrival_rate_qps=1.0, service_latency_ms=1000.0, num_replicas=2)
    assert close(r.mean_latency_s, 4 / 3)
    for q, t in ((0.5, r.p50_s), (0.9, r.p90_s), (0.99, r.p99_s)):
        assert close(math.exp(-t) * (1 + t / 3), 1 - q, rel=1e-9)
    # continuous across theta == mu: a tiny change of lambda barely moves the p99
    for lam in (1.0 - 1e-9, 1.0 + 1e-9):
        assert close(response_time_quantile(0.99, lam, 1.0, 2), r.p99_s, rel=1e-7)


def test_mm2_distinct_rates():
    """lambda = 150/s, S = 10 ms, c = 2: a = 1.5, B = (1.125)/(1 + 1.5 + 1.125) = 0.31034,
    C = 2B/(2 - 1.5(1 - B)) = 0.62069/0.96552 = 9/14 = 0.642857; theta = 200 - 150 = 50/s.
    E[Wq] = (9/14)/50 s = 12.857 ms; E[T] = 22.857 ms. CDF: (1-C) e^{-100t} + C (100 e^{-50t}
    - 50 e^{-100t})/50; the p99 solves it = 0.01 (checked by substitution)."""
    r = SOLVER.solve(150, 10, num_replicas=2)
    assert close(r.probability_of_waiting, 9 / 14, rel=1e-12)
    assert close(r.mean_wait_s, 9 / 14 / 50)
    assert close(r.mean_latency.to("ms").magnitude, 1e3 * (9 / 14 / 50 + 0.01))

    def surv(t):
        c = 9 / 14
        return (1 - c) * math.exp(-100 * t) + c * (2 * math.exp(-50 * t) - math.exp(-100 * t))

    assert close(surv(r.p99_s), 0.01, rel=1e-9)
    assert close(surv(r.p50_s), 0.5, rel=1e-9)
    assert 0.09709 < r.p99_s < 0.09710  # 97.1 ms
    assert close(mmc_wait_quantile(0.99, 150, 0.01, 2), math.log((9 / 14) / 0.01) / 50)


def test_wait_quantile_zero_when_most_do_not_wait():
    """M/M/1 at rho = 0.5: half the arrivals never wait, so every wait quantile q <= 0.5 is 0."""
    assert mmc_wait_quantile(0.4, 50, 0.01, 1) == 0.0
    assert mmc_wait_quantile(0.5, 50, 0.01, 1) == 0.0
    assert mmc_wait_quantile(0.6, 50, 0.01, 1) > 0.0


# --- properties -----------------------------------------------------------------------------
CV = st.sampled_from([0.0, 0.3, 1.0, 1.7, 4.0])


@SETTINGS
@given(st.floats(0.05, 0.95), st.floats(0.0, 0.5), st.integers(1, 64), st.floats(0.1, 100.0),
       CV)
def test_p99_non_decreasing_in_arrival_rate(rho, bump, c, service_ms, cv):
    lam = rho * c / (service_ms * 1e-3)
    lam2 = lam * (1 + bump * (1 / rho - 1) * 0.99)  # stays below rho = 1
    a = SOLVER.solve(lam, service_ms, c, cv)
    b = SOLVER.solve(lam2, service_ms, c, cv)
    assert b.p99_s >= a.p99_s * (1 - 1e-12)
    assert b.mean_latency_s >= a.mean_latency_s * (1 - 1e-12)
    assert b.utilization >= a.utilization


@SETTINGS
@given(st.floats(1.0, 5000.0), st.floats(0.1, 100.0), st.integers(1, 200), st.integers(1, 50),
       CV)
def test_p99_non_increasing_in_replicas(lam, service_ms, c, extra, cv):
    a = SOLVER.solve(lam, service_ms, c, cv)
    b = SOLVER.solve(lam, service_ms, c + extra, cv)
    assert b.p99_s <= a.p99_s * (1 + 1e-12)  # inf <= inf when both are unstable
    assert b.probability_of_waiting <= a.probability_of_waiting * (1 + 1e-12)
    if b.feasible:
        assert b.p99_s >= b.service_time_s * (1 - 1e-12) if cv == 0 else b.p99_s > 0


@SETTINGS
@given(st.floats(0.01, 0.99), st.floats(0.01, 1000.0), st.integers(1, 500),
       st.floats(0.0, 6.0))
def test_quantiles_are_ordered_and_finite(rho, service_ms, c, cv):
    r = SOLVER.solve(rho * c / (service_ms * 1e-3), service_ms, c, cv)
    assert r.feasible
    values = [r.p50_s, r.p90_s, r.p99_s, r.mean_latency_s, r.mean_wait_s, r.p99_wait_s]
    assert all(math.isfinite(v) and v >= 0 for v in values)
    assert r.p50_s <= r.p90_s <= r.p99_s
    assert r.p99_s >= r.p99_wait_s  # T = Wq + S >= Wq
    assert r.mean_latency_s >= r.service_time_s


@SETTINGS
@given(st.floats(0.05, 0.98), st.integers(1, 100), st.floats(0.5, 50.0))
def test_deterministic_service_waits_less(rho, c, service_ms):
    """Allen-Cunneen: k = (1 + cv^2)/2 is 1/2 at cv = 0, so E[Wq] halves exactly; the whole
    response-time distribution is below the M/M/c one at the tail."""
    lam = rho * c / (service_ms * 1e-3)
    d = SOLVER.solve(lam, service_ms, c, service_time_cv=0.0)
    m = SOLVER.solve(lam, service_ms, c, service_time_cv=1.0)
    assert close(d.mean_wait_s, 0.5 * m.mean_wait_s, rel=1e-12)
    assert d.mean_wait_s <= m.mean_wait_s and d.p99_wait_s <= m.p99_wait_s
    assert d.p99_s < m.p99_s
    assert d.p50_s >= d.service_time_s  # nobody finishes faster than S when S is fixed


def test_md1_and_mg1_match_pollaczek_khinchine():
    """For c = 1 Allen-Cunneen is the exact Pollaczek-Khinchine mean:
    E[Wq] = rho S (1 + cv^2) / (2 (1 - rho)). lambda = 50/s, S = 10 ms, rho = 0.5:
    cv = 0 -> 0.5*10*1/(2*0.5) = 5 ms; cv = 2 -> 0.5*10*5/1 = 25 ms.
    M/D/1 approximate p99: S + k ln(C/0.01)/(mu - lambda) = 10 ms + 0.5 ln(50)/50 s = 49.12 ms."""
    assert close(SOLVER.solve(50, 10, service_time_cv=0).mean_wait_s, 0.005)
    assert close(SOLVER.solve(50, 10, service_time_cv=2).mean_wait_s, 0.025)
    assert close(mmc_mean_wait(50, 0.01, 1, service_time_cv=2), 0.025)
    d = SOLVER.solve(50, 10, service_time_cv=0)
    assert close(d.p99_s, 0.01 + 0.5 * math.log(50) / 50)
    assert d.p50_s == 0.01  # C = 0.5 <= 1 - 0.5: the median request does not wait
    assert allen_cunneen_factor(0.0) == 0.5 and allen_cunneen_factor(1.0) == 1.0


@pytest.mark.parametrize("cv", [0.0, 0.25, 0.999999, 1.0, 1.000001, 1.7, 5.0])
@pytest.mark.parametrize("lam,c", [(1e-6, 1), (60.0, 1), (700.0, 8)])
def test_distribution_moments(cv, lam, c):
    """Integrating the survival function must give E[T] = E[Wq] + S, and near zero load
    (no waits) 2 * int t P(T > t) dt = E[S^2] = S^2 (1 + cv^2): the service-time fit keeps
    the first two moments. P(T > t) = 1 below the fit's shift (1 - cv) S (cv <= 1), so that part
    is integrated exactly; the rest by the trapezoid rule (error << the 1e-3 tolerance)."""
    s = 0.01
    r = SOLVER.solve(lam, s * 1e3, c, cv)
    lo = (1 - cv) * s if cv <= 1 else 0.0
    top = r.latency_quantile(1 - 1e-13).to("s").magnitude
    n = 20_000
    h = (top - lo) / n
    m1 = m2 = 0.0
    for i in range(n + 1):
        t = lo + i * h
        w = 0.5 if i in (0, n) else 1.0
        p = response_time_survival(t, lam, s, c, cv)
        m1 += w * p
        m2 += w * 2 * t * p
    m1 = lo + m1 * h
    m2 = lo * lo + m2 * h
    assert close(m1, r.mean_latency_s, rel=1e-3)
    if lam < 1e-3:
        assert close(m2, s * s * (1 + cv * cv), rel=1e-3)


@pytest.mark.parametrize("cv", [1e-300, 2e-296, 1e-12, 1e-6])
def test_tiny_cv_is_deterministic(cv):
    """cv -> 0: the shifted exponential collapses onto S = 10 ms; the quantiles approach the
    cv = 0 closed form (lambda = 50/s, rho = 0.5: p50 = S, p99 = S + 0.5 ln(50)/50 s). The
    exponential part has mean cv*S, so quantiles move by a few cv*S: tolerance 50 cv."""
    d = SOLVER.solve(50, 10, service_time_cv=0.0)
    r = SOLVER.solve(50, 10, service_time_cv=cv)
    for a, b in ((r.p50_s, d.p50_s), (r.p90_s, d.p90_s), (r.p99_s, d.p99_s)):
        assert math.isfinite(a) and close(a, b, rel=50 * cv + 1e-12)


def test_cv_near_one_is_continuous():
    base = SOLVER.solve(700, 10, 8, 1.0)
    for cv in (1 - 1e-9, 1 + 1e-9):
        r = SOLVER.solve(700, 10, 8, cv)
        assert close(r.p99_s, base.p99_s, rel=1e-7) and close(r.p50_s, base.p50_s, rel=1e-7)


# --- instability -----------------------------------------------------------------------------
@pytest.mark.parametrize("lam,s_ms,c,rho,need", [(250, 10, 2, 1.25, 3), (100, 10, 1, 1.0, 2),
                                                 (1000, 10, 4, 2.5, 11)])
def test_unstable_queue(lam, s_ms, c, rho, need):
    r = SOLVER.solve(lam, s_ms, num_replicas=c)
    assert not r.feasible
    assert close(r.utilization, rho)
    assert r.reason == (f"unstable queue: utilization {rho:.4g} >= 1 (needs more replicas: at "
                        f"least {need})")
    assert SOLVER.solve(lam, s_ms, num_replicas=need).feasible
    for q in (r.p50, r.p90, r.p99, r.mean_wait, r.mean_latency, r.p99_wait,
              r.latency_quantile(0.5)):
        assert math.isinf(q.magnitude) and q.magnitude > 0
    d = r.to_dict()
    assert d["p99"]["value"] is None and d["feasible"] is False
    json.dumps(d)
    assert "unstable queue" in r.explain()
    assert math.isinf(mmc_wait_quantile(0.99, lam, s_ms * 1e-3, c))
    assert math.isinf(response_time_quantile(0.99, lam, s_ms * 1e-3, c))
    assert response_time_survival(1e9, lam, s_ms * 1e-3, c) == 1.0


def test_nearly_saturated_is_large_but_finite():
    r = SOLVER.solve(99.9999, 10)  # rho = 0.999999, T ~ Exp(1e-4/s): p99 = ln(100) * 1e4 s
    assert r.feasible and close(r.p99_s, math.log(100) / (100 - 99.9999), rel=1e-6)


# --- result contract ---------------------------------------------------------------------------
def test_result_contract():
    r = SOLVER.solve(150, 10, 2)
    with pytest.raises(dataclasses.FrozenInstanceError):
        r.p99_s = 0.0
    h = r.headline()
    assert list(h)[:2] == ["arrival_rate", "service_latency"]
    for key in ("utilization", "probability_of_waiting", "mean_wait", "mean_latency", "p50",
                "p90", "p99", "feasible", "reason"):
        assert key in h
    assert f"{r.p99.units:~}" == "ms"
    d = json.loads(r.to_json())
    assert d["p99"]["unit"] == "ms" and abs(d["p99"]["value"] - 97.1) < 0.05
    text = r.explain()
    assert "rho = lambda*S/c = 1.5/2 = 0.75" in text
    assert "P(wait) = ErlangC(c, a) = ErlangC(2, 1.5) = 0.6429" in text
    assert "Allen-Cunneen" in SOLVER.solve(150, 10, 2, 0.5).explain()
    assert r.__rich__() is not None
    assert "p99=97.1 ms" in repr(r)


# --- validation -------------------------------------------------------------------------------
BAD_POSITIVE = [0, -1, -0.5, math.nan, math.inf, "10", None, True]


@pytest.mark.parametrize("value", BAD_POSITIVE)
def test_bad_arrival_rate(value):
    with pytest.raises(ValidationError) as e:
        SOLVER.solve(value, 10)
    assert e.value.field == "arrival_rate_qps" and "TailLatencyModel.solve" in str(e.value)


@pytest.mark.parametrize("value", BAD_POSITIVE + [1e-320, 1e-10])
def test_bad_service_latency(value):
    with pytest.raises(ValidationError) as e:
        SOLVER.solve(10, value)
    assert e.value.field == "service_latency_ms"


@pytest.mark.parametrize("value", [0, -1, 1.5, math.nan, math.inf, "2", None, True, 10**7])
def test_bad_replicas(value):
    with pytest.raises(ValidationError) as e:
        SOLVER.solve(10, 10, num_replicas=value)
    assert e.value.field == "num_replicas"


@pytest.mark.parametrize("value", [-0.1, math.nan, math.inf, 1e7, "1", None, True])
def test_bad_cv(value):
    with pytest.raises(ValidationError) as e:
        SOLVER.solve(10, 10, service_time_cv=value)
    assert e.value.field == "service_time_cv"


@pytest.mark.parametrize("q", [0, 1, -0.1, 1.5, math.nan, "0.99", True])
def test_bad_quantile(q):
    r = SOLVER.solve(10, 10)
    for call in (lambda: r.latency_quantile(q), lambda: r.wait_quantile(q),
                 lambda: mmc_wait_quantile(q, 10, 0.01, 1),
                 lambda: response_time_quantile(q, 10, 0.01, 1)):
        with pytest.raises(ValidationError) as e:
            call()
        assert e.value.field == "q"


def test_pure_function_validation():
    with pytest.raises(ValidationError) as e:
        erlang_c(0, 1.0)
    assert e.value.field == "servers"
    with pytest.raises(ValidationError) as e:
        erlang_c(2, -1.0)
    assert e.value.field == "offered_load"
    with pytest.raises(ValidationError) as e:
        mmc_mean_wait(10, 0, 1)
    assert e.value.field == "service_time"
    with pytest.raises(ValidationError) as e:
        response_time_survival(-1, 10, 0.01, 1)
    assert e.value.field == "t"
    assert SOLVER.solve(10.0, 10.0, num_replicas=2.0).num_replicas == 2  # whole floats accepted


def test_rich_table_is_titled_by_the_result_and_names_what_binds_before_the_verdict():
    """The M/M/2 result's headline has no binding key, so the table adds one just before
    'feasible': 'queueing', as the p99 wait (83.27 ms) outlasts the 10 ms service. The title
    is the result's class name."""
    r = SOLVER.solve(150, 10, 2)
    t = r.__rich__()
    assert t.title == "TailLatencyResult"
    rows = dict(zip(t.columns[0].cells, t.columns[1].cells))
    assert list(rows)[-3:] == ["binding", "feasible", "reason"]
    assert rows["binding"] == "queueing" and rows["feasible"] == "yes"


def test_explain_prints_the_exact_mean_wait_in_ms():
    """M/M/2 at 150/s, S = 10 ms: a = 1.5, ErlangC(2, 1.5) = (1.5^2/2 x 2/0.5) / (1 + 1.5 +
    4.5) = 4.5 / 7 = 0.6429; c mu - lambda = 200/s - 150/s = 50/s; E[Wq] = 0.6429 / 50 s =
    12.86 ms."""
    lines = SOLVER.solve(150, 10, 2).explain().splitlines()
    assert "  E[Wq] = P(wait)/(c*mu - lambda) = 0.6429/50 = 12.86 ms" in lines


def test_continuous_batching_static_prefill_wait_is_md1_with_one_server():
    """The static preset (no chunked prefill): a prompt holds the prefill for its service
    time S, so the wait is one M/D/1 server's, E[Wq] = lam S^2 / (2 (1 - lam S)). Llama-3-8B
    on an H100, 512-token prompts at 2 req/s: S = 13.91 ms, lam S = 0.02782, so
    E[Wq] = 2 x 0.013911^2 / (2 x 0.97218) = 0.1990 ms."""
    from mlsysim.solvers.continuous_batching import ContinuousBatchingModel
    r = ContinuousBatchingModel().solve(**ContinuousBatchingModel.example(), engine="static")
    s, lam = r.ttft_service_s, r.arrival_rate
    assert r.engine.chunked_prefill is False
    assert s == pytest.approx(13.91e-3, rel=1e-3)
    assert r.ttft_wait_s == pytest.approx(lam * s * s / (2 * (1 - lam * s)), rel=1e-12)
    assert r.ttft_wait_s == pytest.approx(0.1990e-3, rel=1e-3)
