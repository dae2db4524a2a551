"""Whole error messages, word for word: the field, the owner and what to type instead are the
product ("errors that tell you what to type instead"), so a dropped owner, a renamed field or a
re-cased hint is a regression. Each case is a call a user can make; the message is the one the
package prints today, read and judged right."""

import pytest

import mlsysim
from mlsysim import (
    CheckpointModel,
    DataModel,
    DistributedModel,
    SensitivitySolver,
    ServingModel,
    SustainabilityModel,
    TransformationModel,
)
from mlsysim.core import validate as check
from mlsysim.core.collectives import collective_time
from mlsysim.core.datafile import read_text
from mlsysim.core.device_calibration import calibrate_device
from mlsysim.core.engine import Engine
from mlsysim.core.power import device_power, energy
from mlsysim.errors import DataFileError, UnknownNameError, UnsupportedPrecisionError
from mlsysim.solvers.compare import compare
from mlsysim.solvers.queueing import TailLatencyModel, allen_cunneen_factor, erlang_c


def _speculative_serving():
    return ServingModel().solve("Llama3_8B", "H100", seq_len=128, draft_model="Llama3_2_1B",
                                draft_acceptance_rate=0.9)


def _dp_only_run():
    return DistributedModel().solve("Llama3_8B", "DGX_H100", batch_size=64, seq_len=2048,
                                    zero_stage=1)

