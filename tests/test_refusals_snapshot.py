"""Every refusal, word for word: a catalogue of bad inputs to the public API, each with the
exception type it raises and its whole message (``str(exc)``), against
``tests/data/refusals.json``.

The other error tests match the field name (``tests/test_contract.py`` checks every numeric
option's rejection names the option and its solver); this one pins the rest of the sentence:
the owner, the phrase that says what is allowed, the list of allowed values, the "Did you
mean" suggestions and the value echoed back. A dropped owner, a re-cased phrase or an altered
list of choices fails here. A few entries are refusals that come back as an infeasible result
instead of an exception (an unpriced device): for those the ``reason`` is pinned.

The messages were read when the snapshot was written and judged right (the report of the
session that wrote it lists the few that read oddly). After an intended change to a message,
regenerate and read the diff::

    python tests/test_refusals_snapshot.py
"""

from __future__ import annotations

import json
import math
import sys
from pathlib import Path

import pytest

import mlsysim
from mlsysim import (
    ContinuousBatchingConfig,
    ContinuousBatchingModel,
    DistributedConfig,
    DistributedModel,
    EconomicsModel,
    ReliabilityModel,
    ServingConfig,
    ServingModel,
)
from mlsysim.core.engine import Engine
from mlsysim.solvers.base import all_solvers
from mlsysim.solvers.reliability import per_accelerator_rate

SNAPSHOT = Path(__file__).parent / "data" / "refusals.json"
INFEASIBLE = "infeasible result"
_SOLVERS = {cls.__name__: cls for cls in all_solvers()}


def _bad(solver: str, /, **override):
    """``solver``'s feasible example with ``override`` applied: one bad field at a time."""
    cls = _SOLVERS[solver]
    return lambda: cls().solve(**{**cls.example(True), **override})


def _engine(**kw):
    return lambda: Engine.solve(**{"model": "Llama3_8B", "hardware": "H100", **kw})


def _dist(**kw):
    return lambda: DistributedModel().solve(
        **{"model": "Llama3_8B", "fleet": "DGX_H100", "batch_size": 8, "seq_len": 1024, **kw})


def _fleet_with_mtbf(hours):
    fleet = mlsysim.Systems.Clusters.get("Meta_Llama3_405B_16K")
    return type(fleet)(**{**fleet.model_dump(), "mtbf_hours": hours})


