"""ScalingModel, CheckpointModel, ReliabilityModel and TopologyModel: values derived by hand
(the arithmetic is in the comments), invariants as hypothesis properties, and bad input.
The contract battery (tests/test_contract.py) covers display, JSON and determinism."""

import math
import re

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import mlsysim
from mlsysim import Q_, Fleet, Models, Systems
from mlsysim.errors import MLSysimError, UnsupportedPrecisionError, ValidationError
from mlsysim.solvers.checkpoint import (
    CheckpointModel,
    checkpoint_bytes_per_param,
    optimizer_state_bytes_per_param,
)
from mlsysim.solvers.reliability import (
    ReliabilityModel,
    daly_interval,
    goodput,
    interruption_rates,
    per_accelerator_rate,
    young_interval,
)
from mlsysim.solvers.scaling import ScalingModel, compute_optimal
from mlsysim.solvers.topology import (
    TopologyModel,
    balanced_torus_shape,
    fat_tree_hops,
    torus_hops,
)

SETTINGS = settings(max_examples=100, deadline=None)
REL = 1e-12

SCALING, CHECKPOINT, RELIABILITY, TOPOLOGY = (ScalingModel(), CheckpointModel(),
                                              ReliabilityModel(), TopologyModel())
LLAMA3_FLEET = Systems.Clusters.Meta_Llama3_405B_16K      # 2,048 x 8 = 16,384 H100
SUPERPOD = Systems.Clusters.DGX_H100_SuperPOD_256         # 32 x 8 = 256 H100
DGX = Systems.Nodes.DGX_H100
H100_BF16 = 989.5e12                                      # dense bf16 flop/s (zoo)
LLAMA3_70B_PARAMS = 70_553_706_496                        # derived from the zoo structure


def close(x, y, rel=REL):
    return math.isclose(x, y, rel_tol=rel)


def test_public_names():
    for name in ("ScalingModel", "CheckpointModel", "ReliabilityModel", "TopologyModel"):
        cls = getattr(mlsysim, name)
        assert cls in mlsysim.all_solvers() and isinstance(cls(), mlsysim.ForwardModel)


# --- ScalingModel ---------------------------------------------------------------------------
def test_chinchilla_budget_gives_chinchilla():
    """C = 5.76e23 flop (Hoffmann et al. 2022, Table 3), D = 20 N, C = 6 N D = 120 N^2:
    N = sqrt(5.76e23 / 120) = sqrt(4.8e21) = 69.28e9, D = 1.3856e12. Chinchilla itself is
    70 B on 1.4 T (6 x 70e9 x 1.4e12 = 5.88e23, 2 % above the budget): within 2 %."""
    r = SCALING.solve("5.76e23 flop")
    n, d = r.optimal_parameters.to("param").m, r.optimal_tokens.to("token").m
    assert close(n, math.sqrt(4.8e21)) and close(d, 20 * math.sqrt(4.8e21))
    assert abs(n / 70e9 - 1) < 0.02 and abs(d / 1.4e12 - 1) < 0.02
    assert r.tokens_per_parameter == 20.0 and r.mode == "compute-optimal"
    assert close(6 * n * d, 5.76e23) and r.compute_budget.to("flop").m == 5.76e23
    assert r.time_to_train is None and r.gpu_hours is None and r.feasible


def test_fixed_model_size():
    """N = 70e9 fixed: D = C / (6 N) = 5.76e23 / 4.2e11 = 1.37143e12, D/N = 19.59."""
    r = SCALING.solve(Q_(5.76e23, "flop"), target_model_size=70e9)
    assert close(r.optimal_tokens.m, 5.76e23 / 4.2e11)
    assert close(r.tokens_per_parameter, 5.76e23 / 4.2e11 / 70e9)
    assert r.mode == "given model size"
    # The same N as a quantity, a string or a model spec (Llama-3-70B: 70,553,706,496)
    assert close(SCALING.solve("5.76e23 flop", target_model_size="70e9 param").tokens, r.tokens)
    m = SCALING.solve("5.76e23 flop", target_model_size=Models.Llama3_70B)
    assert close(m.tokens, 5.76e23 / (6 * LLAMA3_70B_PARAMS))


def test_other_ratio_and_units():
    """r = 10: N = sqrt(1e24 / 60) = 1.29099e11; '1e9 PFLOP' is 1e24 flop."""
    r = SCALING.solve("1e9 PFLOP", tokens_per_parameter=10)
    assert close(r.parameters, math.sqrt(1e24 / 60)) and close(r.tokens, 10 * r.parameters)


