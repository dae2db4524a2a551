"""The contract battery: every registered solver (``all_solvers()``), run on its own
representative and infeasible examples, must keep the same promises.

- declared options = the keywords of ``solve`` (names, order, defaults);
- deterministic: two solves give equal ``to_dict()``;
- inputs unmutated: every spec's ``model_dump()`` is the same after the solve;
- units: time fields convert to seconds, rates to 1/s per counted thing, bandwidths to byte/s;
- monotone: doubling memory bandwidth, or every compute peak, never makes the result's main
  latency larger (relative tolerance 1e-12);
- roofs: no result claims more than the hardware can do (each solver's roof is derived in
  its check below);
- strict JSON: ``to_json()`` parses and never contains NaN or Infinity;
- ``feasible=False`` always comes with a reason (and ``feasible=True`` with none); every result
  names its binding resource;
- display: ``repr`` at most 2 lines and 200 characters; ``_repr_html_`` is a table.
"""

from __future__ import annotations

import copy
import dataclasses
import inspect
import json
import math
from operator import attrgetter

import numpy as np
import pytest
from pydantic import BaseModel

import mlsysim
from mlsysim.core.contract import REQUIRED, ForwardModel, Option, Result, jsonable
from mlsysim.solvers.base import all_solvers
from mlsysim.specs.hardware import BYTES_PER_ELEMENT, HardwareSpec
from mlsysim.specs.system import Fleet, Node
from mlsysim.units import Q_, Rate

SOLVERS = all_solvers()
IDS = [s.__name__ for s in SOLVERS]
BOTH = [(s, f) for s in SOLVERS for f in (True, False)]
BOTH_IDS = [f"{s.__name__}-{'feasible' if f else 'infeasible'}" for s, f in BOTH]


def solve(cls: type[ForwardModel], feasible: bool = True, **override):
    kwargs = {**cls.example(feasible), **override}
    return cls().solve(**kwargs), kwargs


def seconds(value) -> np.ndarray:
    """A main latency (float seconds, array of seconds, or time quantity) as seconds."""
    if isinstance(value, Q_):
        return np.asarray(value.to("s").magnitude, dtype=float)
    return np.asarray(value, dtype=float)


# --- the registry and the declared options -----------------------------------------------------
def test_registry_holds_every_solver():
    names = set(IDS)
    assert names >= {"SingleNodeModel", "ServingModel", "ContinuousBatchingModel",
                     "TailLatencyModel", "CompressionModel", "WeightStreamingModel",
                     "InferenceScalingModel", "BatchingOptimizer"}
    assert mlsysim.all_solvers() == SOLVERS
    assert isinstance(mlsysim.ServingModel(), mlsysim.ForwardModel)


@pytest.mark.parametrize("cls", SOLVERS, ids=IDS)
def test_declared_options_match_the_solve_signature(cls):
    params = [p for name, p in inspect.signature(cls.solve).parameters.items()
              if name != "self" and not name.startswith("_")]
    keywords = [p for p in params if p.kind is not p.VAR_KEYWORD]
    assert [o.name for o in cls.options] == [p.name for p in keywords]
    for opt, p in zip(cls.options, keywords):
        want = REQUIRED if p.default is p.empty else p.default
        assert opt.default == want, f"{cls.__name__}.{opt.name}: declared {opt.default!r}, " \
                                    f"solve has {want!r}"
        assert opt.doc, f"{cls.__name__}.{opt.name} has no description"
    # No **kwargs pass-through: options a solver hands on are a declared config argument.
    assert not any(p.kind in (p.VAR_KEYWORD, p.VAR_POSITIONAL) for p in params)


@pytest.mark.parametrize("cls,feasible", BOTH, ids=BOTH_IDS)
def test_examples_use_declared_options(cls, feasible):
    names = {o.name for o in cls.options}
    extra = set(cls.example(feasible)) - names
    assert not extra, f"undeclared options in the example: {extra}"


# --- determinism and purity --------------------------------------------------------------------
@pytest.mark.parametrize("cls,feasible", BOTH, ids=BOTH_IDS)
def test_deterministic(cls, feasible):
    a, _ = solve(cls, feasible)
    b, _ = solve(cls, feasible)
    assert a.to_dict() == b.to_dict()


@pytest.mark.parametrize("cls", SOLVERS, ids=IDS)
def test_inputs_are_not_mutated(cls):
    kwargs = cls.example(True)
    specs = {k: v for k, v in kwargs.items() if isinstance(v, BaseModel)}
    before = {k: v.model_dump() for k, v in specs.items()}
    plain = copy.deepcopy({k: v for k, v in kwargs.items() if k not in specs})
    cls().solve(**kwargs)
    assert {k: v.model_dump() for k, v in specs.items()} == before
    assert {k: v for k, v in kwargs.items() if k not in specs} == plain


