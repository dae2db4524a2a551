"""Pinned values and messages of the compression, distributed, queueing and serving solvers
that the rest of the suite left loose: refusal texts (with their owners), the expert-parallel
weight share, explain() lines and the encoder flag of the public ``pass_time``."""

from __future__ import annotations

import math
import re

import numpy as np
import pytest

import mlsysim
from mlsysim.core.collectives import resolve_system, system_spec
from mlsysim.errors import ValidationError
from mlsysim.solvers.compression import CompressionModel
from mlsysim.solvers.distributed import DistributedModel, evaluate_grid, parts_for
from mlsysim.solvers.queueing import TailLatencyModel
from mlsysim.solvers.serving import ServingModel, pass_time, serving_efficiency
from mlsysim.workloads.transformer import Segment


# --- compression ------------------------------------------------------------------------
def test_compression_refuses_a_field_its_method_sets_naming_compression_model():
    """int4_weight_only sets weight_precision itself; giving it in serving is refused, the
    message and the owner naming CompressionModel (spelled as the class)."""
    with pytest.raises(ValidationError) as exc:
        CompressionModel().solve("Llama3_8B", "H100", "int4_weight_only",
                                 serving={"weight_precision": "int8"})
    assert str(exc.value) == (
        "The 'weight_precision' parameter of CompressionModel is set by CompressionModel "
        "itself (by the method 'int4_weight_only'); leave it out of serving.")
    assert exc.value.owner == "CompressionModel"
    assert exc.value.field == "weight_precision"


# --- distributed ------------------------------------------------------------------------
def test_distributed_adafactor_on_a_cnn_is_refused_by_distributed_model():
    """Adafactor sizes its factored state by the hidden size; ResNet-50 has none. The refusal
    is raised while pricing the optimizer step and must name DistributedModel as owner."""
    with pytest.raises(ValidationError) as exc:
        DistributedModel().solve("ResNet50", "DGX_H100", batch_size=64, optimizer="adafactor")
    assert str(exc.value) == (
        "The 'optimizer' parameter of DistributedModel 'adafactor' needs a model with a "
        "hidden size (a transformer or SSM) to size its factored state; choose one of: "
        "adam, sgd, adam8bit for 'ResNet-50'.")
    assert exc.value.owner == "DistributedModel"


def test_distributed_expert_parallel_weights_split_only_the_experts():
    """Mixtral-8x7B, ep=2 on a DGX H100 (tp=pp=1, ZeRO-0, bf16: 2 B per weight).

    The expert share s is taken over the weight matrices a pass reads (embedding lookup
    and norms are not matmul weights):
      experts E = 32 layers x 8 experts x 3 x 4096 x 14336 = 45,097,156,608
      dense  D = 32 x (2 x 4096^2 + 2 x 4096 x 1024)  (q, o, k, v)    = 1,342,177,280
               + router 32 x 4096 x 8 = 1,048,576 + lm head 32000 x 4096 = 131,072,000
               = 1,474,297,856
      s = E / (D + E) = 0.968343...
    local params = N x (1 - s + s / ep), N = 46,702,792,704; weights = 2 B x that
    = 48.18 GB at ep=2 (ep=1: the whole 93.41 GB)."""
    n = 46_702_792_704
    experts = 32 * 8 * 3 * 4096 * 14336
    dense = 32 * (2 * 4096 * 4096 + 2 * 4096 * 1024) + 32 * 4096 * 8 + 32000 * 4096
    s = experts / (dense + experts)
    r = DistributedModel().solve("Mixtral_8x7B", "DGX_H100", batch_size=8, seq_len=2048,
                                 ep_size=2)
    assert r.precision == "bf16"
    assert r.memory.weights == pytest.approx(2 * n * (1 - s + s / 2), rel=1e-9)
    one = DistributedModel().solve("Mixtral_8x7B", "DGX_H100", batch_size=8, seq_len=2048)
    assert one.memory.weights == pytest.approx(2 * n, rel=1e-12)


def _step_line(r) -> str:
    return next(line for line in r.explain().splitlines() if line.startswith("  step = "))


def test_distributed_explain_step_line_adds_up_with_exposed_dp_in_ms():
    """Llama-3-8B, 8-way DP on a DGX H100, batch 8 x 2048, overlap_comm=False: the whole DP
    all-reduce is exposed, so the line shows the same ms twice ("exposed DP X ms (of X
    ms)") and its terms m x t_mb + bubble + optimizer + exposed DP add up to the step
    (each shown to 3-4 significant figures: within 0.5 % of the step)."""
    r = DistributedModel().solve("Llama3_8B", "DGX_H100", batch_size=8, seq_len=2048,
                                 overlap_comm=False)
    line = _step_line(r)
    num = r"([0-9.e+-]+)"
    got = re.search(rf"m x t_mb {num} ms \+ bubble \(p-1\)/v x t_mb {num} ms \+ optimizer "
                    rf"{num} ms \+ exposed DP {num} ms \(of {num} ms\) = {num} ms;", line)
    assert got, line
    compute, bubble, opt, exposed, dp, step = map(float, got.groups())
    assert exposed == dp
    assert dp == pytest.approx(r.dp_comm_s * 1e3, rel=5e-3)
    assert compute + bubble + opt + exposed == pytest.approx(step, rel=5e-3)
    assert step == pytest.approx(r.step_s * 1e3, rel=5e-4)