CASES = {
    "in-network on a switch without reduction": (
        lambda: collective_time("A100", "allreduce", 1e6, 8, algorithm="in_network"),
        "The 'algorithm' parameter of collective_time 'in_network' needs a fabric that reduces "
        "in the switch (NVLS, SHARP); this one does not. Choose one of: auto, nccl, ring, tree, "
        "one_shot, two_shot."),
    "a CNN split over devices": (
        lambda: Engine.solve(model="ResNet50", hardware="H100", batch_size=1, tp_size=2),
        "The 'tp_size' parameter of Engine.solve times pp_size must be 1 for ResNet-50 (CNN): "
        "only transformers and state-space models are split over devices. Got tp_size=2, "
        "pp_size=1 instead."),
    "a string batch in a sweep": (
        lambda: Engine.sweep(model="ResNet50", hardware="H100", batch_sizes=["8"]),
        "The 'batch_sizes' parameter of Engine.sweep must be positive whole numbers (ints or "
        "floats, not strings or booleans) up to 2**53. Got ['8'] instead."),
    "a non-number where a positive number belongs": (
        lambda: check.positive_float("duration", "a", "Owner"),
        "The 'duration' parameter of Owner must be a positive number. Got 'a' instead."),
    "a precision the device lacks": (
        lambda: Engine.solve(model="ResNet50", hardware="T4", batch_size=1, precision="fp8"),
        "precision 'fp8' is not supported by NVIDIA T4; choose one of: fp32, fp16, int8, int4"),
    "a size where a CPU time belongs": (
        lambda: TransformationModel().solve(100, cost_s_per_sample="5 GB"),
        "The 'cost_s_per_sample' parameter of TransformationModel must be seconds (a number or "
        "a time such as '2 ms'). Got '5 GB' instead."),
    "a size where a decode time belongs": (
        lambda: DataModel().solve(100, "10 kB", "1 GB/s", decode_cost_s_per_sample="5 GB"),
        "The 'decode_cost_s_per_sample' parameter of DataModel must be seconds (a number or a "
        "time such as '2 ms'). Got '5 GB' instead."),
    "a private step faster than a plain one": (
        lambda: mlsysim.ResponsibleEngineeringModel().solve(
            run=DistributedModel().solve("Llama3_8B", "DGX_H100", batch_size=64, seq_len=2048,
                                         zero_stage=1), dp_slowdown=0.9),
        "The 'dp_slowdown' parameter of ResponsibleEngineeringModel must be at least 1 (a "
        "private step is never faster). Got 0.9 instead."),
    "a size where a bandwidth belongs": (
        lambda: CheckpointModel().solve("Llama3_8B", "H100", filesystem_limit_gbs="5 GB"),
        "The 'filesystem_limit_gbs' parameter of CheckpointModel must be a bandwidth such as "
        "'50 GB/s'. Got '5 GB' instead."),
    "an engine sensitivity config of the wrong type": (
        lambda: SensitivitySolver().solve("Llama3_8B", "H100", config=5),
        "The 'config' parameter of SensitivitySolver must be a dict of Engine.solve options "
        "(batch_size, precision, seq_len, phase). Got int instead."),
    "a collective span of zero": (
        lambda: collective_time("H100", "allreduce", 1e6, 8, span=0),
        "The 'span' parameter of collective_time must be a positive whole number. Got 0 "
        "instead."),
    "TP not dividing the heads": (
        lambda: DistributedModel().solve("Llama3_8B", "DGX_H100", batch_size=8, seq_len=1024,
                                         tp_size=3),
        "The 'tp_size' parameter of DistributedModel must divide the number of attention heads "
        "(=32). Got 3 instead."),
    "a group larger than a bare chip's domain": (
        lambda: DistributedModel().solve("Llama3_8B", "H100", batch_size=8, seq_len=1024,
                                         tp_size=8, dp_size=2),
        "The 'dp_size' parameter of DistributedModel x tp_size x pp_size x cp_size (=16) "
        "exceeds the 8-device domain of NVIDIA H100 SXM5 80GB; use a node or fleet "
        "(mlsysim.Systems)."),
    "micro-batches not dividing the replica's batch": (
        lambda: DistributedModel().solve("Llama3_8B", "DGX_H100", batch_size=16, seq_len=1024,
                                         microbatch_count=3),
        "The 'microbatch_count' parameter of DistributedModel must divide the 2 sequences per "
        "replica (batch_size / dp_size). Got 3 instead."),
    "a negative coefficient of variation": (
        lambda: allen_cunneen_factor(-1),
        "The 'service_time_cv' parameter of allen_cunneen_factor must be a finite non-negative "
        "number. Got -1 instead."),
    "a sensitivity config of the wrong type": (
        lambda: SensitivitySolver().solve("Llama3_8B", "H100", solver="serving", config=5),
        "The 'config' parameter of SensitivitySolver must be a ServingConfig or a dict of its "
        "fields (seq_len required) for solver 'serving'. Got 5 instead."),
    "a draft with another vocabulary": (
        lambda: ServingModel().solve("Llama3_8B", "H100", seq_len=128, draft_model="GPT2",
                                     draft_acceptance_rate=0.7),
        "The 'draft_model' parameter of ServingModel must share the target's vocabulary "
        "(128256 tokens); GPT-2 (124M) has 50257."),
    "a grid without a datacenter": (
        lambda: SustainabilityModel().solve("DGX_H100", duration_days=1, grid="Quebec",
                                            mfu=0.4),
        "The 'datacenter' parameter of SustainabilityModel is needed for its PUE: a zoo "
        "datacenter (e.g. 'Hyperscale', 'Enterprise') or Datacenter(name=..., grid=..., "
        "pue=...)."),
    "month 13": (
        lambda: SustainabilityModel().solve("DGX_H100", duration_days=1, grid="Quebec",
                                            datacenter="Hyperscale", mfu=0.4, month=13),
        "The 'month' parameter of SustainabilityModel must be 1-12. Got 13 instead."),
    "a misspelt cluster": (
        lambda: mlsysim.ReliabilityModel().solve("Meta_Llama3_405B_16X", job_duration_hours=1,
                                                 checkpoint_time_s=60),
        "Unknown cluster 'Meta_Llama3_405B_16X'. Did you mean: Meta_Llama3_405B_16K?"),
    "a number where a model belongs": (
        lambda: Engine.solve(model=42, hardware="H100"),
        "The 'model' parameter must be a model spec, imported workload or zoo name. Got 42 "
        "instead."),
    "a phase that is not a string": (
        lambda: Engine.solve(model="Llama3_8B", hardware="H100", phase=3),
        "The 'phase' parameter of Engine.solve must be a string. Got 3 instead."),
    "a TP group past a bare chip's scale-up domain": (
        lambda: Engine.solve(model="Llama3_8B", hardware="H100", batch_size=1, tp_size=16),
        "The 'tp_size' parameter of Engine.solve times pp_size (=16) exceeds the scale-up "
        "domain of NVIDIA H100 SXM5 80GB (8 devices) and it has no scale-out fabric; use at "
        "most that many, or a node or fleet (mlsysim.Systems)."),
    "a chip with neither a host link nor a NIC to write checkpoints": (
        lambda: CheckpointModel().solve("Llama3_8B", "TPUv5e"),
        "The 'writer_bandwidth' parameter of CheckpointModel is needed: Google Cloud TPU v5e "
        "has no published host link and no NIC is known; give the bandwidth one writer "
        "reaches storage at (e.g. '25 GB/s')."),
    "the ITL of a speculative run": (
        lambda: compare(_speculative_serving(), _speculative_serving()),
        "The 'a' parameter of DifferentialExplainer uses speculative decoding, whose ITL mixes "
        "draft and verification passes; compare metric='ttft' or runs without a draft model."),
    "a number where a result belongs in compare": (
        lambda: compare(3, _speculative_serving()),
        "The 'a' parameter of DifferentialExplainer must be a PerformanceProfile or a "
        "ServingResult (or a dict of the solver's options). Got int instead."),
    "a size where a sample rate belongs": (
        lambda: DataModel().solve(mlsysim.Q_(100, "GB"), "1 MB", "1 GB/s"),
        "The 'samples_per_s_required' parameter of DataModel must be in sample/s. Got "
        "<Quantity(100, 'gigabyte')> instead."),
    "an efficiency step without its config": (
        lambda: mlsysim.EfficiencyModel().solve(model="Llama3_8B", fleet="DGX_H100"),
        "The 'config' parameter of EfficiencyModel is needed with model and fleet (or give "
        "run, a DistributedResult)."),
    "an output length given to inference scaling's serving options": (
        lambda: mlsysim.InferenceScalingModel().solve("Llama3_8B", "H100", prompt_len=128,
                                                      reasoning_steps=4,
                                                      serving={"output_len": 100}),
        "The 'output_len' parameter of InferenceScalingModel is set by InferenceScalingModel "
        "itself (reasoning_steps * tokens_per_step + answer_len); leave it out of serving."),
    "a service time under a picosecond in ms": (
        lambda: TailLatencyModel().solve(50, 1e-10),
        "The 'service_latency_ms' parameter of TailLatencyModel.solve must be at least 1e-09 "
        "(1 ps). Got 1e-10 instead."),
    "zero servers for erlang_c": (
        lambda: erlang_c(0, 1.0),
        "The 'servers' parameter of erlang_c must be a positive whole number. Got 0 instead."),
    "a word where a DP slowdown belongs": (
        lambda: mlsysim.ResponsibleEngineeringModel().solve(run=_dp_only_run(),
                                                            dp_slowdown="fast"),
        "The 'dp_slowdown' parameter of ResponsibleEngineeringModel must be a positive number. "
        "Got 'fast' instead."),
    "a fabric name where scale_up or host belongs": (
        lambda: collective_time("H100", "allreduce", 1e6, 8, fabric="nvlink"),
        "The 'fabric' parameter of collective_time must be one of scale_up, host. Got 'nvlink' "
        "instead."),
    "a one-domain algorithm for a group spanning two nodes": (
        lambda: collective_time("DGX_H100_SuperPOD_256", "allreduce", 1e6, 16,
                                algorithm="one_shot"),
        "The 'algorithm' parameter of collective_time 'one_shot' runs within one scale-up "
        "domain; a group of 16 spanning 2 domains uses 'hierarchical', 'ring' or 'auto'."),
    "no measurements file for calibrate_device": (
        lambda: calibrate_device(None, mlsysim.Hardware.H100),
        "The 'measurements' parameter of calibrate_device must be a file path (str or "
        "os.PathLike), got NoneType None"),
    "a number where device_power's hardware belongs": (
        lambda: device_power(42, 0.5, 0.5),
        "The 'hardware' parameter of device_power must be a hardware spec or zoo name. Got 42 "
        "instead."),
    "a negative power for energy": (
        lambda: energy(-1, 2),
        "The 'power_w' parameter of energy must be a finite non-negative number (or array). "
        "Got -1 instead."),
    "tensor parallelism on a state-space model": (
        lambda: Engine.solve(model="Mamba_2_8B", hardware="DGX_H100", batch_size=1, tp_size=2),
        "The 'tp_size' parameter of Engine.solve must be 1 for state-space models."),
    "a dict where a continuous-batching config belongs": (
        lambda: mlsysim.ContinuousBatchingModel().solve("Llama3_8B", "H100",
                                                        config={"prompt_len": 512}),
        "The 'config' parameter of ContinuousBatchingModel must be a ContinuousBatchingConfig. "
        "Got dict instead."),
    "zero years of amortization": (
        lambda: mlsysim.EconomicsModel().solve(**mlsysim.EconomicsModel.example(),
                                               amortization_years=0),
        "The 'amortization_years' parameter of EconomicsModel must be a finite positive "
        "number. Got 0 instead."),
    "an energy where a yearly opex belongs": (
        lambda: mlsysim.EconomicsModel().solve(**mlsysim.EconomicsModel.example(),
                                               other_opex_per_year="5 kWh"),
        "The 'other_opex_per_year' parameter of EconomicsModel must be a price in USD (e.g. "
        "'30000 USD'). Got '5 kWh' instead."),
}