@pytest.mark.parametrize("cls", SOLVERS, ids=IDS)
def test_result_is_frozen_and_explains_itself(cls):
    r, _ = solve(cls)
    assert isinstance(r, Result)
    first = dataclasses.fields(r)[0].name
    with pytest.raises(dataclasses.FrozenInstanceError):
        setattr(r, first, None)
    assert isinstance(r.explain(), str) and len(r.explain()) > 20
    assert r.__rich__() is not None
    json.dumps(jsonable(r.trace()), allow_nan=False)
    assert isinstance(r.assumptions, tuple) and r.assumptions
    assert all(isinstance(a, str) and a for a in r.assumptions)


# --- units ---------------------------------------------------------------------------------------
def _words(key: str) -> list[str]:
    return key.lower().split("_")


TIME_WORDS = {"latency", "ttft", "itl", "tpot", "wait", "p50", "p90", "p99"}
RATE_WORDS = {"throughput"}
COUNTED = {"[token]", "[sample]"}


def _kind(key: str) -> str | None:
    w = _words(key)
    if w[-1] == "cv" or "multiplier" in w or "speedup" in w:
        return None
    if RATE_WORDS & set(w) or any(a == "per" and b in ("s", "second")
                                  for a, b in zip(w, w[1:])) or "rate" in w:
        return "rate"
    if TIME_WORDS & set(w) or key.endswith("_per_layer"):
        return "time"
    if "bandwidth" in w:
        return "bandwidth"
    return None


@pytest.mark.parametrize("cls,feasible", BOTH, ids=BOTH_IDS)
def test_units(cls, feasible):
    """Times are quantities that convert to seconds; rates are per second of something counted
    (tokens, samples) or plain 1/s; bandwidths convert to byte/s. Every {value, unit} pair of
    to_dict() has a unit pint parses."""
    r, _ = solve(cls, feasible)
    for key, value in r.headline().items():
        kind = _kind(key)
        if kind is None or value is None:
            continue
        assert isinstance(value, (Q_, Rate)), f"{key} is a bare {type(value).__name__}"
        q = value.quantity if isinstance(value, Rate) else value
        if kind == "time":
            q.to("s")
        elif kind == "bandwidth":
            q.to("byte/s")
        else:
            dims = dict(q.dimensionality)
            assert dims.pop("[time]") == -1, f"{key}: {q.units} is not per second"
            assert all(d in COUNTED and e == 1 for d, e in dims.items()), f"{key}: {q.units}"
            counted = [d for d in dims]
            unit = {"[token]": "token", "[sample]": "sample"}[counted[0]] if counted else None
            (q / Q_(1, unit) if unit else q).to("1/s")

    def walk(d):
        if isinstance(d, dict):
            if set(d) == {"value", "unit"}:
                Q_(1, d["unit"])
            for v in d.values():
                walk(v)
        elif isinstance(d, list):
            for v in d:
                walk(v)
    walk(r.to_dict())


# --- monotone in the hardware -----------------------------------------------------------------
def _faster(hw: HardwareSpec, what: str) -> HardwareSpec:
    """The same device (same key, so the same calibration) with twice the memory bandwidth,
    or twice every dense and sparse compute peak."""
    if what == "memory":
        return hw.model_copy(update={"memory": hw.memory.model_copy(
            update={"bandwidth": hw.memory.bandwidth * 2})})
    c = hw.compute
    return hw.model_copy(update={"compute": c.model_copy(update={
        "dense": {k: v * 2 for k, v in c.dense.items()},
        "sparse": {k: v * 2 for k, v in c.sparse.items()}})})


def _faster_system(system, what: str):
    """A chip, or a node / fleet whose accelerator is the faster chip (same fabrics)."""
    if isinstance(system, HardwareSpec):
        return _faster(system, what)
    if isinstance(system, Node):
        return system.model_copy(update={"accelerator": _faster(system.accelerator, what)})
    return system.model_copy(update={"node": _faster_system(system.node, what)})


