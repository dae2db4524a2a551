"""Pins found unguarded by mutmut in core/ and solvers/checkpoint: the attention/GEMM ratio of
the calibration fit, refusal messages (collective message size, power file columns and roles,
a non-negative count), the 16-bit attention peak of a 16-bit precision, the capacity's source
in a trace, precision and sequence length reaching Engine.sweep, device_power on arrays, and
the checkpoint explanation's gigabytes."""

import numpy as np
import pytest
from efficiencies import ideal as _ideal

import mlsysim
from mlsysim import Engine
from mlsysim.core.calibration import fit_calibration
from mlsysim.core.collectives import collective_time
from mlsysim.core.costmodel import evaluate, prepare
from mlsysim.core.power import device_power, load_power_rows, power_params
from mlsysim.core.validate import non_negative_int
from mlsysim.errors import DataFileError, ValidationError
from mlsysim.solvers.checkpoint import CheckpointModel
from mlsysim.specs.hardware import HardwareSpec
from mlsysim.specs.model import LayeredSpec
from mlsysim.units import Q_
from mlsysim.workloads.operators import OperatorBuilder, OpKind

# Round numbers: 1e12 flop/s at fp16, 2e12 at bf16 (different on purpose), 1e12 byte/s.
TWO_PEAKS = HardwareSpec(key="TwoPeaks", name="TwoPeaks", group="Cloud", vendor="Test",
                         compute={"dense": {"fp16": "1 TFLOP/s", "bf16": "2 TFLOP/s"}},
                         memory={"capacity": "10 GB", "bandwidth": "1 TB/s"},
                         source="test sheet", as_of="2024")


# ------------------------------------------------------------------------------ calibration

def test_attention_ratio_default_is_attention_over_the_16bit_gemm_max():
    """One device "X" with a bf16 peak of 1e15 flop/s. A shape-less GEMM row (F = inf, shape
    factor 1 for any tau) of 600 TFLOP/s gives gemm_max[(X, 16bit)] = 0.6; a fused attention
    row of 300 TFLOP/s over the same 16-bit peak gives attention[X] = 0.3. The default ratio
    for devices without attention rows is their median quotient, 0.3 / 0.6 = 0.5 (1.0 would
    mean no device was paired with its 16-bit GEMM group)."""
    rows = [
        {"id": "g1", "kind": "gemm", "hardware": "X", "precision": "bf16",
         "m": None, "n": None, "k": None, "value": 600.0, "source_key": "s"},
        {"id": "a1", "kind": "attention", "hardware": "X", "precision": "bf16",
         "m": None, "n": None, "k": None, "value": 300.0, "source_key": "s"},
        {"id": "c1", "kind": "memcpy", "hardware": "X", "precision": "",
         "m": None, "n": None, "k": None, "value": 800.0, "source_key": "s"},
        {"id": "l1", "kind": "launch", "hardware": "X", "precision": "",
         "m": None, "n": None, "k": None, "value": 5.0, "source_key": "s"},
    ]
    cal = fit_calibration(rows, {("X", "bf16"): 1e15}, {"X": 1e12})
    assert cal.gemm_max[("X", "16bit")] == pytest.approx(0.6, rel=1e-12)
    assert cal.attention["X"] == pytest.approx(0.3, rel=1e-12)
    assert cal.defaults["attention_ratio"] == pytest.approx(0.5, rel=1e-12)
    assert cal.memory["X"] == pytest.approx(0.8, rel=1e-12)      # 800 GB/s over 1000 GB/s


# ------------------------------------------------------------------------------ collectives

def test_collective_time_refuses_a_quantity_that_is_not_bytes():
    with pytest.raises(ValidationError) as err:
        collective_time("H100", "allreduce", Q_(5, "second"), 8)
    assert str(err.value) == ("The 'message_bytes' parameter of collective_time must be a "
                              "number of bytes. Got 5 s instead.")


# ------------------------------------------------------------------------------- cost model

def test_bf16_attention_runs_at_the_bf16_peak_not_the_fp16_one():
    """Attention is computed in 16 bits: a precision of at least 2 bytes keeps its own peak.
    One attention operator of 2e12 flop at bf16 on TWO_PEAKS: 2e12 / (2e12 x 1.0) = 1.0 s
    (at the fp16 peak it would be 2e12 / 1e12 = 2.0 s). No bytes, so compute binds."""
    b = OperatorBuilder()
    b.add("attn", OpKind.ATTENTION, flops=2e12)
    table = b.build(weight_total_bytes=0.0)
    ev = evaluate(prepare(table, TWO_PEAKS, "bf16", _ideal()), 1)
    assert float(ev.latency) == pytest.approx(1.0, rel=1e-12)
    ev16 = evaluate(prepare(table, TWO_PEAKS, "fp16", _ideal()), 1)
    assert float(ev16.latency) == pytest.approx(2.0, rel=1e-12)


# ----------------------------------------------------------------------------------- engine