@pytest.mark.parametrize("case", sorted(CASES))
def test_the_whole_message(case):
    call, message = CASES[case]
    with pytest.raises((mlsysim.errors.ValidationError, UnsupportedPrecisionError,
                        UnknownNameError)) as exc:
        call()
    assert str(exc.value) == message


def test_a_latin_1_file_says_where_and_to_save_as_utf_8(tmp_path):
    path = tmp_path / "config.json"
    path.write_bytes("caf\xe9\n".encode("latin-1"))
    with pytest.raises(DataFileError) as exc:
        read_text(path)
    assert str(exc.value) == (f"{path}, line 1: not UTF-8 text (byte 0xe9 at offset 3: a "
                              "binary file or another encoding; save it as UTF-8)")


def test_synthesis_rejects_a_non_model_naming_the_field():
    with pytest.raises(mlsysim.errors.ValidationError) as exc:
        mlsysim.SynthesisSolver().solve(5, "10 ms")
    assert exc.value.field == "model" and "SynthesisSolver" in str(exc.value)


@pytest.mark.parametrize("call, text", [
    (lambda: Engine.solve(model="ResNet50", hardware=3, batch_size=1),
     "The 'hardware' parameter of Engine.solve must be a hardware spec, node, fleet or zoo "
     "name. Got 3 instead."),
    (lambda: ServingModel().solve("Llama3_8B", 3.0, seq_len=128),
     "The 'hardware' parameter of ServingModel must be a hardware spec, node, fleet or zoo "
     "name. Got 3.0 instead."),
    (lambda: DistributedModel().solve("Llama3_8B", [1], batch_size=8),
     "The 'fleet' parameter of DistributedModel must be a hardware spec, node, fleet or zoo "
     "name. Got [1] instead."),
    (lambda: SustainabilityModel().solve(7, duration_days=1, mfu=0.4, datacenter="Hyperscale"),
     "The 'fleet' parameter of SustainabilityModel must be a hardware spec, node, fleet or zoo "
     "name. Got 7 instead."),
    (lambda: mlsysim.EconomicsModel().solve(7, duration_days=1, mfu=0.4,
                                            datacenter="Hyperscale"),
     "The 'fleet' parameter of EconomicsModel must be a hardware spec, node, fleet or zoo "
     "name. Got 7 instead."),
])
def test_a_system_that_is_not_one_is_refused_by_the_solver_asked(call, text):
    """The solver the user called and its own parameter name, not the collective model that
    resolves systems for all of them."""
    with pytest.raises(mlsysim.errors.ValidationError) as err:
        call()
    assert str(err.value) == text