def test_time_to_train_on_a_fleet():
    """256 H100 at 989.5 TFLOP/s bf16 dense, MFU 0.4: T = 5.76e23 / (256 x 989.5e12 x 0.4)
    = 5.76e23 / 1.01325e17 = 5.6847e6 s = 65.795 days; 256 x T / 3600 = 404,245 GPU-hours.
    At fp8 (1,979 TFLOP/s) the same run takes half as long."""
    r = SCALING.solve("5.76e23 flop", fleet=SUPERPOD, mfu=0.4)
    t = 5.76e23 / (256 * H100_BF16 * 0.4)
    assert close(r.train_s, t) and close(r.time_to_train.to("day").m, t / 86400)
    assert close(r.gpu_hours, 256 * t / 3600) and r.precision == "bf16"
    fp8 = SCALING.solve("5.76e23 flop", fleet=SUPERPOD, mfu=0.4, precision="fp8")
    assert close(fp8.train_s, t / 2)
    assert "bf16 dense" in r.explain()
    one = SCALING.solve("1e21 flop", fleet=DGX, mfu=0.5)          # a Node is one node
    assert close(one.train_s, 1e21 / (8 * H100_BF16 * 0.5))


def test_scaling_infeasible_when_data_runs_out():
    r = SCALING.solve("5.76e23 flop", dataset_tokens=1e12)        # needs 1.386e12
    assert not r.feasible and "1.386e+12" in r.reason and r.binding == "dataset size"
    assert SCALING.solve("5.76e23 flop", dataset_tokens="2e12 token").feasible


@pytest.mark.parametrize("kwargs,field", [
    (dict(compute_budget=5.76e23), "compute_budget"),             # bare number: no unit
    (dict(compute_budget="-1e24 flop"), "compute_budget"),
    (dict(compute_budget="nan flop"), "compute_budget"),
    (dict(compute_budget="1e24 flop/s"), "compute_budget"),       # a rate, not an amount
    (dict(compute_budget="1e24 GB"), "compute_budget"),
    (dict(compute_budget="1e24 flop", target_model_size=0), "target_model_size"),
    (dict(compute_budget="1e24 flop", target_model_size=math.inf), "target_model_size"),
    (dict(compute_budget="1e24 flop", tokens_per_parameter=-20), "tokens_per_parameter"),
    (dict(compute_budget="1e24 flop", target_model_size=7e10, tokens_per_parameter=20),
     "tokens_per_parameter"),
    (dict(compute_budget="1e24 flop", mfu=0.4), "mfu"),            # no fleet
    (dict(compute_budget="1e24 flop", fleet=SUPERPOD), "mfu"),     # no mfu
    (dict(compute_budget="1e24 flop", fleet=SUPERPOD, mfu=0.0), "mfu"),
    (dict(compute_budget="1e24 flop", fleet=SUPERPOD, mfu=1.5), "mfu"),
    (dict(compute_budget="1e24 flop", fleet=3, mfu=0.4), "fleet"),
    (dict(compute_budget="1e24 flop", dataset_tokens=-5), "dataset_tokens"),
])
def test_scaling_bad_input(kwargs, field):
    with pytest.raises(ValidationError) as e:
        SCALING.solve(**kwargs)
    assert e.value.field == field and "ScalingModel" in str(e.value)


def test_scaling_bare_budget_message_suggests_units():
    with pytest.raises(ValidationError, match="'1e24 flop'"):
        SCALING.solve(1e24)
    with pytest.raises(UnsupportedPrecisionError):
        SCALING.solve("1e24 flop", fleet=SUPERPOD, mfu=0.4, precision="fp4")


@SETTINGS
@given(st.floats(1e15, 1e30), st.floats(1.0, 200.0), st.floats(1.01, 100.0))
def test_scaling_properties(c, r, k):
    """6 N D = C; N grows as sqrt(C): k^2 times the budget gives k times N and D."""
    n, d = compute_optimal(c, r)
    assert close(6 * n * d, c, 1e-12) and close(d / n, r, 1e-12)
    n2, d2 = compute_optimal(c * k * k, r)
    assert close(n2, k * n, 1e-12) and close(d2, k * d, 1e-12)


# --- CheckpointModel ------------------------------------------------------------------------
def test_bytes_per_param_table():
    """bf16 + Adam: 2 (weights) + 4 (fp32 master) + 8 (two fp32 moments) = 14 B, ZeRO's 16
    less the 2 B of gradients; fp32: 4 + 8 = 12 (the weights are the master); SGD with
    momentum 2 + 4 + 4 = 10; 8-bit Adam 2 + 4 + 2 x (1 + 4/2048) = 8.00390625; Adafactor
    on Llama-3-70B (h = 8192) 2 + 4 + 8/8192."""
    assert checkpoint_bytes_per_param("adam") == 14.0
    assert checkpoint_bytes_per_param("AdamW", "fp32") == 12.0
    assert checkpoint_bytes_per_param("sgd", "bf16") == 10.0
    assert checkpoint_bytes_per_param("adam8bit", "bf16") == 6.0 + 2.00390625
    assert checkpoint_bytes_per_param("adafactor", "bf16", Models.Llama3_70B) == 6 + 8 / 8192
    assert optimizer_state_bytes_per_param("adam") == 8.0