@pytest.mark.parametrize("what", ["memory", "compute"])
@pytest.mark.parametrize("cls,feasible", BOTH, ids=BOTH_IDS)
def test_faster_hardware_is_never_slower(cls, feasible, what):
    kwargs = cls.example(feasible)
    devices = [k for k, v in kwargs.items() if isinstance(v, (HardwareSpec, Node, Fleet))]
    if not devices:
        pytest.skip(f"{cls.__name__} takes no hardware")
    r, _ = solve(cls, feasible)
    attr = type(r).main_latency
    if attr is None and not any(isinstance(kwargs[k], HardwareSpec) for k in devices):
        pytest.skip(f"{cls.__name__} reads the system's layout, not its speed")
    assert attr, f"{type(r).__name__} declares no main_latency"
    fast, _ = solve(cls, feasible, **{k: _faster_system(kwargs[k], what) for k in devices})
    if attrgetter(attr)(r) is None:             # nothing ran (an empty search): no time
        return
    before, after = seconds(attrgetter(attr)(r)), seconds(attrgetter(attr)(fast))
    assert np.all(after <= before * (1 + 1e-12)), \
        f"twice the {what} made {attr} go from {before} to {after}"


# --- roofs ---------------------------------------------------------------------------------------
def _bw(hw: HardwareSpec) -> float:
    return float(hw.memory.bandwidth.to("byte/s").magnitude)


def _peak(hw: HardwareSpec, precision: str | None = None) -> float:
    return float(hw.peak(precision).to("flop/s").magnitude)


def _roof_single_node(r, kw):
    """Achieved flop/s = flops / latency <= the dense peak at the precision, and achieved
    bytes/s = bytes / latency <= the memory bandwidth: every operator takes at least
    flops / peak and bytes / bandwidth, efficiencies only lengthen that."""
    hw = r.hardware
    assert r.flops_total / r.latency_s <= _peak(hw, r.precision)
    assert r.bytes_total / r.latency_s <= _bw(hw)


def _roof_serving(r, kw=None):
    """Decode: each step reads every weight of its device's shard once, so the step takes at
    least weights_bytes / BW and tokens/s = pp * batch / itl <= pp * batch * BW / weights
    (times the tokens a speculative step yields). Prefill: at least 2 flop per matmul weight
    per uncached token; leaving out the embedding table and the LM head (each vocab x
    hidden) gives the lower bound 2 * (N - 2 V h) * batch * tokens / (tp * peak)."""
    hw = r.decode_hardware
    assert r.decode_step_s >= r.weights_bytes / _bw(hw)
    roof = r.pp_size * r.batch_size * _bw(hw) / r.weights_bytes * r.accepted_per_step
    assert float(r.tokens_per_s) <= roof
    m = r.model
    matmul_params = m.parameter_count - 2 * m.vocab * m.hidden
    tokens = r.batch_size * (r.seq_len - r.cached_prefix_len)
    assert r.prefill_s >= 2 * matmul_params * tokens / (r.tp_size * _peak(r.hardware,
                                                                          r.precision))


def _roof_continuous_batching(r, kw):
    """Every engine step reads all weights once (tp = 1 here), so tau >= W / BW, and at most
    max_concurrency sequences decode per step: output tokens/s = N / tau <= cap * BW / W,
    with W = parameters x bytes of the default precision (the example sets none). A step
    also costs at least the engine's step overhead."""
    hw = r.hardware
    w = r.model.parameter_count * BYTES_PER_ELEMENT[hw.compute.default_precision]
    assert r.step_s >= w / _bw(hw) + r.step_overhead_s
    assert float(r.output_tokens_per_s) <= r.max_concurrency * _bw(hw) / w


def _roof_tail(r, kw):
    """A stable queue serves lambda < c / S; T = W_q + S >= S, so the mean latency is at least
    S and, with exponential service (cv = 1), p99(T) >= p99(S) = S ln(100); quantiles are
    ordered."""
    if not r.feasible:
        assert r.arrival_rate_qps >= r.num_replicas / r.service_time_s
        return
    assert r.arrival_rate_qps < r.num_replicas / r.service_time_s
    assert r.mean_latency_s >= r.service_time_s
    assert r.p50_s <= r.p90_s <= r.p99_s
    if r.service_time_cv == 1.0:
        assert r.p99_s >= r.service_time_s * math.log(100) * (1 - 1e-12)


def _roof_compression(r, kw):
    """Both configurations keep the serving roofs (compressed weights are fewer bytes)."""
    _roof_serving(r.baseline)
    _roof_serving(r.compressed)


def _roof_weight_streaming(r, kw):
    """Every weight crosses the stream link once per pass: T >= (layers + 1) * t_stream, so the
    achieved stream rate layers * layer_bytes / T stays below the link's bandwidth."""
    assert r.layers * r.layer_bytes / r.total_s <= r.stream_bandwidth