CASES = {
    # --- Engine.solve (SingleNodeModel) -------------------------------------------------------
    "Engine.solve batch_size=0": _engine(batch_size=0),
    "Engine.solve batch_size=NaN": _engine(batch_size=math.nan),
    "Engine.solve batch_size='8'": _engine(batch_size="8"),
    "Engine.solve batch_size=2.5": _engine(batch_size=2.5),
    "Engine.solve batch_size=True": _engine(batch_size=True),
    "Engine.solve unknown model": _engine(model="Llama3_9B"),
    "Engine.solve unknown hardware": _engine(hardware="H1000"),
    "Engine.solve unknown precision": _engine(precision="fp12"),
    "Engine.solve unknown phase": _engine(phase="train"),
    "Engine.solve seq_len=0": _engine(seq_len=0),
    "Engine.solve seq_len past the context": _engine(seq_len=10**7),
    "Engine.solve memory_utilization=2": _engine(memory_utilization=2),
    "Engine.solve pp_size=0": _engine(pp_size=0),
    "Engine.sweep no batch sizes": lambda: Engine.sweep(model="ResNet50", hardware="H100",
                                                        batch_sizes=[]),
    "SingleNodeModel phase='training'": _bad("SingleNodeModel", phase="training"),
    # --- DistributedModel and its config ------------------------------------------------------
    "DistributedModel tp_size not dividing heads": _dist(tp_size=3),
    "DistributedModel pp_size past the layers": _dist(fleet="DGX_H100_SuperPOD_256",
                                                      batch_size=64, pp_size=64),
    "DistributedModel unknown precision": _dist(precision="fp12"),
    "DistributedModel zero_stage=4": _bad("DistributedModel", zero_stage=4),
    "DistributedModel unknown schedule": _bad("DistributedModel", schedule="zigzag"),
    "DistributedModel unknown recomputation": _bad("DistributedModel",
                                                   activation_recomputation="some"),
    "DistributedModel unknown optimizer": _bad("DistributedModel", optimizer="adamw9"),
    "DistributedModel unknown rank order": _bad("DistributedModel", rank_order="tp-dp"),
    "DistributedModel unknown attention kernel": _bad("DistributedModel",
                                                      attention_kernel="fast"),
    "DistributedModel dp_size not filling the node": _bad("DistributedModel", dp_size=3),
    "DistributedModel batch_size=0": _bad("DistributedModel", batch_size=0),
    "DistributedModel v_stages without pipeline": _bad("DistributedModel", v_stages=2),
    "DistributedModel ep_size on a dense model": _bad("DistributedModel", ep_size=2),
    "DistributedModel cp_size not dividing seq_len": _bad("DistributedModel", cp_size=3),
    "DistributedModel capacity_factor below 1": _bad("DistributedModel", capacity_factor=0.5),
    "DistributedModel config as a dict": _bad("DistributedModel", config={"batch_size": 8}),
    "DistributedModel first stage takes every layer": _dist(pp_size=2, first_stage_layers=40),
    "DistributedModel microbatch_size not dividing": _dist(pp_size=2, microbatch_size=3),
    "DistributedModel memory_utilization=0": _bad("DistributedModel", memory_utilization=0),
    "DistributedModel token_budget=0": _bad("DistributedModel", token_budget=0),
    "DistributedConfig batch_size=0": lambda: DistributedConfig(batch_size=0, seq_len=128),
    "DistributedConfig unknown field": lambda: DistributedConfig(batch_size=8, seq_len=128,
                                                                 foo=1),
    "DistributedConfig zero_stage=7": lambda: DistributedConfig(batch_size=8, seq_len=128,
                                                                zero_stage=7),
    "NetworkRooflineModel tp_size not dividing heads": _bad("NetworkRooflineModel", tp_size=3),
    "ParallelismOptimizer unknown objective": _bad("ParallelismOptimizer", objective="fun"),
    "ParallelismOptimizer top_k=0": _bad("ParallelismOptimizer", top_k=0),
    "ParallelismOptimizer zero stage 5": _bad("ParallelismOptimizer", zero_stages=(5,)),
    "ParallelismOptimizer max_tp=0": _bad("ParallelismOptimizer", max_tp=0),
    "ParallelismOptimizer cp size 0": _bad("ParallelismOptimizer", cp_sizes=(0,)),
    "ParallelismOptimizer unknown recomputation": _bad("ParallelismOptimizer",
                                                       recomputation=("some",)),
    # --- ServingModel and its config ----------------------------------------------------------
    "ServingModel unknown model": lambda: ServingModel().solve("Llama3_9B", "H100",
                                                               seq_len=128),
    "ServingModel without seq_len": lambda: ServingModel().solve("Llama3_8B", "H100"),
    "ServingModel unknown kv_precision": _bad("ServingModel", kv_precision="fp12"),
    "ServingModel unknown weight_precision": _bad("ServingModel", weight_precision="int3"),
    "ServingModel tp_size not dividing heads": _bad("ServingModel", tp_size=3),
    "ServingModel acceptance rate 1.5": lambda: ServingModel().solve(
        "Llama3_8B", "H100", seq_len=128, draft_model="Llama3_2_1B", draft_acceptance_rate=1.5),
    "ServingModel draft without acceptance rate": lambda: ServingModel().solve(
        "Llama3_8B", "H100", seq_len=128, draft_model="Llama3_2_1B"),
    "ServingModel cached prefix past seq_len": _bad("ServingModel", cached_prefix_len=4096),
    "ServingModel page_size=0": _bad("ServingModel", page_size=0),
    "ServingModel unknown decode attention": _bad("ServingModel", decode_attention="flat"),
    "ServingModel unknown attention kernel": _bad("ServingModel", attention_kernel="fast"),
    "ServingModel unknown engine": _bad("ServingModel", engine="vllm9"),
    "ServingModel sparsity 3:4": _bad("ServingModel", sparsity="3:4"),
    "ServingModel batch_size=0": _bad("ServingModel", batch_size=0),
    "ServingModel weight_group_size=0": _bad("ServingModel", weight_group_size=0),
    "ServingConfig seq_len=0": lambda: ServingConfig(seq_len=0),
    "ServingConfig unknown field": lambda: ServingConfig(seq_len=128, foo=1),
    "ServingConfig batch_size=-1": lambda: ServingConfig(seq_len=128, batch_size=-1),
    "ServingConfig memory_utilization=0": lambda: ServingConfig(seq_len=128,
                                                                memory_utilization=0),
    "ServingConfig draft_len=0": lambda: ServingConfig(seq_len=128, draft_len=0),
    "ServingConfig tp_size=0": lambda: ServingConfig(seq_len=128, tp_size=0),
    "ServingConfig sparsity 1:2": lambda: ServingConfig(seq_len=128, sparsity="1:2"),
    "ServingConfig output_len=0": lambda: ServingConfig(seq_len=128, output_len=0),
    "ServingConfig network bandwidth a word": lambda: ServingConfig(
        seq_len=128, decode_hardware="H100", network_bandwidth="fast"),
    "ServingModel network_bandwidth without decode_hardware": lambda: ServingModel().solve(
        "Llama3_8B", "H100", seq_len=128, network_bandwidth="50 GB/s"),
    "ServingModel cuda_graphs as a string": lambda: ServingModel().solve(
        "Llama3_8B", "H100", seq_len=128, cuda_graphs="no"),
    "DistributedModel sequence_parallel as a string": _dist(sequence_parallel="yes"),
    "DistributedModel dropout as 1": _dist(dropout=1),
    "DistributedModel no batch_size": _dist(batch_size=None),
    "CompressionModel unknown method": _bad("CompressionModel", method="int3_magic"),
    "CompressionModel unknown model": _bad("CompressionModel", model="Llama3_9B"),
    "BatchingOptimizer sla_latency_ms=0": _bad("BatchingOptimizer", sla_latency_ms=0),
    "BatchingOptimizer max_batch_size=0": _bad("BatchingOptimizer", max_batch_size=0),
    "BatchingOptimizer arrival rate 0": _bad("BatchingOptimizer", arrival_rate_qps=0),
    "BatchingOptimizer unknown serving option": _bad("BatchingOptimizer", serving={"foo": 1}),
    "InferenceScalingModel num_samples=0": _bad("InferenceScalingModel", num_samples=0),
    "InferenceScalingModel tokens_per_step=0": _bad("InferenceScalingModel", tokens_per_step=0),
    "InferenceScalingModel serving a word": _bad("InferenceScalingModel", serving="fast"),
    "WeightStreamingModel unknown phase": _bad("WeightStreamingModel", phase="train"),
    "WeightStreamingModel bandwidth a word": _bad("WeightStreamingModel",
                                                  stream_bandwidth="fast"),
    "WeightStreamingModel bandwidth a size": _bad("WeightStreamingModel",
                                                  stream_bandwidth="5 GB"),
    "SynthesisSolver unknown metric": _bad("SynthesisSolver", metric="joy"),
    "SynthesisSolver latency a size": _bad("SynthesisSolver", target_latency="5 GB"),
    "SynthesisSolver unknown precision": _bad("SynthesisSolver", precision="fp12"),
    "SynthesisSolver efficiency a number": _bad("SynthesisSolver", efficiency=2),
    "SensitivitySolver unknown metric": _bad("SensitivitySolver", metric="joy"),
    "SensitivitySolver unknown solver": _bad("SensitivitySolver", solver="magic"),
    "SensitivitySolver relative_step=0": _bad("SensitivitySolver", relative_step=0),
    "SensitivitySolver unknown config key": _bad("SensitivitySolver", config={"batch": 8}),
    "DifferentialExplainer unknown solver": _bad("DifferentialExplainer", solver="magic"),
    "DifferentialExplainer unknown metric": _bad("DifferentialExplainer", metric="joy"),
    # --- ContinuousBatchingModel --------------------------------------------------------------
    "ContinuousBatchingModel unknown engine": _bad("ContinuousBatchingModel", engine="vllm9"),
    "ContinuousBatchingModel without prompt_len": lambda: ContinuousBatchingModel().solve(
        "Llama3_8B", "H100", output_len=64, arrival_rate_qps=2),
    "ContinuousBatchingModel page_size=0": _bad("ContinuousBatchingModel", page_size=0),
    "ContinuousBatchingModel arrival rate -1": _bad("ContinuousBatchingModel",
                                                    arrival_rate_qps=-1),
    "ContinuousBatchingModel unknown kv_precision": _bad("ContinuousBatchingModel",
                                                         kv_precision="fp12"),
    "ContinuousBatchingModel tp_size not dividing heads": _bad("ContinuousBatchingModel",
                                                               tp_size=3),
    "ContinuousBatchingModel memory_utilization=0": _bad("ContinuousBatchingModel",
                                                         memory_utilization=0),
    "ContinuousBatchingConfig unknown field": lambda: ContinuousBatchingConfig(
        prompt_len=1, output_len=1, arrival_rate_qps=1, x=2),
    "ContinuousBatchingConfig prompt_len=0": lambda: ContinuousBatchingConfig(
        prompt_len=0, output_len=1, arrival_rate_qps=1),
    "ContinuousBatchingConfig memory_utilization=1.5": lambda: ContinuousBatchingConfig(
        prompt_len=1, output_len=1, arrival_rate_qps=1, memory_utilization=1.5),
    # --- CheckpointModel, ReliabilityModel ----------------------------------------------------
    "CheckpointModel unknown optimizer": _bad("CheckpointModel", optimizer="lion9"),
    "CheckpointModel unknown precision": _bad("CheckpointModel", precision="fp12"),
    "CheckpointModel n_writers=0": _bad("CheckpointModel", n_writers=0),
    "CheckpointModel interval 0": _bad("CheckpointModel", checkpoint_interval_hours=0),
    "CheckpointModel writer bandwidth a size": _bad("CheckpointModel", writer_bandwidth="5 GB"),
    "ReliabilityModel negative job hours": lambda: ReliabilityModel().solve(
        "Meta_Llama3_405B_16K", job_duration_hours=-1, checkpoint_time_s=60),
    "ReliabilityModel negative recovery": _bad("ReliabilityModel", avg_recovery_time_s=-5),
    "ReliabilityModel without a fleet": lambda: ReliabilityModel().solve(
        job_duration_hours=1, checkpoint_time_s=60),
    "ReliabilityModel interval 0": _bad("ReliabilityModel", checkpoint_interval_hours=0),
    "ReliabilityModel fleet a number": _bad("ReliabilityModel", fleet=5),
    "Fleet negative MTBF": lambda: _fleet_with_mtbf(-1),
    "per_accelerator_rate unknown job": lambda: per_accelerator_rate("llama4"),
    # --- EconomicsModel, SustainabilityModel, PlacementOptimizer ------------------------------
    "EconomicsModel unpriced device": lambda: EconomicsModel().solve(
        "JetsonOrinNano", duration_days=30, datacenter="Hyperscale", grid="PJM", mfu=0.4),
    "EconomicsModel unknown device": lambda: EconomicsModel().solve(
        "Edge_Jetson", duration_days=30, datacenter="Hyperscale", grid="PJM", mfu=0.4),
    "EconomicsModel unknown grid": _bad("EconomicsModel", grid="Mars"),
    "EconomicsModel unknown datacenter": _bad("EconomicsModel", datacenter="Garage"),
    "EconomicsModel mfu=2": _bad("EconomicsModel", mfu=2),
    "EconomicsModel kwh price a word": _bad("EconomicsModel", kwh_price="cheap"),
    "EconomicsModel purchase price a word": _bad("EconomicsModel", purchase_price="lots"),
    "EconomicsModel cloud price -1": _bad("EconomicsModel", cloud_price=-1),
    "EconomicsModel tokens=0": _bad("EconomicsModel", tokens=0),
    "SustainabilityModel unknown region": _bad("SustainabilityModel", grid="Atlantis"),
    "SustainabilityModel unknown datacenter": _bad("SustainabilityModel", datacenter="Garage"),
    "SustainabilityModel duration 0": _bad("SustainabilityModel", duration_days=0),
    "SustainabilityModel service life 0": _bad("SustainabilityModel", service_life_years=0),
    "SustainabilityModel negative embodied carbon": _bad("SustainabilityModel",
                                                         embodied_kg_per_accelerator=-1),
    "SustainabilityModel tokens=0": _bad("SustainabilityModel", tokens=0),
    "SustainabilityModel month 0": _bad("SustainabilityModel", month=0),
    "PlacementOptimizer unknown region": _bad("PlacementOptimizer",
                                              regions=["Quebec", "Atlantis"]),
    "PlacementOptimizer no regions": _bad("PlacementOptimizer", regions=[]),
    "PlacementOptimizer unknown datacenter": _bad("PlacementOptimizer", datacenter="Garage"),
    "PlacementOptimizer unknown objective": _bad("PlacementOptimizer", objective="cheapest"),
    "PlacementOptimizer negative carbon tax": _bad("PlacementOptimizer", carbon_tax_per_ton=-1),
    # --- the rest ---------------------------------------------------------------------------
    "EfficiencyModel with nothing": lambda: mlsysim.EfficiencyModel().solve(),
    "ResponsibleEngineeringModel unknown clipping": _bad("ResponsibleEngineeringModel",
                                                         clipping="magic"),
    "ResponsibleEngineeringModel confidence 1": _bad("ResponsibleEngineeringModel",
                                                     confidence=1),
    "ResponsibleEngineeringModel subgroup 2": _bad("ResponsibleEngineeringModel",
                                                   subgroup_fraction=2),
    "ResponsibleEngineeringModel margin 0": _bad("ResponsibleEngineeringModel", margin=0),
    "ResponsibleEngineeringModel negative noise": _bad("ResponsibleEngineeringModel",
                                                       noise_multiplier=-1),
    "ResponsibleEngineeringModel cost a word": _bad("ResponsibleEngineeringModel",
                                                    cost_per_sample="lots"),
    "ScalingModel budget a size": _bad("ScalingModel", compute_budget="5 GB"),
    "ScalingModel unknown precision": _bad("ScalingModel", precision="fp12"),
    "ScalingModel model size a word": _bad("ScalingModel", target_model_size="big"),
    "ScalingModel tokens_per_parameter=0": _bad("ScalingModel", tokens_per_parameter=0),
    "DataModel bandwidth a word": _bad("DataModel", storage_bandwidth="fast"),
    "DataModel unknown decode step": _bad("DataModel", decode_cost_s_per_sample="jpeg_magic"),
    "DataModel stall fraction 1.5": _bad("DataModel", max_stall_fraction=1.5),
    "DataModel cpu_workers=0": _bad("DataModel", cpu_workers=0),
    "DataModel sample size a word": _bad("DataModel", bytes_per_sample="big"),
    "TransformationModel unknown step": lambda: mlsysim.TransformationModel().solve(
        1000, ("jpeg_decode_magic",)),
    "TransformationModel cpu_cores=0": _bad("TransformationModel", cpu_cores=0),
    "OrchestrationModel negative cv": _bad("OrchestrationModel", job_time_cv=-1),
    "OrchestrationModel job larger than the cluster": _bad("OrchestrationModel",
                                                           mean_job_gpus=1024),
    "OrchestrationModel arrival rate 0": _bad("OrchestrationModel", arrival_rate_jobs_per_h=0),
    "TailLatencyModel negative cv": _bad("TailLatencyModel", service_time_cv=-1),
    "TailLatencyModel num_replicas=0": _bad("TailLatencyModel", num_replicas=0),
    "TailLatencyModel arrival rate NaN": _bad("TailLatencyModel", arrival_rate_qps=math.nan),
    "TopologyModel unknown topology": _bad("TopologyModel", topology="hypercube"),
    "TopologyModel oversubscription 0.5": _bad("TopologyModel", oversubscription_ratio=0.5),
    "TopologyModel switch radix 1": _bad("TopologyModel", switch_radix=1),
    "TopologyModel torus shape not multiplying": _bad("TopologyModel", topology="torus",
                                                      torus_shape=(3, 3)),
    "TopologyModel num_nodes=0": _bad("TopologyModel", num_nodes=0),
    "TopologyModel dragonfly shape of one number": _bad("TopologyModel", topology="dragonfly",
                                                        dragonfly_shape=(1,)),
}