def test_checkpoint_hand_values_on_a_dgx():
    """Llama-3-70B: 70,553,706,496 x 14 B = 987,751,890,944 B. A DGX H100 writer goes through
    PCIe (64 GB/s) and one NDR NIC (50 GB/s): 50 GB/s. Eight writers: 400 GB/s, so
    t_write = 987.751890944 GB / 400 GB/s = 2.46938 s; hourly: 2.46938 / 3600 = 6.8594e-4."""
    r = CHECKPOINT.solve(Models.Llama3_70B, DGX, n_writers=8)
    size = LLAMA3_70B_PARAMS * 14
    assert r.checkpoint_bytes == size and close(r.checkpoint_size.to("GB").m, size / 1e9)
    assert r.writer_bandwidth.to("GB/s").m == 50.0 and r.writer_link == "NIC"
    assert close(r.write_time_seconds.to("s").m, size / 400e9)
    assert close(r.restore_time_seconds.to("s").m, size / 400e9)
    assert close(r.mfu_penalty_pct, size / 400e9 / 3600)
    assert r.storage_bottleneck == "writers" and r.binding == "writer bandwidth"
    assert r.feasible and r.reason is None


def test_checkpoint_filesystem_cap():
    """64 writers x 50 GB/s = 3.2 TB/s against Llama 3's 2 TB/s Tectonic: 987.75 GB / 2000
    GB/s = 0.493876 s, the file system binds. Given as a quantity string, the same."""
    r = CHECKPOINT.solve(Models.Llama3_70B, DGX, n_writers=64, filesystem_limit_gbs=2000)
    assert r.storage_bottleneck == "filesystem" and r.binding == "filesystem bandwidth"
    assert close(r.write_s, LLAMA3_70B_PARAMS * 14 / 2e12)
    q = CHECKPOINT.solve(Models.Llama3_70B, DGX, n_writers=64, filesystem_limit_gbs="2 TB/s")
    assert close(q.write_s, r.write_s)


def test_checkpoint_on_a_chip_uses_its_host_link():
    """A bare H100: PCIe Gen5 at 64 GB/s per writer: 987.75 GB / 64 GB/s = 15.434 s."""
    r = CHECKPOINT.solve("Llama3_70B", "H100")
    assert r.writer_link == "host link" and close(r.write_s, LLAMA3_70B_PARAMS * 14 / 64e9)
    w = CHECKPOINT.solve("Llama3_70B", "H100", writer_bandwidth="25 GB/s")
    assert w.writer_link == "writer_bandwidth" and close(w.write_s, LLAMA3_70B_PARAMS * 14 / 25e9)


def test_a_bandwidth_quantity_from_another_pint_registry_is_read_in_its_own_units():
    """A user's own pint.UnitRegistry makes quantities that are not mlsysim.Q_ instances; a
    writer bandwidth of 25 GB/s given so is converted by its own units to 25e9 B/s, the same
    write time as the string '25 GB/s': 70,553,706,496 x 14 B / 25e9 B/s = 39.51 s."""
    import pint
    ureg = pint.UnitRegistry()
    w = CHECKPOINT.solve("Llama3_70B", "H100", writer_bandwidth=ureg.Quantity(25, "GB/s"))
    assert w.writer_bandwidth_bps == 25e9 and w.writer_link == "writer_bandwidth"
    assert close(w.write_s, LLAMA3_70B_PARAMS * 14 / 25e9)


def test_async_checkpoint_blocks_only_for_the_snapshot():
    """Async on a DGX with 8 writers: snapshot = 987.75 GB / (8 x 64 GB/s PCIe) = 1.92920 s
    blocks; the 2.469 s write runs in the background. Penalty 1.92920 / 3600."""
    r = CHECKPOINT.solve(Models.Llama3_70B, DGX, n_writers=8, async_checkpoint=True)
    size = LLAMA3_70B_PARAMS * 14
    assert close(r.snapshot_s, size / 512e9) and close(r.write_s, size / 400e9)
    assert close(r.mfu_penalty_pct, size / 512e9 / 3600) and r.binding == "host link"
    assert ("  async: t_snapshot = size / (n_writers x host link) = 987.8 GB / (8 x 64 GB/s) = "
            "1.929 s blocks; the write runs in the background") in r.explain().splitlines()
    sync = CHECKPOINT.solve(Models.Llama3_70B, DGX, n_writers=8)
    assert r.mfu_penalty_pct < sync.mfu_penalty_pct