def _roof_inference_scaling(r, kw):
    """Both serving runs keep the serving roofs; tokens generated per second of the scaled
    run cannot beat its batch's decode roof, num_samples * BW / weights."""
    _roof_serving(r.baseline)
    _roof_serving(r.scaled)
    s = r.scaled
    assert r.tokens_generated / s.e2e_latency.to("s").magnitude <= \
        r.num_samples * _bw(s.decode_hardware) / s.weights_bytes


def _roof_batching(r, kw):
    """Throughput can exceed neither the arrival rate nor b / S(b); and S(b) includes
    output_len - 1 decode steps that each read all weights (W = parameters x 2 B at the fp16
    default), so S(b) >= (output_len - 1) W / BW."""
    assert np.all(r.throughput <= r.arrival_rate * (1 + 1e-12))
    assert np.all(r.throughput <= r.batch_sizes / r.service_s * (1 + 1e-12))
    hw = r.hardware
    w = r.model.parameter_count * BYTES_PER_ELEMENT[hw.compute.default_precision]
    assert np.all(r.service_s >= (kw.get("output_len", 128) - 1) * w / _bw(hw))


def _roof_distributed(r, kw):
    """Executed flops cannot beat the fleet's dense peak: hardware flops <= devices x peak x
    step, so HFU <= 1; the step also holds m micro-batches that each read the stage's
    weights at least twice (forward and data gradient): step >= 2 m W_stage / BW."""
    assert 0 < r.hfu <= 1 and 0 < r.mfu <= 1
    assert r.hardware_flops <= r.devices * r.peak_flops * r.step_s * (1 + 1e-12)
    w_stage = r.memory.weights * (r.memory.usable > 0)
    if r.zero_stage < 3:
        assert r.step_s >= 2 * r.microbatch_count * w_stage / _bw(r.hardware)


def _roof_scaling(r, kw):
    """The split spends exactly the budget, 6 N D = C; on a fleet the run cannot beat every
    accelerator at its dense peak: time >= C / (n x peak) (mfu <= 1)."""
    assert math.isclose(6 * r.parameters * r.tokens, r.compute_flop, rel_tol=1e-12)
    if r.fleet is not None:
        peak = _peak(r.fleet.accelerator, r.precision)
        assert r.train_s >= r.compute_flop / (r.accelerators * peak) * (1 - 1e-12)


def _roof_checkpoint(r, kw):
    """No write beats its links: t_write >= size / (n_writers x writer bandwidth) and >= size /
    filesystem limit; a writer is never faster than the device's host link when that is the
    path; an async snapshot copies every shard over host links, t >= size / (n x host)."""
    size = r.checkpoint_bytes
    assert r.write_s >= size / (r.n_writers * r.writer_bandwidth_bps) * (1 - 1e-12)
    assert r.write_s >= size / r.filesystem_limit_bps * (1 - 1e-12)
    ic = r.hardware.accelerator.interconnect if not isinstance(r.hardware, HardwareSpec) \
        else r.hardware.interconnect
    if kw.get("writer_bandwidth") is None and ic is not None and ic.host_bandwidth is not None:
        assert r.writer_bandwidth_bps <= float(ic.host_bandwidth.to("byte/s").m)
    assert r.bytes_per_param >= BYTES_PER_ELEMENT[r.precision]


def _roof_reliability(r, kw):
    """Goodput is a share of wall time, at most the computing share tau / (tau + delta) < 1;
    a probability lies in [0, 1]; Young's interval is the first-order optimum, so goodput at
    it is within rounding of the best over a grid of intervals."""
    assert 0.0 <= r.goodput_ratio <= r.interval_s / (r.interval_s + r.checkpoint_time_s) < 1
    assert 0.0 <= r.failure_probability <= 1.0
    from mlsysim.solvers.reliability import goodput
    grid = [r.young_interval_s * f for f in (0.5, 0.8, 1.25, 2.0)]
    at_young = goodput(r.young_interval_s, r.checkpoint_time_s, r.recovery_time_s,
                       r.fleet_mtbf_s)
    assert all(goodput(t, r.checkpoint_time_s, r.recovery_time_s, r.fleet_mtbf_s)
               <= at_young + 1e-3 for t in grid)


def _roof_topology(r, kw):
    """A node cannot push more than its ports, and uniform traffic no more than that:
    uniform <= effective <= injection = nics x device bandwidth; the average hop count never
    exceeds the diameter."""
    inj = r.nics_per_node * r.fabric._base["device_bandwidth"]
    assert r.uniform_bps <= r.injection_bps / r.oversubscription <= inj * (1 + 1e-12)
    assert r.hops_avg <= r.diameter + 1e-12