def _type_name(exc_type: type) -> str:
    return f"{exc_type.__module__}.{exc_type.__qualname__}"


def refusal(call) -> dict:
    """What ``call`` answers: the exception's type and whole message, or an infeasible
    result's reason. A call that succeeds is not a refusal and has no place here."""
    try:
        result = call()
    except Exception as exc:  # noqa: BLE001 - every type is recorded, then compared exactly
        return {"type": _type_name(type(exc)), "message": str(exc)}
    if getattr(result, "feasible", True):
        raise AssertionError(f"accepted: {result!r}")
    return {"type": INFEASIBLE, "message": result.reason}


@pytest.fixture(scope="module")
def stored() -> dict:
    return json.loads(SNAPSHOT.read_text(encoding="utf-8"))


def test_the_catalogue_and_the_snapshot_name_the_same_cases(stored):
    assert sorted(stored) == sorted(CASES)
    assert len(CASES) >= 60


@pytest.mark.parametrize("case", sorted(CASES))
def test_the_refusal_is_unchanged(case, stored):
    """The call raises exactly the stored type (not a subclass or parent) with exactly the
    stored message, or returns an infeasible result with exactly the stored reason."""
    then = stored[case]
    hint = "intended? regenerate with: python tests/test_refusals_snapshot.py"
    if then["type"] == INFEASIBLE:
        result = CASES[case]()
        assert not result.feasible, hint
        assert result.reason == then["message"], hint
        return
    with pytest.raises(Exception) as exc:  # noqa: B017 - the exact type is compared below
        CASES[case]()
    assert _type_name(type(exc.value)) == then["type"], hint
    assert str(exc.value) == then["message"], hint


if __name__ == "__main__":
    SNAPSHOT.parent.mkdir(exist_ok=True)
    SNAPSHOT.write_text(json.dumps({k: refusal(f) for k, f in CASES.items()}, indent=1,
                                   sort_keys=True, ensure_ascii=False) + "\n",
                        encoding="utf-8")
    print(f"wrote {SNAPSHOT} ({len(CASES)} refusals)", file=sys.stderr)