def test_checkpoint_interval_in_whole_steps():
    """1 h with 7 s steps: floor(3600 / 7) = 514 steps = 3,598 s between checkpoints."""
    r = CHECKPOINT.solve(Models.Llama3_70B, DGX, n_writers=8, step_time_s=7.0)
    assert r.steps_per_checkpoint == 514 and r.interval_s == 3598.0
    assert close(r.mfu_penalty_pct, r.write_s / 3598.0)


def test_checkpoint_interval_shorter_than_one_step_is_one_step():
    """A checkpoint can only fall on a step boundary, so an interval below one step is one
    step: 0.001 h = 3.6 s with 10 s steps gives floor(0.36) = 0 -> 1 step, 10 s apart. The
    8-writer DGX write of 987.75 GB / 400 GB/s = 2.46938 s then costs 2.46938 / 10 = 24.69 %
    (not the 68.6 % a 3.6 s interval would give, nor the 12.3 % of two steps)."""
    r = CHECKPOINT.solve(Models.Llama3_70B, DGX, n_writers=8, checkpoint_interval_hours=0.001,
                         step_time_s=10.0)
    assert r.steps_per_checkpoint == 1 and r.interval_s == 10.0
    assert close(r.mfu_penalty_pct, LLAMA3_70B_PARAMS * 14 / 400e9 / 10.0)
    assert r.feasible                                       # 2.47 s write < 10 s
    assert r.headline()["checkpoint_interval"].to("s").m == pytest.approx(10.0, rel=1e-12)


def test_checkpoint_whole_steps_survive_float_rounding():
    """0.11 h = 396 s over 1.1 s steps is 360 steps, though 396 / 1.1 evaluates to
    359.99999999999994 in floating point: the count is not rounded down to 359 (395.6 s)."""
    assert 396.0 / 1.1 < 360
    r = CHECKPOINT.solve(Models.Llama3_70B, DGX, n_writers=8, checkpoint_interval_hours=0.11,
                         step_time_s=1.1)
    assert r.steps_per_checkpoint == 360
    assert r.interval_s == pytest.approx(396.0, rel=1e-12)


def test_checkpoint_infeasible_when_the_write_outlasts_the_interval():
    """Llama-3-405B (405,853,388,800 params) x 14 B = 5.682 TB through one 50 GB/s writer =
    113.6 s, every 0.01 h = 36 s: infeasible."""
    r = CHECKPOINT.solve(Models.Llama3_405B, DGX, checkpoint_interval_hours=0.01)
    assert not r.feasible and "113.6 s" in r.reason and r.mfu_penalty_pct > 1


@pytest.mark.parametrize("kwargs,field", [
    (dict(optimizer="adamax"), "optimizer"),
    (dict(optimizer=None), "optimizer"),
    (dict(checkpoint_interval_hours=-1.0), "checkpoint_interval_hours"),
    (dict(checkpoint_interval_hours=math.nan), "checkpoint_interval_hours"),
    (dict(n_writers=0), "n_writers"),
    (dict(n_writers=1.5), "n_writers"),
    (dict(filesystem_limit_gbs=0), "filesystem_limit_gbs"),
    (dict(filesystem_limit_gbs=math.nan), "filesystem_limit_gbs"),
    (dict(filesystem_limit_gbs="2 TFLOP/s"), "filesystem_limit_gbs"),
    (dict(precision="int8"), "precision"),
    (dict(async_checkpoint="yes"), "async_checkpoint"),
    (dict(step_time_s=0.0), "step_time_s"),
    (dict(writer_bandwidth="0 GB/s"), "writer_bandwidth"),
    (dict(hardware=42), "hardware"),
    (dict(model=42), "model"),
])
def test_checkpoint_bad_input(kwargs, field):
    args = {**dict(model=Models.Llama3_70B, hardware=DGX), **kwargs}
    with pytest.raises(ValidationError) as e:
        CHECKPOINT.solve(**args)
    assert e.value.field == field and "CheckpointModel" in str(e.value)


def test_checkpoint_errors_name_what_to_give():
    with pytest.raises(ValidationError, match="adam, sgd, adafactor, adam8bit"):
        CHECKPOINT.solve(Models.Llama3_70B, DGX, optimizer="adamax")
    # TPU v5e publishes no host link and a bare chip has no NIC: no invented default.
    with pytest.raises(ValidationError) as e:
        CHECKPOINT.solve(Models.Llama3_8B, "TPUv5e")
    assert e.value.field == "writer_bandwidth"
    with pytest.raises(ValidationError) as e:
        CHECKPOINT.solve(Models.Llama3_8B, "TPUv5e", writer_bandwidth="10 GB/s",
                         async_checkpoint=True)
    assert e.value.field == "snapshot_bandwidth"
    with pytest.raises(ValidationError, match="hidden size"):
        CHECKPOINT.solve(Models.ResNet50, DGX, optimizer="adafactor")