def _roof_parallelism(r, kw):
    """Every candidate's MFU is at most 1, and none beats the best step it reports."""
    for c in r.top_candidates:
        assert 0 < c["mfu"] <= 1
        assert c["step_ms"] >= r.best_step_s * 1e3 * (1 - 1e-12)


def _roof_network_roofline(r, kw):
    """A roofline never promises more than either ceiling: attainable <= P and <= I x B, the
    step bound is at least F / P and Q / B; DistributedModel's own step cannot beat the peak,
    nor can its DP collective beat its scale-out bytes at the NIC's spec bandwidth."""
    assert r.attainable <= r.peak_flops * (1 + 1e-12)
    if r.scale_out_bps and r.scale_out_bytes > 0:
        assert r.attainable <= r.intensity * r.scale_out_bps * (1 + 1e-12)
        assert r.min_step_s >= r.scale_out_bytes / r.scale_out_bps * (1 - 1e-12)
        assert r.training.dp_comm_s >= r.dp_bytes / r.scale_out_bps * (1 - 1e-12)
    assert r.min_step_s >= r.flops / r.peak_flops * (1 - 1e-12)
    assert r.achieved_flops <= r.peak_flops * (1 + 1e-12)


def _roof_data(r, kw):
    """The step gets no more than it asks for, storage delivers B / s, the CPUs w / c; the
    stall is the shortfall's share, in [0, 1)."""
    got = float(r.effective_throughput)
    assert got <= r.demand_per_s * (1 + 1e-12)
    assert got <= r.storage_bps / r.bytes_per_sample * (1 + 1e-12)
    if r.cpu_cost_s is not None:
        assert got <= r.cpu_workers / r.cpu_cost_s * (1 + 1e-12)
    assert 0.0 <= r.stall_fraction < 1.0
    assert math.isclose(r.stall_fraction, 1 - got / r.demand_per_s, abs_tol=1e-12)


def _roof_transformation(r, kw):
    """Cores deliver cores / c samples/s at most; the demand needs D x c core-seconds per
    second, so ceil(D c) cores suffice and one fewer does not."""
    got = float(r.effective_throughput)
    assert got <= r.demand_per_s * (1 + 1e-12)
    if r.cpu_cores is not None:
        assert got <= r.cpu_cores / r.cost_s_per_sample * (1 + 1e-12)
    assert r.min_cpu_cores / r.cost_s_per_sample >= r.demand_per_s * (1 - 1e-9)
    assert 0.0 <= r.stall_fraction < 1.0


def _roof_orchestration(r, kw):
    """Slots never exceed the cluster (c G <= N); a stable queue has rho < 1, an unstable one
    waits forever; waits are non-negative and their quantiles ordered."""
    assert r.servers * r.job_gpus <= r.cluster_gpus
    assert 0.0 <= r.probability_of_waiting <= 1.0
    if r.feasible:
        assert r.utilization < 1.0 and 0.0 <= r.mean_wait_s < math.inf
        assert 0.0 <= r.p50_wait_s <= r.p90_wait_s <= r.p99_wait_s
    else:
        assert r.utilization >= 1.0 and r.mean_wait_s == math.inf


def _roof_sustainability(r, kw):
    """Power is between idle and TDP per accelerator (the host adds its published power):
    idle x N x T x PUE <= facility energy <= (TDP x N + hosts) x T x PUE; carbon is exactly
    facility energy x the grid's intensity."""
    from mlsysim.core.power import power_params
    f = r.fp
    chip = r.system if isinstance(r.system, HardwareSpec) else r.system.accelerator
    p = power_params(chip)
    hours = f.seconds / 3600
    lo = (p.idle_w * f.accelerators + f.host_w) * hours / 1000 * f.pue
    hi = (p.max_w * f.accelerators + f.host_w) * hours / 1000 * f.pue
    assert lo * (1 - 1e-12) <= f.facility_kwh <= hi * (1 + 1e-12)
    assert f.carbon_kg == pytest.approx(f.facility_kwh * f.grid_g_kwh / 1000, rel=1e-12)


def _roof_economics(r, kw):
    """Renting costs exactly accelerator-hours x price; owning costs at least its energy."""
    _roof_sustainability(r, kw)
    if r.cloud_usd is not None:
        assert r.cloud_usd == pytest.approx(r.cloud_per_accelerator_hour * r.fp.accelerators
                                            * r.fp.seconds / 3600, rel=1e-12)
    if r.tco_usd is not None:
        assert r.tco_usd >= r.opex_energy_usd


def _roof_placement(r, kw):
    """The same job everywhere: equal energy in every region; ranked by its objective."""
    energies = {round(c["energy_kwh"], 6) for c in r.candidates}
    assert len(energies) <= 1
    key = "carbon_kg" if r.objective == "carbon" else "cost_usd"
    vals = [c[key] for c in r.candidates]
    assert vals == sorted(vals)


