"""Pins found unguarded by mutmut in core/: precision names, an estimated-term note of the
calibration, the host path's lack of in-switch reduction, refusal messages, the fit of a fabric
with two all-reduce sizes, JSON of non-finite rates, a result's reason in to_dict, a collective's
span in the cost model, MoE bytes moved, NUL bytes at offset 0, user attention rows in a missing
precision, and the busy-time split of an operator on a compute/memory tie."""

import math
from dataclasses import dataclass

import pytest
from efficiencies import ideal as _ideal

import mlsysim
from mlsysim.core.calibration import calibration, canonical_precision
from mlsysim.core.collectives import (
    CollectiveEfficiency,
    CommPath,
    collective_time,
    fit_collectives,
)
from mlsysim.core.contract import Result, jsonable
from mlsysim.core.costmodel import evaluate, prepare
from mlsysim.core.datafile import read_text
from mlsysim.core.device_calibration import calibrate_device
from mlsysim.core.power import busy_seconds
from mlsysim.errors import DataFileError, InfeasibleConfigError, ValidationError
from mlsysim.specs.hardware import HardwareSpec
from mlsysim.units import Rate
from mlsysim.workloads.operators import OperatorBuilder, OpKind

# Round numbers: 1e12 flop/s at fp16 (also the vector peak: no fp32 entry) and 1e12 byte/s.
ROUND = HardwareSpec(key="Round", name="Round", group="Cloud", vendor="Test",
                     compute={"dense": {"fp16": "1 TFLOP/s"}},
                     memory={"capacity": "10 GB", "bandwidth": "1 TB/s"},
                     source="test", as_of="2024")


# ------------------------------------------------------------------------------ calibration

def test_canonical_precision_finds_fp32_after_another_word():
    """'dense FP32' lowers to 'dense fp32': 'fp32' is in it, so the name is 'fp32', not the
    first word 'dense' (the fallback for text naming no known precision)."""
    assert canonical_precision("dense FP32") == "fp32"
    assert canonical_precision("dense") == "dense"


def test_efficiency_notes_an_8bit_gemm_borrowed_from_16bit():
    """A100 has GEMM rows only at 16 bits: its int8 (8-bit class) gemm_max is the 16-bit one,
    and the estimated terms say so (memory and attention are A100's own)."""
    cal = calibration()
    assert ("A100", "8bit") not in cal.gemm_max
    eff = cal.efficiency("A100", "int8")
    assert eff.gemm_max == cal.gemm_max[("A100", "16bit")]
    assert eff.estimated == ("gemm (8bit taken from 16-bit)",)
    assert calibration().efficiency("A100", "fp16").estimated == ()


# ------------------------------------------------------------------------------ collectives

def test_host_path_does_not_reduce_in_the_switch():
    """PCIe has no switch reduction, even on a chip whose NVLink fit would allow it: an
    in-network all-reduce over the host link is refused."""
    with pytest.raises(ValidationError) as err:
        collective_time("H100", "allreduce", 1e6, 4, fabric="host", algorithm="in_network")
    assert str(err.value) == (
        "The 'algorithm' parameter of collective_time 'in_network' needs a fabric that reduces "
        "in the switch (NVLS, SHARP); this one does not. Choose one of: auto, nccl, ring, tree, "
        "one_shot, two_shot.")


def test_group_beyond_a_chips_domain_names_the_domain_and_the_fix():
    """H100's NVLink 4 domain is 8 devices and a bare chip has no scale-out fabric."""
    with pytest.raises(InfeasibleConfigError) as err:
        collective_time("H100", "allreduce", 1e6, 16)
    assert (err.value.resource, err.value.required, err.value.available) == (
        "scale-up domain", 16, 8)
    assert str(err.value) == (
        "an allreduce over 16 devices exceeds the 8-device scale-up domain of NVIDIA H100 SXM5 "
        "80GB (NVLink 4) and it has no scale-out fabric; use at most 8 devices per scale-up "
        "collective, or a fleet")


def _allreduce_row(rid: str, size: float, n: int, alpha: float, eta: float, bw: float) -> dict:
    """A row measured exactly on t = 2(n-1) alpha + 2(n-1)/n S / (eta bw); busbw = 2(n-1)/n S/t
    in GB/s (the file's unit)."""
    rf = 2 * (n - 1) / n
    t = 2 * (n - 1) * alpha + rf * size / (eta * bw)
    return {"id": rid, "kind": "allreduce", "hardware": "X", "value": rf * size / t / 1e9,
            "num_devices": n, "message_bytes": size, "notes": ""}


def test_fit_collectives_fits_alpha_from_two_sizes():
    """Two sizes over 8 devices (64 KiB, within the 256 KiB latency regime, and 1 GiB) made
    with alpha = 5 us and eta_bus = 0.8 on a 100 GB/s link: two equations, two unknowns, an
    exact interior solution. (Treated as a single size, alpha would be the other fabrics'
    median, 0 here, and eta a compromise.)"""
    bw = 1e11
    rows = [_allreduce_row("R1", 64 * 1024, 8, 5e-6, 0.8, bw),
            _allreduce_row("R2", 2.0 ** 30, 8, 5e-6, 0.8, bw)]
    fab = fit_collectives(rows, {"X": (bw, 8)}).fabrics["X"]
    assert fab.alpha_s == pytest.approx(5e-6, rel=1e-6)
    assert fab.eta_bus == pytest.approx(0.8, rel=1e-6)
    assert fab.estimated is False