@SETTINGS
@given(st.integers(1, 4096), st.integers(1, 4096), st.floats(1.0, 1e5))
def test_more_writers_never_write_slower(n1, n2, limit):
    lo, hi = sorted((n1, n2))
    a = CHECKPOINT.solve(Models.Llama3_8B, DGX, n_writers=lo, filesystem_limit_gbs=limit)
    b = CHECKPOINT.solve(Models.Llama3_8B, DGX, n_writers=hi, filesystem_limit_gbs=limit)
    assert b.write_s <= a.write_s * (1 + 1e-12)
    assert a.write_s >= a.checkpoint_bytes / (limit * 1e9) * (1 - 1e-12)


# --- ReliabilityModel -----------------------------------------------------------------------
def test_llama3_fleet_mtbf():
    """16,384 H100 with Llama 3's 419 unexpected interruptions in 54 days on 16,384 GPUs:
    M = 54 x 24 / 419 = 3.093079 h; 720 h job: 720 / 3.093079 = 232.78 failures,
    P(>= 1) = 1 - exp(-232.78) = 1; 24 / 3.093079 = 7.759 interruptions per day."""
    r = RELIABILITY.solve(LLAMA3_FLEET, job_duration_hours=720, checkpoint_time_s=60)
    m = 54 * 24 / 419
    assert close(r.fleet_mtbf.to("hour").m, m) and r.accelerators == 16384
    assert close(r.expected_failures, 720 / m) and r.failure_probability == 1.0
    assert close(r.interruptions_per_day, 24 / m)
    assert r.mtbf_source == "Llama3_405B_H100"


def test_young_daly_hand_values():
    """delta = 60 s, M = 3.093079 h = 11,135.08 s: tau_Young = sqrt(2 x 60 x 11,135.08) =
    1,155.95 s = 19.27 min. Daly: x = 60 / (2 M) = 2.6942e-3, sqrt(x) / 3 = 0.017302,
    tau = 1,155.95 x (1 + 0.017302 + 0.00029935) - 60 = 1,116.29 s."""
    r = RELIABILITY.solve(LLAMA3_FLEET, job_duration_hours=720, checkpoint_time_s=60)
    m = 54 * 24 / 419 * 3600
    young = math.sqrt(2 * 60 * m)
    assert close(r.optimal_checkpoint_interval.to("s").m, young)
    assert abs(young - 1155.95) < 0.01
    x = 60 / (2 * m)
    daly = young * (1 + math.sqrt(x) / 3 + x / 9) - 60
    assert close(r.daly_checkpoint_interval.to("s").m, daly) and abs(daly - 1116.29) < 0.01


def test_goodput_hand_values():
    """Young's tau = 1,155.95 s: goodput = 1155.95 / 1215.95 x (1 - (300 + 607.97) / 11135.08)
    = 0.95066 x 0.91846 = 0.87314. Hourly checkpoints: 3600 / 3660 x (1 - (300 + 1830) /
    11135.08) = 0.98361 x 0.80871 = 0.79545."""
    m = 54 * 24 / 419 * 3600
    r = RELIABILITY.solve(LLAMA3_FLEET, 720, 60)
    young = math.sqrt(120 * m)
    assert close(r.goodput_ratio, young / (young + 60) * (1 - (300 + (young + 60) / 2) / m))
    assert abs(r.goodput_ratio - 0.87314) < 1e-5
    h = RELIABILITY.solve(LLAMA3_FLEET, 720, 60, checkpoint_interval_hours=1.0)
    assert close(h.goodput_ratio, 3600 / 3660 * (1 - 2130 / m))
    assert abs(h.goodput_ratio - 0.79545) < 1e-5 and h.goodput_ratio < r.goodput_ratio


def test_fleet_mtbf_scales_with_accelerators_and_respects_the_fleet():
    """One DGX H100 (8 GPUs): 16,384 x 54 x 24 / 419 / 8 = 50,677.0 / 8 = 6,334.6 h. A fleet
    stating mtbf_hours uses it as the whole fleet's MTBF."""
    one = RELIABILITY.solve(DGX, 24, 60)
    assert close(one.fleet_mtbf.to("hour").m, 16384 * 54 * 24 / 419 / 8)
    assert close(1 / per_accelerator_rate(), 16384 * 54 * 24 / 419)
    own = Fleet(name="mine", node=DGX, count=4, mtbf_hours=10.0)
    r = RELIABILITY.solve(own, 24, 60)
    assert r.fleet_mtbf.to("hour").m == 10.0 and r.mtbf_source == "fleet.mtbf_hours"
    assert "fleet.mtbf_hours" in r.assumptions[0]