def _roof_efficiency(r, kw):
    """The shares are of the MFU roof itself: MFU and the terms sum to 1; HFU <= the share of
    the step spent computing (every flop takes at least flops / peak), so the kernel term is
    >= 0; bubble, communication and optimizer are shares of the step in [0, 1]."""
    assert r.total == pytest.approx(1.0, abs=1e-12)
    assert r.hfu <= r.useful * (1 + 1e-12) and r.kernel >= -1e-12
    for share in (r.bubble, r.communication, r.optimizer):
        assert 0.0 <= share <= 1.0
    assert r.recomputation == pytest.approx(r.hfu - r.mfu, abs=1e-15)


def _roof_responsible(r, kw):
    """A private step is never faster (F >= 1, M >= 1 only add compute) and cannot beat the
    non-private run's roofs; Hoeffding's n meets the bound, n - 1 does not, and N p >= n."""
    if r.dp is not None:
        _roof_distributed(r.run, kw)
        assert r.dp.step_s <= r.dp.private_step_s <= r.dp.private_batch_step_s
        assert r.dp.backward_multiplier >= r.dp.factor >= 1.0
    g = r.subgroup
    if g is not None:
        def bound(n):
            return 2 * math.exp(-2 * n * g.margin ** 2 / g.metric_range ** 2)
        assert bound(g.subgroup_samples) <= g.delta * (1 + 1e-12)
        assert g.subgroup_samples == 1 or bound(g.subgroup_samples - 1) > g.delta
        assert g.total_samples * g.fraction >= g.subgroup_samples * (1 - 1e-12)


def _roof_sensitivity(r, kw):
    """More of a resource never slows a pass, and no latency falls faster than 1 / x: every
    spec's elasticity of the latency lies in [-1, 0] (t = sum max(F/P, Q/B, t_k), each term at
    most inversely proportional to its resource), t_kernel's in [0, 1]; capacity never enters
    the time (elasticity exactly 0)."""
    e = r.elasticities
    for name, v in e.items():
        lo, hi = (0.0, 1.0) if name == "kernel_overhead" else (-1.0, 0.0)
        assert lo - 1e-6 <= v <= hi + 1e-9, f"{name}: {v}"
    assert e["memory_capacity"] == 0.0


def _roof_synthesis(r, kw):
    """The inverse roofline is the roofline inverted: BW x T x eta = bytes and P x T x eta =
    flops; a dense pass reads every weight it holds but the embedding table once (norm gains,
    under 0.01 % of the weights, are charged with their activations); the balance factor
    sum_i max(F_i/F, Q_i/Q) lies between 1 (one resource binds every operator) and 2."""
    assert r.required_bandwidth_bps * r.target_s * r.eta_memory == pytest.approx(r.bytes)
    assert r.required_flops_per_s * r.target_s * r.eta_compute == pytest.approx(r.flops)
    m = r.model
    assert r.bytes >= r.weights_read_bytes >= (r.weights_bytes - m.vocab * m.hidden *
                                               BYTES_PER_ELEMENT[r.precision]) * (1 - 1e-4)
    assert 1.0 - 1e-12 <= r.balance <= 2.0 + 1e-12 and 0.0 <= r.memory_share <= 1.0


def _roof_difference(r, kw):
    """The attribution has no remainder: operator rows and term rows each sum to T_b - T_a,
    and each side's terms sum to its own time; operator times are never negative."""
    d = r.difference_s
    assert math.fsum(r.operators.values()) == pytest.approx(d, rel=1e-12, abs=1e-15)
    assert math.fsum(r.terms.values()) == pytest.approx(d, rel=1e-12, abs=1e-15)
    assert math.fsum(a for _, a, _ in r.term_rows) == pytest.approx(r.total_a_s, rel=1e-12)
    assert math.fsum(b for _, _, b in r.term_rows) == pytest.approx(r.total_b_s, rel=1e-12)
    assert all(a >= 0 and b >= 0 for n, a, b in r.operator_rows if n != "communication")