def test_fit_collectives_skips_a_row_without_a_device_count():
    row = {"id": "R1", "kind": "allreduce", "hardware": "X", "value": 100.0,
           "num_devices": None, "message_bytes": 1e6, "notes": ""}
    cal = fit_collectives([row], {"X": (1e11, 8)})
    assert cal.skipped == {"R1": "number of devices not stated"}


# ----------------------------------------------------------------------------------- contract

def test_jsonable_writes_a_non_finite_rate_as_null():
    assert jsonable(Rate(math.inf, "token/s")) == {"value": None, "unit": "token/s"}
    assert jsonable(Rate(math.nan)) == {"value": None, "unit": "sample/s"}
    assert jsonable(Rate(2.5, "token/s")) == {"value": 2.5, "unit": "token/s"}


@dataclass(frozen=True, eq=False, repr=False)
class _Refused(Result):
    """A result whose headline carries neither feasible nor reason."""

    feasible = False
    reason = "needs 90 GB of memory, has 80 GB"

    def headline(self):
        return {"latency": 1.0}

    @property
    def binding(self):
        return "memory capacity"


def test_to_dict_adds_the_reason_the_headline_lacks():
    assert _Refused().to_dict() == {"latency": 1.0, "feasible": False,
                                    "reason": "needs 90 GB of memory, has 80 GB",
                                    "binding": "memory capacity", "assumptions": []}


# ---------------------------------------------------------------------------------- costmodel

def _round_path() -> CommPath:
    """Two 8-device domains: scale-up 1e12 byte/s, scale-out 1e11 byte/s, no latency, eta 1."""
    ideal = CollectiveEfficiency(alpha_s=0.0, eta_bus=1.0, estimated=False)
    return CommPath(name="round", total=16, domain=8, up_name="up", up_bw=1e12, up_eff=ideal,
                    up_inr=False, out_name="out", out_bw=1e11, out_eff=ideal)


def test_cost_model_sends_a_spread_group_over_the_scale_out_fabric():
    """An all-reduce of 1e6 bytes over 2 ranks spread over 16 devices (as data-parallel ranks
    are tensor-parallel groups apart): 2 x 8 // 16 = 1 member per domain, so both hierarchical
    and flat ring cross the 1e11 byte/s fabric: 2(2-1)/2 x 1e6 / 1e11 = 1e-5 s. (Adjacent
    ranks would stay in one domain: 1e6 / 1e12 = 1e-6 s.)"""
    b = OperatorBuilder()
    b.collective("grad", "allreduce", message_bytes=1e6, group=2, span=16)
    table = b.build(weight_total_bytes=0.0)
    ev = evaluate(prepare(table, ROUND, "fp16", _ideal(), path=_round_path()), 1)
    assert ev.comm_time == pytest.approx(1e-5, rel=1e-12)
    assert ev.latency == pytest.approx(1e-5, rel=1e-12)


def test_moe_bytes_moved_add_the_activations():
    """One routed-expert GEMM (8 experts, 2 active, 1 token) with 8 weight bytes and 5
    activation bytes at batch 1: the batch touches 1 - (1 - 2/8)^1 = 1/4 of the experts, 2
    bytes, plus 5 activation bytes: 7 bytes."""
    b = OperatorBuilder()
    b.add("expert", OpKind.GEMM, flops=3.0, weight_bytes=8.0, act_bytes=5.0, moe=(8, 2, 1.0))
    table = b.build(weight_total_bytes=8.0)
    ev = evaluate(prepare(table, ROUND, "fp16", _ideal()), 1)
    assert ev.bytes == pytest.approx(7.0, rel=1e-12)


# ---------------------------------------------------------------------------------- data files

def test_read_text_refuses_a_nul_as_the_first_byte(tmp_path):
    path = tmp_path / "blob.csv"
    path.write_bytes(b"\x00abc\n")
    with pytest.raises(DataFileError) as err:
        read_text(path)
    assert str(err.value) == f"{path}, line 1: contains a NUL byte (a binary file?)"


def test_user_attention_row_in_a_precision_the_device_lacks_is_an_error(tmp_path):
    """A100 publishes no fp8 peak, so an fp8 attention row cannot be turned into a fraction."""
    csv = tmp_path / "runs.csv"
    csv.write_text("kind,precision,m,n,k,value,unit\nattention,fp8,,,,200,TFLOP/s\n")
    with pytest.raises(DataFileError) as err:
        calibrate_device(csv, mlsysim.Hardware.A100)
    assert str(err.value) == (
        "runs.csv:2: precision not published for NVIDIA A100 80GB SXM; it has peaks for fp64, "
        "fp32, tf32, bf16, fp16, int8, int4")


# -------------------------------------------------------------------------------------- power

def test_busy_seconds_counts_a_tie_as_compute():
    """A norm of 1 flop reading 1 byte on ROUND: t_c = 1 / 1e12 = 1 ps and t_m = 1 / (1e12 x
    1.0) = 1 ps, the same float. A tie is compute (as the binding rule): 1 ps of compute
    activity (1 flop at peak), none of memory."""
    b = OperatorBuilder()
    b.add("norm", OpKind.NORM, flops=1.0, act_bytes=1.0)
    table = b.build(weight_total_bytes=0.0)
    compute, memory = busy_seconds(prepare(table, ROUND, "fp16", _ideal()), 1)
    assert compute == pytest.approx(1e-12, rel=1e-12)
    assert memory == 0.0