def test_reliability_data_is_sourced():
    entry = interruption_rates()["Llama3_405B_H100"]
    assert entry.source.startswith("https://arxiv.org/abs/2407.21783") and entry.estimate
    assert (entry.interruptions, entry.accelerators) == (419, 16384)
    assert entry.window.to("day").m == 54
    assert "Dubey" in entry.notes and "3.3.4" in entry.notes


def test_reliability_infeasible():
    """A 36 s interval with 60 s checkpoints; and a 0.05 h (180 s) MTBF with a 300 s
    recovery: nothing finishes, goodput 0."""
    r = RELIABILITY.solve(LLAMA3_FLEET, 720, 60, checkpoint_interval_hours=0.01)
    assert not r.feasible and "36 s" in r.reason
    tiny = Fleet(name="flaky", node=DGX, count=1, mtbf_hours=0.05)
    f = RELIABILITY.solve(tiny, 24, 10)
    assert not f.feasible and f.goodput_ratio == 0.0 and "MTBF" in f.reason


@pytest.mark.parametrize("kwargs,field", [
    (dict(job_duration_hours=-1), "job_duration_hours"),
    (dict(job_duration_hours=math.nan), "job_duration_hours"),
    (dict(checkpoint_time_s=0), "checkpoint_time_s"),
    (dict(checkpoint_time_s=math.inf), "checkpoint_time_s"),
    (dict(avg_recovery_time_s=-5), "avg_recovery_time_s"),
    (dict(checkpoint_interval_hours=0), "checkpoint_interval_hours"),
    (dict(fleet=16384), "fleet"),
])
def test_reliability_bad_input(kwargs, field):
    args = {**dict(fleet=LLAMA3_FLEET, job_duration_hours=720, checkpoint_time_s=60), **kwargs}
    with pytest.raises(ValidationError) as e:
        RELIABILITY.solve(**args)
    assert e.value.field == field and "ReliabilityModel" in str(e.value)


def test_zero_or_negative_mtbf_is_refused_at_the_spec():
    for bad in (0.0, -3.0, math.nan):
        with pytest.raises(MLSysimError, match="mtbf_hours"):
            Fleet(name="x", node=DGX, count=1, mtbf_hours=bad)


@SETTINGS
@given(st.integers(1, 20000), st.integers(1, 20000))
def test_more_gpus_never_raise_fleet_mtbf(c1, c2):
    lo, hi = sorted((c1, c2))
    a = RELIABILITY.solve(Fleet(name="a", node=DGX, count=lo), 100, 60)
    b = RELIABILITY.solve(Fleet(name="b", node=DGX, count=hi), 100, 60)
    assert b.fleet_mtbf_s <= a.fleet_mtbf_s and b.failure_probability >= a.failure_probability


@SETTINGS
@given(st.floats(1.0, 3600.0), st.floats(60.0, 1e7), st.floats(1.0001, 100.0))
def test_young_daly_grow_with_mtbf(delta, m, k):
    """Both optima grow with M; Daly's sits below Young's: Daly = Young - 2 delta/3 +
    delta sqrt(delta/2M)/9 < Young when delta < 2M."""
    assert young_interval(delta, m * k) > young_interval(delta, m)
    assert daly_interval(delta, m * k) >= daly_interval(delta, m)
    if delta < 2 * m:
        assert daly_interval(delta, m) < young_interval(delta, m)


@SETTINGS
@given(st.floats(1.0, 600.0), st.floats(0.0, 3600.0), st.integers(1, 4096),
       st.one_of(st.none(), st.floats(0.01, 48.0)))
def test_goodput_in_unit_interval_when_feasible(delta, rec, count, interval):
    r = RELIABILITY.solve(Fleet(name="f", node=DGX, count=count), 100, delta,
                          avg_recovery_time_s=rec, checkpoint_interval_hours=interval)
    assert 0.0 <= r.goodput_ratio <= 1.0
    if r.feasible:
        assert 0.0 < r.goodput_ratio < 1.0
    assert r.goodput_ratio == max(0.0, goodput(r.interval_s, delta, rec, r.fleet_mtbf_s))