ROOFS = {
    "SensitivitySolver": _roof_sensitivity,
    "SynthesisSolver": _roof_synthesis,
    "DifferentialExplainer": _roof_difference,
    "EfficiencyModel": _roof_efficiency,
    "ResponsibleEngineeringModel": _roof_responsible,
    "SustainabilityModel": _roof_sustainability,
    "EconomicsModel": _roof_economics,
    "PlacementOptimizer": _roof_placement,
    "NetworkRooflineModel": _roof_network_roofline,
    "DataModel": _roof_data,
    "TransformationModel": _roof_transformation,
    "OrchestrationModel": _roof_orchestration,
    "ParallelismOptimizer": _roof_parallelism,
    "DistributedModel": _roof_distributed,
    "ScalingModel": _roof_scaling,
    "CheckpointModel": _roof_checkpoint,
    "ReliabilityModel": _roof_reliability,
    "TopologyModel": _roof_topology,
    "SingleNodeModel": _roof_single_node,
    "ServingModel": _roof_serving,
    "ContinuousBatchingModel": _roof_continuous_batching,
    "TailLatencyModel": _roof_tail,
    "CompressionModel": _roof_compression,
    "WeightStreamingModel": _roof_weight_streaming,
    "InferenceScalingModel": _roof_inference_scaling,
    "BatchingOptimizer": _roof_batching,
}


@pytest.mark.parametrize("cls,feasible", BOTH, ids=BOTH_IDS)
def test_never_above_the_roofs(cls, feasible):
    assert cls.__name__ in ROOFS, f"write the roof check of {cls.__name__}"
    r, kw = solve(cls, feasible)
    ROOFS[cls.__name__](r, kw)


# --- JSON, feasibility, display ---------------------------------------------------------------
@pytest.mark.parametrize("cls,feasible", BOTH, ids=BOTH_IDS)
def test_strict_json(cls, feasible):
    r, _ = solve(cls, feasible)
    text = r.to_json()
    assert "NaN" not in text and "Infinity" not in text
    d = json.loads(text)
    assert d["feasible"] is bool(r.feasible) and d["binding"] == r.binding
    json.dumps(r.to_dict(), allow_nan=False)


@pytest.mark.parametrize("cls,feasible", BOTH, ids=BOTH_IDS)
def test_feasibility_comes_with_a_reason_and_a_binding_resource(cls, feasible):
    r, _ = solve(cls, feasible)
    assert r.feasible is feasible or bool(r.feasible) == feasible
    if feasible:
        assert r.reason is None
    else:
        assert isinstance(r.reason, str) and r.reason.strip()
    assert isinstance(r.binding, str) and r.binding.strip() and len(r.binding) <= 24


@pytest.mark.parametrize("cls,feasible", BOTH, ids=BOTH_IDS)
def test_compact_repr_and_html(cls, feasible):
    r, _ = solve(cls, feasible)
    text = repr(r)
    assert text.startswith(type(r).__name__ + "(")
    assert len(text.splitlines()) <= 2 and len(text) <= 200, text
    page = r._repr_html_()
    assert isinstance(page, str) and "<table" in page
    assert repr(cls()) == f"{cls.__name__}()"


# --- the base classes themselves -------------------------------------------------------------
@dataclasses.dataclass(frozen=True, eq=False, repr=False)
class _Toy(Result):
    name: str
    seconds: float

    binding = "compute"
    summary_inputs = ("name:",)
    summary_numbers = ("seconds",)

    def headline(self):
        return {"name": self.name, "latency": Q_(self.seconds, "s"), "nan": math.nan,
                "array": np.array([1.0, np.inf])}

    def explain(self):
        return f"{self.name} takes {self.seconds} s"


def test_base_result_is_strict_escaped_and_compact():
    r = _Toy("<b>&</b>", math.inf)
    d = json.loads(r.to_json())
    assert d["latency"] == {"value": None, "unit": "s"} and d["nan"] is None
    assert d["array"] == [1.0, None] and d["feasible"] is True and d["reason"] is None
    page = r._repr_html_()
    assert "&lt;b&gt;&amp;&lt;/b&gt;" in page and "<b>&</b>" not in page
    assert repr(r) == "_Toy(<b>&</b>: seconds=inf)"
    assert r.trace()["headline"]["latency"]["unit"] == "s"


def test_solver_base_registers_and_declares():
    class _Mine(ForwardModel, register=False):
        options = (Option("x", REQUIRED, "a thing"), Option("y", 2, "another"))

    assert _Mine not in all_solvers()
    assert _Mine.defaults() == {"y": 2} and _Mine.options[0].required
    with pytest.raises(NotImplementedError):
        _Mine.example()


@pytest.mark.parametrize("solver, config", [
    ("ServingModel", "ServingConfig"), ("ContinuousBatchingModel", "ContinuousBatchingConfig"),
    ("DistributedModel", "DistributedConfig")])