def test_trace_capacity_cites_the_hardware_source_when_no_field_source():
    """TWO_PEAKS has no field_sources, so every constant, the capacity (10 GB = 1e10 byte)
    included, cites the spec's own source "test sheet"."""
    c = Engine.solve("ResNet50", TWO_PEAKS, batch_size=1).trace()["constants"]
    assert c["capacity"] == {"value": 1e10, "unit": "byte", "source": "test sheet"}
    assert c["bandwidth"]["source"] == "test sheet"


def test_engine_sweep_passes_the_precision():
    """memory_bytes = weights + B x per-sample bytes, so 2 m(1) - m(2) is the weights alone:
    Llama-3-8B's 8,030,261,248 parameters x 1 byte at fp8 (x 2 bytes at the fp16 default)."""
    m8 = Engine.sweep("Llama3_8B", "H100", [1, 2], precision="fp8")["memory_bytes"]
    assert 2 * m8[0] - m8[1] == pytest.approx(8_030_261_248, rel=1e-12)
    m16 = Engine.sweep("Llama3_8B", "H100", [1, 2])["memory_bytes"]
    assert 2 * m16[0] - m16[1] == pytest.approx(2 * 8_030_261_248, rel=1e-12)


def test_engine_sweep_passes_the_sequence_length():
    """Per-sample bytes m(2) - m(1) in decode hold the KV cache, 2 (K, V) x 32 layers x 8 KV
    heads x 128 dims x 2 bytes = 131,072 B per token of context, plus activations that do not
    depend on the context. Going from 4096 to 8192 tokens adds 4096 x 131,072 = 536,870,912 B
    per sample."""
    def per_sample(seq):
        m = Engine.sweep("Llama3_8B", "H100", [1, 2], seq_len=seq)["memory_bytes"]
        return m[1] - m[0]
    assert per_sample(8192) - per_sample(4096) == pytest.approx(4096 * 131_072, rel=1e-12)


# ------------------------------------------------------------------------------------ power

def test_device_power_of_an_array_is_an_array():
    """A100_40GB: idle 66.5 W at zero activity, its 400 W cap at full compute activity
    (the device_power docstring's identities), element by element."""
    p = power_params("A100_40GB")
    assert (p.idle_w, p.max_w) == (66.5, 400.0)
    watts = device_power("A100_40GB", [0.0, 1.0], 0.0)
    assert isinstance(watts, np.ndarray) and watts.shape == (2,)
    np.testing.assert_allclose(watts, [66.5, 400.0], rtol=1e-12)
    one = device_power("A100_40GB", 0.0, 0.0)
    assert type(one) is float and one == 66.5


_HEADER = ("id,hardware,role,activity,precision,compute_util,memory_util,power_w,power_low_w,"
           "power_high_w,quality,derived,source_key,condition")


def test_power_file_missing_columns_are_listed(tmp_path):
    path = tmp_path / "power.csv"
    path.write_text(_HEADER.replace(",power_low_w,power_high_w", "") + "\n")
    with pytest.raises(DataFileError) as err:
        load_power_rows(path)
    assert str(err.value) == f"{path}, line 1: missing columns power_low_w, power_high_w"


def test_power_file_unknown_role_names_the_roles(tmp_path):
    path = tmp_path / "power.csv"
    path.write_text(_HEADER + "\nP1,H100,peak,,bf16,1,0,700,,,,,,\n")
    with pytest.raises(DataFileError) as err:
        load_power_rows(path)
    assert str(err.value) == (f"{path}, line 2: role must be one of idle, fit, context "
                              "(got 'peak')")


# ------------------------------------------------------------------------------- validation

def test_non_negative_int_refusal_names_its_owner():
    assert non_negative_int("steps", 0, "Owner") == 0
    with pytest.raises(ValidationError) as err:
        non_negative_int("steps", -1, "Owner")
    assert str(err.value) == ("The 'steps' parameter of Owner must be a non-negative whole "
                              "number. Got -1 instead.")


# ------------------------------------------------------------------------------- checkpoint

def _pinned_model() -> LayeredSpec:
    """ResNet-50's layers with extra parameters making 72,250,000 in all."""
    base = mlsysim.Models.get("ResNet50")
    d = base.model_dump()
    d.update(name="Pinned", extra_parameters=72_250_000 - base.parameter_count,
             published_parameters=72_250_000)
    return LayeredSpec(**d)


def test_checkpoint_explain_shows_gigabytes():
    """72,250,000 params x 14 B (bf16 + fp32 master + Adam) = 1,011,500,000 B. The float
    1011500000 / 1e9 lies just above 1.0115, so it shows as 1.012 GB (a divisor only 1e-9
    larger would land below 1.0115 and show 1.011). Async on H100: one writer over the 64 GB/s
    host link, 1.0115 / 64 = 0.0158 s."""
    r = CheckpointModel().solve(_pinned_model(), "H100", async_checkpoint=True)
    lines = r.explain().splitlines()
    assert lines[1] == ("  size = 72,250,000 params x 14 B = 1.012 GB   (weights + fp32 master "
                        "+ optimizer state; ZeRO sec. 3.1)")
    assert lines[4] == ("  async: t_snapshot = size / (n_writers x host link) = 1.012 GB / "
                        "(1 x 64 GB/s) = 0.0158 s blocks; the write runs in the background")