# --- TopologyModel --------------------------------------------------------------------------
def test_fat_tree_hand_values():
    """2,048 NDR ports (50 GB/s) on radix-64 switches: 2 tiers (2 x 32^2 = 2,048), leaves of
    32. Bisection 1,024 x 50 GB/s = 51.2 TB/s. Pairs in a leaf: 64 x 32 x 31 = 63,488 of
    2,048 x 2,047 = 4,192,256 are 2 links apart, the rest 4: avg = 4 - 2 x 31/2047 = 3.96971.
    At 2:1 oversubscription each node keeps 25 GB/s and the bisection halves."""
    r = TOPOLOGY.solve("InfiniBand_NDR", "fat_tree", 2048)
    assert close(r.bisection_bw.to("TB/s").m, 51.2) and r.tiers == 2 and r.diameter == 4
    assert close(r.hops_avg, (2 * 63488 + 4 * (4192256 - 63488)) / 4192256)
    assert close(r.hops_avg, 4 - 2 * 31 / 2047) and r.effective_bw.to("GB/s").m == 50.0
    assert r.binding == "injection"
    o = TOPOLOGY.solve("InfiniBand_NDR", "fat_tree", 2048, oversubscription_ratio=2.0)
    assert o.effective_bw.to("GB/s").m == 25.0 and close(o.bisection_bw.to("TB/s").m, 25.6)
    assert o.binding == "oversubscription"


def test_three_tier_fat_tree():
    """4,096 ports, radix 64: 3 tiers (2,048 < 4,096 <= 65,536); leaves of 32, pods of 1,024.
    P1 = 128 x 32 x 31 = 126,976, P2 = 4 x 1,024 x 1,023 = 4,190,208, all = 4,096 x 4,095 =
    16,773,120: avg = (2 P1 + 4 (P2 - P1) + 6 (all - P2)) / all = 92,004,352 / 16,773,120."""
    avg, diameter, tiers = fat_tree_hops(4096, 64)
    assert tiers == 3 and diameter == 6 and close(avg, 92004352 / 16773120)
    assert fat_tree_hops(1, 64) == (0.0, 0, 1) and fat_tree_hops(64, 64)[:2] == (2.0, 2)


def test_3d_torus_hand_values():
    """8 x 8 x 8 TPU v4 (50 GB/s links, 6 per chip = 300 GB/s): bisection = 2 x 512 / 8 = 128
    links = 6.4 TB/s; avg distance 3 x 8/4 = 6 over all pairs, x 512/511 = 6.01174 over
    distinct ones; diameter 3 x 4 = 12; uniform traffic 4 x 6.4 TB/s / 512 = 50 GB/s
    (Dally & Towles: 8 b / k = 8 x 50 / 8), so the bisection binds."""
    r = TOPOLOGY.solve("TPU_v4_ICI", "torus", 512)
    assert r.shape == (8, 8, 8) and r.bisection_links == 128
    assert close(r.bisection_bw.to("TB/s").m, 6.4) and r.diameter == 12
    assert close(r.hops_avg, 6 * 512 / 511) and r.injection_bw.to("GB/s").m == 300.0
    assert close(r.uniform_traffic_bw.to("GB/s").m, 50.0) and r.binding == "bisection"


def test_odd_and_given_torus_shapes():
    """3 x 3 x 3: per ring (9 - 1)/12 = 2/3, x 3 = 2, x 27/26; diameter 3; bisection 2 x 27 /
    3 = 18 links. TPU v5p 16 x 16 x 24 (6,144 chips, 100 GB/s): 2 x 6,144 / 24 = 512 links =
    51.2 TB/s."""
    avg, diameter = torus_hops((3, 3, 3))
    assert close(avg, 2 * 27 / 26) and diameter == 3
    assert TOPOLOGY.solve("TPU_v4_ICI", "torus", 27).bisection_links == 18
    r = TOPOLOGY.solve("TPU_v5p_ICI", "torus", torus_shape=(16, 16, 24))
    assert r.num_nodes == 6144 and close(r.bisection_bw.to("TB/s").m, 51.2) and r.feasible


def test_dragonfly_hand_values():
    """2,048 terminals: balanced h = 5 is the smallest with a p (a h + 1) = 10 x 5 x 51 =
    2,550 >= 2,048 (h = 4: 1,056); p = 5, a = 10, 41 groups, router radix 5 + 9 + 5 = 19.
    Global links 41 x 50 / 2 = 1,025, of which 20 x 21 / (41 x 40 / 2) = 420/820 cross:
    525 links x 50 GB/s = 26.25 TB/s. Pairs on a router 409 x 5 x 4 + 3 x 2 = 8,186, in a
    group 40 x 50 x 49 + 48 x 47 = 100,256, all 4,192,256: avg = (2 x 8,186 + 3 x 92,070 +
    4.8 x 4,092,000) / 4,192,256 = 4.75500; diameter 5 (Kim et al. 2008)."""
    r = TOPOLOGY.solve("InfiniBand_NDR", "dragonfly", 2048)
    assert r.shape == (5, 10, 5) and r.router_radix == 19
    assert close(r.bisection_links, 525) and close(r.bisection_bw.to("TB/s").m, 26.25)
    assert close(r.hops_avg, (2 * 8186 + 3 * 92070 + 4.8 * 4092000) / 4192256)
    assert r.diameter == 5 and r.binding == "injection"       # 4 x 26.25 TB/s / 2048 > 50 GB/s
    small = TOPOLOGY.solve("InfiniBand_NDR", "dragonfly", 2048, switch_radix=16)
    assert not small.feasible and small.binding == "switch radix"


