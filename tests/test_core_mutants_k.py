"""Pins found unguarded by mutmut (sample K) in core/ and workloads/: the fp16 peak the fused
attention row is divided by, the collective-time and node-power refusals in full, a solver
class registering itself when defined, and a lowered table's identity (its source)."""

import pytest

import mlsysim
from mlsysim.cache import clear_caches
from mlsysim.core.calibration import fit_calibration
from mlsysim.core.collectives import collective_time
from mlsysim.core.contract import _REGISTRY, ForwardModel, all_solvers
from mlsysim.core.power import node_power
from mlsysim.errors import ValidationError
from mlsysim.workloads import lower
from mlsysim.workloads.operators import OperatorBuilder, OpKind


# ------------------------------------------------------------------------------ calibration
def test_attention_row_is_divided_by_the_fp16_peak_before_the_bf16_one():
    """Kills fit_calibration mutant 121 (the fp16 peak looked up as "FP16", so never found,
    and the bf16 one used instead). Device "X" publishes 1e15 flop/s at fp16 and 2e15 at bf16
    (different on purpose). A fused attention row of 300 TFLOP/s over the fp16 peak is
    eta = 300e12 / 1e15 = 0.3 (over bf16 it would be 0.15). The shape-less 600 TFLOP/s GEMM
    row at bf16 gives gemm_max = 600e12 / 2e15 = 0.3, so the attention/GEMM ratio is 1.0
    (0.5 with the bf16 peak)."""
    row = dict(m=None, n=None, k=None, source_key="s", hardware="X")
    rows = [
        {**row, "id": "g1", "kind": "gemm", "precision": "bf16", "value": 600.0},
        {**row, "id": "a1", "kind": "attention", "precision": "bf16", "value": 300.0},
        {**row, "id": "c1", "kind": "memcpy", "precision": "", "value": 800.0},
        {**row, "id": "l1", "kind": "launch", "precision": "", "value": 5.0},
    ]
    cal = fit_calibration(rows, {("X", "fp16"): 1e15, ("X", "bf16"): 2e15}, {"X": 1e12})
    assert cal.gemm_max[("X", "16bit")] == pytest.approx(0.3, rel=1e-12)
    assert cal.attention["X"] == pytest.approx(0.3, rel=1e-12)
    assert cal.defaults["attention_ratio"] == pytest.approx(1.0, rel=1e-12)


# ------------------------------------------------------------------------------ collectives
def test_collective_time_refuses_an_unknown_algorithm_by_name():
    """Kills _algorithm mutant 8 (the field named "XXalgorithmXX")."""
    with pytest.raises(ValidationError) as err:
        collective_time("H100", "allreduce", 1e6, 8, algorithm="bogus")
    assert err.value.field == "algorithm" and err.value.owner == "collective_time"
    assert str(err.value) == (
        "The 'algorithm' parameter of collective_time must be one of auto, nccl, ring, tree, "
        "one_shot, two_shot, in_network, hierarchical. Got 'bogus' instead.")


# ----------------------------------------------------------------------------------- power
def test_node_power_without_host_or_system_power_says_what_to_give():
    """Kills node_power mutant 72 (the message's first sentence wrapped in "XX"). The HGX H100
    reference server publishes neither host_power nor system_power."""
    node = mlsysim.Systems.Nodes.HGX_H100
    assert node.host_power is None and node.system_power is None
    with pytest.raises(ValidationError) as err:
        node_power(node, 600.0)
    assert str(err.value) == (
        f"The 'host_power' parameter of {node.name} is not published (nor a system_power to "
        "derive it from): node power needs it. Give the Node a host_power, e.g. "
        "host_power='3 kW'.")


# -------------------------------------------------------------------------------- contract
def test_a_solver_class_defined_without_register_is_registered():
    """Kills ForwardModel.__init_subclass__ mutant 1 (register defaulting to False). A class
    statement without ``register=`` puts the class in the registry under module.qualname,
    and all_solvers() lists it; the test removes it again."""
    class _KSolver(ForwardModel):
        pass

    key = f"{_KSolver.__module__}.{_KSolver.__qualname__}"
    try:
        assert _REGISTRY.get(key) is _KSolver
        assert _KSolver in all_solvers()
    finally:
        _REGISTRY.pop(key, None)
    assert _KSolver not in all_solvers()


# ------------------------------------------------------------------------------- workloads
def test_with_source_labels_the_table_and_makes_it_equal_by_source():
    """Kills OperatorTable.with_source mutant 3 (the source set to None). Two tables built
    separately are equal only once they carry the same source, and hash as it."""
    def table():
        b = OperatorBuilder()
        b.add("mm", OpKind.GEMM, flops=2e9, weight_bytes=1e6)
        return b.build(weight_total_bytes=1e6)

    a, b = table(), table()
    assert a != b and a == a                      # built by hand: equal only to itself
    assert a.with_source(("k", 1)) is a
    assert a.source == ("k", 1)
    b.with_source(("k", 1))
    assert a == b and hash(a) == hash(("k", 1)) == hash(b)


def test_a_lowered_table_is_identified_by_what_it_was_lowered_from():
    """The same lowering done twice (the cache emptied between) gives two table objects that
    are equal, since each carries its lowering key as its source: the prepared-cost caches
    keyed on tables then find one another's entries."""
    m = mlsysim.Models.Llama3_8B
    clear_caches()
    a = lower(m, phase="decode", seq_len=1024, e=2.0)
    clear_caches()
    b = lower(m, phase="decode", seq_len=1024, e=2.0)
    assert a is not b
    assert a.source == ("lower", m, "decode", 1024, 2.0, None, None, 1, 0, 1, False)
    assert a == b and hash(a) == hash(b)
