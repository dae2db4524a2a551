"""Shown values and refusal messages of the checkpoint, continuous-batching, data-pipeline,
inference-scaling and network-roofline solvers, each derived by hand from the inputs."""

from __future__ import annotations

import pytest

from mlsysim import Systems
from mlsysim.errors import UnknownNameError, ValidationError
from mlsysim.solvers.checkpoint import CheckpointModel
from mlsysim.solvers.continuous_batching import ContinuousBatchingModel
from mlsysim.solvers.data_pipeline import DataModel, TransformationModel
from mlsysim.solvers.inference_scaling import InferenceScalingModel
from mlsysim.solvers.network_roofline import NetworkRooflineModel
from mlsysim.zoo import ServingEngines

LLAMA3_8B_PARAMS = 8_030_261_248


# --- network roofline -------------------------------------------------------------------
def test_network_roofline_headline_gives_dp_gigabytes_per_group():
    """Llama-3-8B pure DP over 256 H100 (DGX SuperPOD, InfiniBand with SHARP, 8 GPUs per
    scale-up domain), ZeRO-1: each GPU sends 1/L = 1/8 of its bf16 gradients through the NIC,
    8,030,261,248 x 2 B / 8 = 2,007,565,312 B = 2.007565312 GB; no TP or PP traffic."""
    r = NetworkRooflineModel().solve("Llama3_8B", Systems.Clusters.DGX_H100_SuperPOD_256,
                                     batch_size=512, seq_len=2048, zero_stage=1)
    by_group = r.headline()["scale_out_bytes_by_group"]
    assert by_group["dp"].to("GB").magnitude == pytest.approx(
        LLAMA3_8B_PARAMS * 2 / 8 / 1e9, rel=1e-12)
    assert by_group["dp"].magnitude == pytest.approx(2.007565312, rel=1e-12)
    assert by_group["tp"].magnitude == 0.0
    assert by_group["pp"].magnitude == 0.0


# --- continuous batching ----------------------------------------------------------------
def test_continuous_batching_one_sequence_cap_is_feasible():
    """vLLM limited to max_num_seqs = 1: Llama-3-8B (16 GB of bf16 weights) on an 80 GB H100
    has KV room for far more than one 512 + 64 token sequence, so the cap is 1 from
    max_num_seqs, saturated at N = 1. A cap of exactly one sequence still runs: feasible,
    no reason, bound by max_num_seqs."""
    engine = ServingEngines.get("vllm").model_copy(update={"max_num_seqs": 1})
    r = ContinuousBatchingModel().solve("Llama3_8B", "H100", prompt_len=512, output_len=64,
                                        engine=engine)
    assert r.max_concurrency == 1
    assert r.concurrency == 1.0
    assert r.feasible is True
    assert r.reason is None
    assert r.binding == "max_num_seqs"


def test_continuous_batching_headline_defines_per_gpu_throughput():
    """The headline's metric definitions spell the per-GPU rate as the tp group's rate over
    tp_size; with tp_size = 2 the two reported rates follow it (a factor of 2)."""
    r = ContinuousBatchingModel().solve("Llama3_8B", "H100", prompt_len=512, output_len=64,
                                        tp_size=2)
    h = r.headline()
    assert h["metric_definitions"]["tokens_per_s_per_gpu"] == "output_tokens_per_s / tp_size"
    assert float(h["tokens_per_s_per_gpu"]) == pytest.approx(
        float(h["output_tokens_per_s"]) / 2, rel=1e-12)


# --- inference scaling ------------------------------------------------------------------
def test_inference_scaling_refuses_batch_size_in_serving_naming_num_samples():
    """The batch is num_samples; a batch_size in serving is refused, naming the option that
    sets it instead."""
    with pytest.raises(ValidationError) as exc:
        InferenceScalingModel().solve("Llama3_8B", "H100", prompt_len=512, reasoning_steps=1,
                                      serving={"batch_size": 4})
    assert str(exc.value) == ("The 'batch_size' parameter of InferenceScalingModel is set by "
                              "InferenceScalingModel itself (num_samples); leave it out of "
                              "serving.")
    assert exc.value.field == "batch_size"


# --- data pipeline ------------------------------------------------------------------------
def test_data_model_refuses_unparsable_rate_string_with_owner():
    """'fast' is no quantity: the refusal names the field, the solver and the form wanted."""
    with pytest.raises(ValidationError) as exc:
        DataModel().solve("fast", "1 MB", "1 GB/s")
    assert str(exc.value) == ("The 'samples_per_s_required' parameter of DataModel must be a "
                              "rate such as '2000 sample/s'. Got 'fast' instead.")
    assert exc.value.owner == "DataModel"


def test_transformation_model_unknown_step_names_preprocessing_step_kind():
    """A misspelt preprocessing.yaml key is an unknown 'preprocessing step', with the
    closest keys suggested (pillow first: one letter away)."""
    with pytest.raises(UnknownNameError) as exc:
        TransformationModel().solve(1000, "jpeg_decode_pilow")
    assert exc.value.kind == "preprocessing step"
    assert str(exc.value).startswith(
        "Unknown preprocessing step 'jpeg_decode_pilow'. Did you mean: jpeg_decode_pillow")


def test_transformation_model_refuses_no_cpu_work():
    """Neither transforms nor a positive cost: nothing to size, and the message says so."""
    with pytest.raises(ValidationError) as exc:
        TransformationModel().solve(1000)
    assert str(exc.value) == ("The 'transforms' parameter of TransformationModel or a positive "
                              "cost_s_per_sample must give the CPU work per sample. Got "
                              "neither.")
    assert exc.value.owner == "TransformationModel"


# --- checkpoint -------------------------------------------------------------------------------
def test_checkpoint_async_snapshot_uses_given_bandwidth_and_shows_it():
    """Llama-3-8B, bf16 + Adam: 8,030,261,248 x 14 B = 112,423,657,472 B (112.4 GB). Async
    with snapshot_bandwidth 12.345 GB/s through one writer: t_snapshot = 112.423657472 /
    12.345 = 9.10682 s. The float nearest 12.345 lies just above the half (12.34500000000000064),
    so the explain line shows 12.35 GB/s at 4 significant digits."""
    r = CheckpointModel().solve("Llama3_8B", "H100", async_checkpoint=True,
                                snapshot_bandwidth="12.345 GB/s")
    assert r.snapshot_bandwidth_bps == pytest.approx(12.345e9, rel=1e-12)
    assert r.snapshot_s == pytest.approx(LLAMA3_8B_PARAMS * 14 / 12.345e9, rel=1e-9)
    assert r.headline()["snapshot_time"].to("s").magnitude == pytest.approx(9.106817, rel=1e-6)
    assert ("  async: t_snapshot = size / (n_writers x host link) = 112.4 GB / (1 x 12.35 GB/s) "
            "= 9.107 s blocks; the write runs in the background") in r.explain().splitlines()