def test_keyword_options_and_config_fields_agree(solver, config):
    """The keyword form and the three-input form are the same options: same names, same
    defaults (a field the config requires is optional in the signature, needed unless a
    config is given)."""
    cls, cfg = getattr(mlsysim, solver), getattr(mlsysim, config)
    declared = {o.name: o.default for o in cls.options
                if o.name not in ("model", "hardware", "fleet", "config")}
    fields = cfg.model_fields
    assert set(declared) == set(fields)
    for name, f in fields.items():
        if f.is_required():
            assert declared[name] is None, name
        else:
            assert declared[name] == f.default, name


# --- bad numbers are rejected by name --------------------------------------------------------
NUMERIC = [(s, o.name) for s in SOLVERS for o in s.options
           if not o.required and isinstance(o.default, (int, float))
           and not isinstance(o.default, bool)]
OWNERS = {n for s in SOLVERS for n in (s.__name__, f"{s.__name__}.solve")} | {"Engine.solve"}


@pytest.mark.parametrize("bad", [-1, math.nan], ids=["negative", "nan"])
@pytest.mark.parametrize("cls,name", NUMERIC, ids=[f"{s.__name__}.{n}" for s, n in NUMERIC])
def test_every_numeric_option_rejects_a_negative_or_nan_by_name(cls, name, bad):
    """-1 and NaN are outside every numeric option's domain: the error names the option and
    the solver that checked it (the one called, or the one it runs: CompressionModel's
    seq_len is ServingModel's), never a traceback from inside."""
    from mlsysim.errors import ValidationError
    with pytest.raises(ValidationError) as e:
        cls().solve(**{**cls.example(True), name: bad})
    assert e.value.field == name and e.value.owner in OWNERS
    assert str(e.value).startswith(f"The '{name}' parameter of {e.value.owner} ")


def test_defining_a_solver_subclass_registers_it_by_default():
    """Every solver class is found by defining it (no register= keyword): the registry holds
    the package's solvers by name, and each is registered under module.qualname."""
    from mlsysim.core.contract import _REGISTRY, registered_solvers
    from mlsysim.core.engine import SingleNodeModel
    from mlsysim.solvers.data_pipeline import DataModel
    from mlsysim.solvers.scaling import ScalingModel
    names = {c.__name__ for c in all_solvers()}
    assert {"SingleNodeModel", "ServingModel", "ScalingModel", "DataModel",
            "TransformationModel", "ContinuousBatchingModel", "ReliabilityModel"} <= names
    assert _REGISTRY["mlsysim.core.engine.SingleNodeModel"] is SingleNodeModel
    assert {SingleNodeModel, DataModel, ScalingModel} <= set(registered_solvers())


def test_repr_shows_a_spec_input_as_its_bare_key():
    """summary_inputs "model" and "hardware" have no label: a spec shows its key alone
    ("Llama3_8B", not "=Llama3_8B"); the labelled ones show label=value."""
    from mlsysim.core.contract import _summary_item
    from mlsysim.core.engine import SingleNodeModel
    r = SingleNodeModel().solve(**SingleNodeModel.example())
    assert _summary_item(r, "model") == "Llama3_8B"
    assert _summary_item(r, "hardware:") == "H100"
    assert _summary_item(r, "model:m") == "m=Llama3_8B"
    assert repr(r).startswith("PerformanceProfile(Llama3_8B, H100, batch=8, fp16, decode: ")


def test_built_result_equals_the_dataclass_init():
    """``Result._built`` (the hot solve's constructor) makes what ``__init__`` makes: the same
    fields, defaults and factories filled in, still frozen; an unknown or a missing field is a
    TypeError as with ``__init__``."""
    @dataclasses.dataclass(frozen=True, eq=False, repr=False)
    class Tiny(Result):
        a: int
        b: float = 2.5
        c: tuple = dataclasses.field(default_factory=lambda: (1, 2))

    built, init = Tiny._built(a=3), Tiny(a=3)
    assert vars(built) == vars(init) == {"a": 3, "b": 2.5, "c": (1, 2)}
    assert vars(Tiny._built(a=1, b=0.5, c=())) == {"a": 1, "b": 0.5, "c": ()}
    with pytest.raises(dataclasses.FrozenInstanceError):
        built.a = 4
    with pytest.raises(TypeError, match=r"unknown fields \['d'\]"):
        Tiny._built(a=1, d=2)
    with pytest.raises(TypeError, match=r"missing \['a'\]"):
        Tiny._built(b=1.0)
    r = mlsysim.DistributedModel().solve("Llama3_8B", "DGX_H100", batch_size=64, seq_len=2048,
                                         zero_stage=1)
    again = type(r)(**{f.name: getattr(r, f.name) for f in dataclasses.fields(r)})
    assert vars(again) == vars(r)