def test_topology_from_a_fleet():
    """The 256-GPU SuperPOD: 32 nodes, 8 NDR rails (rail-optimized): each node injects 8 x 50 =
    400 GB/s; bisection 16 x 400 GB/s = 6.4 TB/s; 32 ports per rail fit one radix-64 leaf:
    2 hops."""
    r = TOPOLOGY.solve(SUPERPOD)
    assert r.topology == "rail_optimized" and r.num_nodes == 32 and r.nics_per_node == 8
    assert r.effective_bw.to("GB/s").m == 400.0 and close(r.bisection_bw.to("TB/s").m, 6.4)
    assert r.hops_avg == 2.0 and r.diameter == 2 and r.tiers == 1
    meta = TOPOLOGY.solve("Meta_Llama3_405B_16K")       # RoCE, 1:7 between pods
    assert close(meta.effective_bw.to("GB/s").m, 400 / 7) and meta.tiers == 3


def test_topology_infeasible_beyond_the_fabric():
    r = TOPOLOGY.solve(Systems.Fabrics.TPU_v5p_ICI, "torus", 16384)
    assert not r.feasible and "8960" in r.reason and r.binding == "endpoints"


@pytest.mark.parametrize("kwargs,field", [
    (dict(topology="fattree"), "topology"),
    (dict(num_nodes=0), "num_nodes"),
    (dict(num_nodes=2.5), "num_nodes"),
    (dict(oversubscription_ratio=0.5), "oversubscription_ratio"),
    (dict(oversubscription_ratio=math.nan), "oversubscription_ratio"),
    (dict(topology="torus", oversubscription_ratio=2.0), "oversubscription_ratio"),
    (dict(topology="torus", torus_shape=(8, 8)), "torus_shape"),
    (dict(topology="fat_tree", torus_shape=(8, 8, 8)), "torus_shape"),
    (dict(topology="dragonfly", dragonfly_shape=(4, 8)), "dragonfly_shape"),
    (dict(switch_radix=2), "switch_radix"),
    (dict(nics_per_node=0), "nics_per_node"),
    (dict(fabric=7), "fabric"),
])
def test_topology_bad_input(kwargs, field):
    args = {**dict(fabric="InfiniBand_NDR", topology="fat_tree", num_nodes=512), **kwargs}
    with pytest.raises(ValidationError) as e:
        TOPOLOGY.solve(**args)
    assert e.value.field == field and "TopologyModel" in str(e.value)


@pytest.mark.parametrize("shape,message", [
    ("8x8x8", "must be a sequence of positive whole numbers. Got '8x8x8' instead"),
    (8, "must be a sequence of positive whole numbers. Got 8 instead"),
    ((), "must have at least one number. Got () instead"),
])
def test_a_bad_torus_shape_says_what_a_shape_is(shape, message):
    with pytest.raises(ValidationError, match=re.escape(message)):
        TOPOLOGY.solve("TPU_v5p_ICI", "torus", torus_shape=shape)


def test_unknown_topology_suggests():
    with pytest.raises(ValidationError, match="Did you mean: fat_tree"):
        TOPOLOGY.solve("InfiniBand_NDR", "fattree", 16)


@SETTINGS
@given(st.integers(1, 100000), st.integers(1, 100000), st.sampled_from([8, 16, 32, 64, 128]))
def test_fat_tree_properties(n1, n2, k):
    """Bisection never shrinks with more nodes; hops lie in [2, diameter] for N >= 2; tiers
    hold the ports."""
    lo, hi = sorted((n1, n2))
    a = TOPOLOGY.solve("InfiniBand_NDR", "fat_tree", lo, switch_radix=k)
    b = TOPOLOGY.solve("InfiniBand_NDR", "fat_tree", hi, switch_radix=k)
    assert b.bisection_bps >= a.bisection_bps
    for r in (a, b):
        assert r.hops_avg <= r.diameter + 1e-12
        if r.num_nodes >= 2:
            assert r.hops_avg >= 2.0 - 1e-12
            assert r.tiers == 1 or 2 * (k // 2) ** r.tiers >= r.num_nodes


@SETTINGS
@given(st.integers(1, 50000), st.integers(1, 4))
def test_torus_shape_properties(n, dims):
    shape = balanced_torus_shape(n, dims)
    assert math.prod(shape) == n and len(shape) in (1, dims)
    avg, diameter = torus_hops(shape)
    assert avg <= diameter + 1e-12