def test_evaluate_grid_single_stage_has_no_pipeline_hand_off():
    """evaluate_grid (public: ParallelismOptimizer's core) over one pp=1 config, tp=2 without
    sequence parallelism on a DGX H100: one stage sends nothing, so its p2p seconds are
    exactly 0 (no tp all-gather of a hand-off either); pp=2 does pay a hand-off."""
    system = system_spec("DGX_H100")
    hardware, path = resolve_system(system)
    model = mlsysim.Models.Llama3_8B
    parts = parts_for(model, hardware, path, "bf16", 2048, 2, 1, 1, "none", False, 1.0, 8)

    def p2p(pp: int) -> float:
        one = np.array([1])
        grid = dict(tp=np.array([2]), cp=one, pp=np.array([pp]), dp=np.array([4 // pp]),
                    v=one, mbs=one, m=np.array([2]), zero=np.array([0]))
        g = evaluate_grid(parts, system, model, grid, precision="bf16", seq=2048, sp=False,
                          recompute="none", schedule="1f1b", overlap=True, optimizer="adam",
                          capacity_factor=1.0, usable=80e9)
        return float(g["p2p"][0])

    assert p2p(1) == 0.0
    # pp=2: 2048 x 4096 x 2 B / tp 2 = 8.39 MB per hand-off, at best over 900 GB/s NVLink
    assert p2p(2) > 2048 * 4096 * 2 / 2 / 900e9


# --- queueing ---------------------------------------------------------------------------
def test_tail_latency_explain_mm1_in_milliseconds():
    """M/M/1 at lambda = 50/s, S = 10 ms: mu = 100/s, a = rho = 0.5, P(wait) = rho = 0.5,
    c mu - lambda = 50/s, E[Wq] = 0.5/50 s = 10 ms, E[T] = 20 ms,
    p99 wait = ln(0.5/0.01)/50 s = 78.24 ms; T ~ Exp(50/s): p50 = ln 2/50 = 13.86 ms,
    p90 = ln 10/50 = 46.05 ms, p99 = ln 100/50 = 92.1 ms."""
    assert math.log(50) / 50 * 1e3 == pytest.approx(78.24, abs=5e-3)
    r = TailLatencyModel().solve(50, 10)
    assert r.explain().splitlines() == [
        "1 replica(s) at 50 requests/s, service 10 ms; M/M/c (Poisson arrivals, exponential "
        "service): exact",
        "  a = lambda*S = 50/s * 10 ms = 0.5 Erlang",
        "  rho = lambda*S/c = 0.5/1 = 0.5",
        "  P(wait) = ErlangC(c, a) = ErlangC(1, 0.5) = 0.5",
        "  c*mu - lambda = 1/10 ms - 50/s = 50/s",
        "  E[Wq] = P(wait)/(c*mu - lambda) = 0.5/50 = 10 ms",
        "  P(Wq > t) = P(wait) * exp(-(c*mu - lambda) t) -> p99 wait = "
        "max(0, ln(P(wait)/0.01)/(c*mu - lambda)) = 78.24 ms",
        "  E[T] = E[Wq] + S = 10 + 10 = 20 ms",
        "  T = Wq + S (S ~ Exp(mu)); quantiles from its CDF: p50 13.86 ms, p90 46.05 ms, "
        "p99 92.1 ms",
    ]


# --- serving ----------------------------------------------------------------------------
@pytest.mark.parametrize("call", ["solve", "prepare"])
def test_serving_refuses_a_config_that_is_not_a_serving_config(call):
    """A dict passed as config is refused by name and type (solve reads the batch size off
    the config only where it has one, so the refusal is the ValidationError, not an
    AttributeError)."""
    with pytest.raises(ValidationError) as exc:
        getattr(ServingModel(), call)("Llama3_8B", "H100", config={"seq_len": 128})
    assert str(exc.value) == ("The 'config' parameter of ServingModel must be a "
                              "ServingConfig. Got dict instead.")
    assert exc.value.field == "config"


def test_pass_time_with_encoder_is_the_encoder_decoder_prefill():
    """pass_time(encoder=True) on Whisper-large-v3 (encoder-decoder) runs the 1500-token
    encoder too: it is ServingModel's prefill of the same 64-token prompt (batch 1, tp 1,
    fp16, prefill efficiencies without CUDA graphs), and the decoder-only pass
    (encoder=False) is a different, cheaper pass."""
    r = ServingModel().solve("Whisper_Large_v3", "H100", seq_len=64, output_len=16)
    assert r.precision == "fp16"
    eff = serving_efficiency(r.hardware, "fp16", False)
    kw = dict(precision="fp16", e=2, kv_e=2, we=2, tp=1, eff=eff)
    with_encoder = pass_time(r.model, r.hardware, (Segment(64, 0),), 1, encoder=True, **kw)
    decoder_only = pass_time(r.model, r.hardware, (Segment(64, 0),), 1, **kw)
    assert with_encoder == pytest.approx(r.prefill_s, rel=1e-12)
    assert decoder_only < 0.5 * with_encoder
