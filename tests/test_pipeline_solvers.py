"""NetworkRooflineModel, DataModel, TransformationModel and OrchestrationModel: values derived
by hand (the arithmetic is in the comments), invariants as hypothesis properties, and bad
input. The contract battery (tests/test_contract.py) covers display, JSON and determinism."""

import json
import math

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import mlsysim
from mlsysim import DistributedConfig, Fleet, Models, Systems
from mlsysim.core.collectives import collective_terms, comm_path
from mlsysim.errors import MLSysimError, UnknownNameError, ValidationError
from mlsysim.solvers.data_pipeline import (
    DataModel,
    TransformationModel,
    preprocessing_costs,
    stall_fraction,
)
from mlsysim.solvers.network_roofline import NetworkRooflineModel, scale_out_factor
from mlsysim.solvers.orchestration import OrchestrationModel
from mlsysim.solvers.queueing import TailLatencyModel

SETTINGS = settings(max_examples=100, deadline=None)
REL = 1e-12

ROOF, DATA, TRANSFORM, ORCH = (NetworkRooflineModel(), DataModel(), TransformationModel(),
                               OrchestrationModel())
SUPERPOD = Systems.Clusters.DGX_H100_SuperPOD_256        # 32 x 8 H100, IB NDR (SHARP)
SPECTRUM = Systems.Clusters.HGX_H100_SpectrumX_1024      # 128 x 8 H100, RoCE 400G
DGX = Systems.Nodes.DGX_H100
H100_BF16 = 989.5e12                                     # dense bf16 flop/s (zoo)
LLAMA3_8B_PARAMS = 8_030_261_248                         # derived from the zoo structure
# Model flops per token at s = 2048 (DistributedModel's MFU count, 6 N + 12 L h s):
# 6 x 8,030,261,248 + 12 x 32 x 4096 x 2048 = 48,181,567,488 + 3,221,225,472
LLAMA3_8B_FLOP_PER_TOKEN_2K = 51_402_792_960


def close(x, y, rel=REL):
    return math.isclose(x, y, rel_tol=rel)


def test_public_names():
    for name in ("NetworkRooflineModel", "DataModel", "TransformationModel",
                 "OrchestrationModel"):
        cls = getattr(mlsysim, name)
        assert cls in mlsysim.all_solvers() and isinstance(cls(), mlsysim.ForwardModel)


# --- NetworkRooflineModel -----------------------------------------------------------------
def test_llama3_8b_data_parallel_on_a_superpod_is_compute_bound():
    """256 H100 (32 DGX, 8 NICs x 50 GB/s per node: B = 50 GB/s per GPU), pure DP, ZeRO-1.
    DP group of 256 spans 32 domains, L = 8 ranks per domain; SHARP reduces in the switch, so
    each GPU sends S / L: Q = 2 B x 8,030,261,248 / 8 = 2,007,565,312 B.
    F = 51,402,792,960 flop/token x 512 x 2048 tokens / 256 = 51,402,792,960 x 4096
      = 210,545,839,964,160 flop.
    I = F / Q = 51,402,792,960 x 16,384 / 8,030,261,248 = 104,876.2 flop/byte;
    ridge = 989.5e12 / 50e9 = 19,790 -> compute-bound; min step = F / P = 0.21278 s."""
    r = ROOF.solve(Models.Llama3_8B, SUPERPOD, batch_size=512, seq_len=2048, zero_stage=1)
    q = 2 * LLAMA3_8B_PARAMS / 8
    f = LLAMA3_8B_FLOP_PER_TOKEN_2K * 4096
    assert close(r.dp_bytes, q) and r.tp_bytes == 0 and r.pp_bytes == 0
    assert close(r.flops, f)
    assert close(r.intensity, f / q) and round(r.intensity) == 104876
    assert close(r.ridge, H100_BF16 / 50e9) and close(r.ridge, 19790)
    assert r.bound == "compute" and r.binding == "compute" and r.feasible
    assert close(r.attainable, H100_BF16)
    assert close(r.min_step_s, f / H100_BF16)
    assert r.communication_intensity.units == mlsysim.Q_(1, "flop/byte").units
    assert r.attainable_flops.to("TFLOP/s").magnitude == pytest.approx(989.5)


def test_slow_ethernet_makes_the_same_step_network_bound():
    """2 DGX H100 on 100 GbE: B = 12.5 GB/s x 8 NICs / 8 GPUs = 12.5 GB/s per GPU; ridge =
    989.5e12 / 12.5e9 = 79,160. DP over 16 = 2 domains of L = 8, a ring across (no SHARP):
    2 (N - 1) / N / L = 2 x 1/2 / 8 = 1/8, Q = 2 B x 8,030,261,248 / 8 = 2,007,565,312 B.
    Batch 16 x 2048: F = 51,402,792,960 x 16 x 2048 / 16 = 105,272,919,982,080 flop;
    I = F / Q = 51,402,792,960 x 8192 / 8,030,261,248 = 52,438.1 < 79,160 -> network-bound;
    attainable = I x B = 6.555e14 flop/s; min step = Q / B = 0.160605 s."""
    fleet = Fleet(name="2 x DGX H100 on 100GbE", node=DGX, count=2,
                  fabric=Systems.Fabrics.Ethernet_100G)
    r = ROOF.solve(Models.Llama3_8B, fleet, batch_size=16, seq_len=2048, zero_stage=1)
    q = 2 * LLAMA3_8B_PARAMS / 8
    f = LLAMA3_8B_FLOP_PER_TOKEN_2K * 2048
    assert close(r.scale_out_bps, 12.5e9) and close(r.ridge, 79160)
    assert close(r.dp_bytes, q) and close(r.flops, f)
    assert r.bound == "network" and r.binding == "scale-out network"
    assert close(r.attainable, f / q * 12.5e9)
    assert close(r.min_step_s, q / 12.5e9) and round(r.min_step_s, 6) == 0.160605
    assert "network-bound" in r.explain()


def test_network_roofline_headline_shows_tflop_and_ms():
    """The 100 GbE case above, as the headline prints it: F = 105,272,919,982,080 flop per GPU
    = 105.2729 TFLOP; network time Q / B = 2,007,565,312 B / 12.5e9 B/s = 0.160605 s =
    160.605 ms."""
    fleet = Fleet(name="2 x DGX H100 on 100GbE", node=DGX, count=2,
                  fabric=Systems.Fabrics.Ethernet_100G)
    h = ROOF.solve(Models.Llama3_8B, fleet, batch_size=16, seq_len=2048, zero_stage=1).headline()
    assert f"{h['flops_per_accelerator'].units:~}" == "TFLOP"
    assert h["flops_per_accelerator"].magnitude == pytest.approx(
        LLAMA3_8B_FLOP_PER_TOKEN_2K * 2048 / 1e12, rel=1e-12)
    assert round(h["flops_per_accelerator"].magnitude, 4) == 105.2729
    assert f"{h['network_time'].units:~}" == "ms"
    assert h["network_time"].magnitude == pytest.approx(2 * LLAMA3_8B_PARAMS / 8 / 12.5e9 * 1e3,
                                                        rel=1e-12)
    assert round(h["network_time"].magnitude, 3) == 160.605


def test_tensor_and_pipeline_traffic_when_groups_leave_the_node():
    """Llama-3-70B on 1,024 H100 (RoCE, no SHARP), tp = 16, pp = 4, dp = 1024 / 64 = 16,
    batch 256 x 4096: m = 256 / 16 = 16 micro-batches of 1.
    One activation buffer = 1 x 4096 x 8192 x 2 B = 67,108,864 B (a hand-off sends its TP
    shard, / 16 = 4,194,304 B).
    TP: 16 ranks over 2 domains (L = 8, N = 2): 2 x 1/2 / 8 = 1/8 per byte; 80 / 4 = 20
      layers x 4 all-reduces x 16 micro-batches: 16 x 20 x 4 x 67,108,864 / 8 = 10,737,418,240.
    PP: stages are tp x dp = 256 devices apart, so every hand-off leaves the node; a middle
      stage sends both ways: 16 x 2 x 4,194,304 = 134,217,728.
    DP: 16 ranks 256 devices apart, one per domain (L = 1, N = 16): 2 x 15/16 = 1.875 per
      byte of the stage's gradients (e x stage parameters = DistributedModel's weight bytes)."""
    r = ROOF.solve(Models.Llama3_70B, SPECTRUM, batch_size=256, seq_len=4096, tp_size=16,
                   pp_size=4)
    act = 1 * 4096 * 8192 * 2
    assert r.training.parallelism["dp"] == 16 and r.training.microbatch_count == 16
    assert close(r.tp_bytes, 16 * 20 * 4 * act / 8)
    assert close(r.pp_bytes, 16 * 2 * act / 16)
    assert close(r.dp_bytes, 1.875 * r.training.memory.weights)


def test_one_node_sends_nothing_over_the_scale_out_fabric():
    """8 GPUs in one DGX: every group fits the NVLink domain, Q = 0, I = inf (null in JSON)."""
    r = ROOF.solve(Models.Llama3_8B, DGX, batch_size=64, seq_len=2048, zero_stage=1)
    assert r.scale_out_bytes == 0 and r.intensity == math.inf and r.bound == "compute"
    assert close(r.attainable, H100_BF16) and r.min_step_s == r.compute_s
    assert json.loads(r.to_json())["communication_intensity"]["value"] is None


def test_full_recomputation_repeats_the_forward_tp_all_reduces():
    """6 instead of 4 TP all-reduces per layer and micro-batch: the TP bytes grow by 3/2."""
    kw = dict(batch_size=256, seq_len=4096, tp_size=16, pp_size=4)
    base = ROOF.solve(Models.Llama3_70B, SPECTRUM, **kw)
    full = ROOF.solve(Models.Llama3_70B, SPECTRUM, config=DistributedConfig(
        activation_recomputation="full", **kw))
    assert close(full.tp_bytes, 1.5 * base.tp_bytes)


def test_zero3_gathers_weights_every_micro_batch():
    """ZeRO-3: two all-gathers and one reduce-scatter of the stage's weights per micro-batch,
    two-level across nodes: 2 DGX (N = 2, L = 8 members each), dp = 16, m = 32 / 16 = 2; each
    GPU's port carries (N-1)/N / L = 1/16 of the buffer: Q = 3 x 2 x 1/16 x 2 B x
    8,030,261,248 (a flat ring would push 15/16 of it through every port)."""
    fleet = Fleet(name="2 x DGX H100", node=DGX, count=2)
    r = ROOF.solve(Models.Llama3_8B, fleet, batch_size=32, seq_len=2048, zero_stage=3)
    assert r.training.microbatch_count == 2
    assert close(r.dp_bytes, 3 * 2 * (1 / 2 / 8) * 2 * LLAMA3_8B_PARAMS)


def test_scale_out_factor_matches_the_collective_model():
    """The hierarchical all-reduce's per-byte time is 2 (L-1)/L / (eta_up B_up) within the
    domain plus factor / (eta_out B_out) across: the factor is the bytes per buffer byte each
    GPU pushes through its NIC, for SHARP (IB) and for rings (RoCE)."""
    for fleet in (SUPERPOD, SPECTRUM):
        p = comm_path(fleet)
        for n in (16, 32, 256):
            (_, b), = collective_terms(p, "allreduce", n, algorithm="hierarchical", span=n)
            within = 2 * (8 - 1) / 8 / (p.up_eff.eta_link * p.up_bw)
            across = (b - within) * p.out_eff.eta_link * p.out_bw
            assert close(scale_out_factor(p, "allreduce", n, n), across, rel=1e-9)
    p = comm_path(SPECTRUM)
    assert scale_out_factor(p, "allreduce", 8, 8) == 0.0          # one NVLink domain
    assert scale_out_factor(p, "allreduce", 32, 32) == 2 * 3 / 4 / 8
    assert scale_out_factor(p, "allreduce", 1, 1024) == 0.0       # TP = 1: no TP traffic


def test_one_gpu_nodes_send_their_whole_buffer_over_the_scale_out_fabric():
    """One-GPU nodes on IB NDR (SHARP): the scale-up domain is the GPU alone, so each
    accelerator is its own member (L = 1, N = 16) and a SHARP all-reduce sends S / L = S per
    accelerator, factor 1.0; an all-gather (n - 1) / n = 15/16."""
    from mlsysim.specs.system import Node
    node = Node(name="one-GPU node", accelerator="H100", accelerators_per_node=1,
                nics_per_node=1, nic_fabric="InfiniBand_NDR", source="test")
    p = comm_path(Fleet(name="16 one-GPU nodes", node=node, count=16, fabric="InfiniBand_NDR",
                        source="test"))
    assert (p.domain, p.up_bw, p.out_inr) == (1, None, True)
    assert scale_out_factor(p, "allreduce", 16, 16) == 1.0
    assert scale_out_factor(p, "allgather", 16, 16) == 15 / 16


def test_a_scale_up_domain_without_a_fabric_to_reach_it_is_refused():
    """A one-GPU node declared in a scale-up domain of 8 with no intra-node fabric has no link
    to the other seven: the spec is refused with the fix (it used to load, and a collective
    over 4 of its devices failed deep inside with an AttributeError)."""
    from mlsysim.specs.system import Node
    with pytest.raises(MLSysimError) as err:
        Node(name="one-GPU node", accelerator="H100", accelerators_per_node=1,
             scale_up_domain=8, nics_per_node=1, nic_fabric="InfiniBand_NDR", source="test")
    assert str(err.value) == (
        "invalid Node:\n  (entry): scale_up_domain (=8) reaches accelerators beyond this one "
        "only over an intra_node_fabric (or intra_node_bw); give one, or leave scale_up_domain "
        "out")


def test_rank_order_decides_which_traffic_leaves_the_node():
    """Llama-3-8B on 2 DGX H100 (IB NDR, SHARP), tp = 2, pp = 2, dp = 4, batch 16: m = 16 / 4
    = 4 micro-batches of 1.
    Megatron tp-cp-dp-pp: stages tp x dp = 8 apart, a hand-off pair spans 16 > 8 devices and
    leaves the node: pp = 2, so each stage sends one way, 4 x (2048 x 4096 x 2 B / 2) =
    4 x 8,388,608 = 33,554,432 B; the DP group spans tp x dp = 8: inside the node, 0 B.
    Llama 3 tp-cp-pp-dp: stages tp = 2 apart (pair span 4: NVLink), 0 B; the DP group spans
    all 16 devices, 4 x 8 // 16 = 2 ranks per node, SHARP: 1/2 of the stage's gradients."""
    fleet = Fleet(name="2 x DGX H100", node=DGX, count=2)
    kw = dict(batch_size=16, seq_len=2048, tp_size=2, pp_size=2, zero_stage=1)
    meg = ROOF.solve(Models.Llama3_8B, fleet, **kw)
    llama = ROOF.solve(Models.Llama3_8B, fleet, rank_order="tp-cp-pp-dp", **kw)
    assert meg.training.microbatch_count == 4
    assert close(meg.pp_bytes, 4 * 2048 * 4096 * 2 / 2) and meg.dp_bytes == 0
    assert llama.pp_bytes == 0 and close(llama.dp_bytes, 0.5 * llama.training.memory.weights)
    assert meg.tp_bytes == llama.tp_bytes == 0


@SETTINGS
@given(st.sampled_from([1.0, 1.5, 2.0, 3.0, 4.0]), st.sampled_from([1.0, 1.5, 2.0, 3.0, 4.0]))
def test_more_scale_out_bandwidth_never_lowers_the_roof(o1, o2):
    """A higher oversubscription ratio divides B: the attainable flop/s and the step bound
    never improve with it; the intensity (flops and bytes) does not depend on B at all."""
    lo, hi = sorted((o1, o2))
    fast, slow = (ROOF.solve(Models.Llama3_8B, Fleet(name=f"2 x DGX at {o}:1", node=DGX,
                                                     count=2, fabric=Systems.Fabrics.
                                                     Ethernet_100G,
                                                     oversubscription_ratio=o),
                             batch_size=16, seq_len=2048, zero_stage=1) for o in (lo, hi))
    assert slow.attainable <= fast.attainable * (1 + REL)
    assert slow.min_step_s >= fast.min_step_s * (1 - REL)
    assert close(slow.intensity, fast.intensity)
    assert close(slow.ridge * slow.scale_out_bps, fast.ridge * fast.scale_out_bps)


def test_network_roofline_bad_input():
    with pytest.raises(ValidationError) as e:
        ROOF.solve(Models.Llama3_8B, SUPERPOD, config=DistributedConfig(batch_size=512,
                                                                         cp_size=2))
    assert e.value.field == "cp_size"
    with pytest.raises(ValidationError) as e:
        ROOF.solve(Models.Llama3_8B, SUPERPOD, batch_size=512, config={"batch_size": 512})
    assert e.value.field == "config"
    with pytest.raises(ValidationError) as e:
        ROOF.solve(Models.Llama3_8B, SUPERPOD, batch_size=512, tp_size=3)  # 32 heads
    assert e.value.field == "tp_size"
    with pytest.raises(ValidationError) as e:
        ROOF.solve(Models.Llama3_8B, SUPERPOD)
    assert e.value.field == "batch_size"
    with pytest.raises(MLSysimError):
        ROOF.solve(Models.Llama3_8B, SUPERPOD, batch_size=0)
    with pytest.raises(UnknownNameError):
        ROOF.solve("Llama3_8B", "DGX_H100_SuperPod", batch_size=512)


# --- DataModel ------------------------------------------------------------------------------
def test_storage_bound_pipeline_stalls_by_the_shortfall():
    """2,000 samples/s of 1 MB need 2 GB/s; 1 GB/s gives 1,000/s: stall = 1 - 1000/2000."""
    r = DATA.solve(2000, "1 MB", "1 GB/s")
    assert r.stall_fraction == 0.5 and r.binding == "storage" and not r.feasible
    assert float(r.effective_throughput) == 1000.0
    assert close(r.required_storage_bandwidth.to("GB/s").magnitude, 2.0)
    assert r.decode_samples_per_s is None and r.workers_needed is None
    assert DATA.solve(2000, "1 MB", "1 GB/s", max_stall_fraction=0.5).feasible


def test_decode_bound_pipeline():
    """OpenCV decodes 721 images/s per core (preprocessing.yaml): 4 workers give 2,884/s,
    below the 3,000/s the step takes: stall = 1 - 2884/3000 = 0.038667; ceil(3000/721) =
    ceil(4.16) = 5 workers suffice. Storage: 2 GB/s / 110 kB = 18,182/s, never binding."""
    r = DATA.solve(3000, "110 kB", "2 GB/s", decode_cost_s_per_sample="jpeg_decode_opencv",
                   cpu_workers=4)
    assert close(float(r.decode_samples_per_s), 2884)
    assert close(r.stall_fraction, 1 - 2884 / 3000) and r.binding == "decode"
    assert r.workers_needed == 5
    assert close(float(r.storage_samples_per_s), 2e9 / 110e3)
    ok = DATA.solve(3000, "110 kB", "2 GB/s", decode_cost_s_per_sample="jpeg_decode_opencv",
                    cpu_workers=5)
    assert ok.stall_fraction == 0 and ok.binding == "none" and ok.feasible
    assert float(ok.effective_throughput) == 3000.0


def test_decode_cost_in_every_form_is_the_same_cost():
    """Seconds, a time string, a key, a list of keys and a TransformationResult."""
    c = 1 / 721 + 1 / 4347
    keys = ["jpeg_decode_opencv", "random_resized_crop_albumentations"]
    forms = [c, f"{c * 1e3} ms", keys, TRANSFORM.solve(1000, keys)]
    results = [DATA.solve(3000, 110e3, "2 GB/s", decode_cost_s_per_sample=x, cpu_workers=4)
               for x in forms]
    assert all(close(r.cpu_cost_s, c) for r in results)
    assert results[2].steps == tuple(keys) and results[3].steps == tuple(keys)


def test_demand_from_a_training_result():
    """DistributedModel's effective throughput (sequences/s) is the demand."""
    t = mlsysim.DistributedModel().solve(**mlsysim.DistributedModel.example())
    r = DATA.solve(t, "8 kB", "1 GB/s")
    assert close(r.demand_per_s, 64 / t.step_s)
    assert close(DATA.solve("2000 sample/s", 1e6, "1 GB/s").stall_fraction, 0.5)


@SETTINGS
@given(st.floats(1e2, 1e6), st.floats(1e3, 1e7), st.floats(1e7, 1e11), st.floats(1e7, 1e11),
       st.integers(1, 64))
def test_more_storage_bandwidth_never_raises_the_stall(d, size, b1, b2, w):
    lo, hi = sorted((b1, b2))
    kw = dict(decode_cost_s_per_sample=1 / 721, cpu_workers=w)
    slow, fast = (DATA.solve(d, size, b, **kw) for b in (lo, hi))
    assert fast.stall_fraction <= slow.stall_fraction
    more = DATA.solve(d, size, lo, decode_cost_s_per_sample=1 / 721, cpu_workers=w + 1)
    assert more.stall_fraction <= slow.stall_fraction
    assert 0 <= slow.stall_fraction < 1
    assert close(slow.stall_fraction, stall_fraction(min(lo / size, w * 721), d), rel=1e-9)


def test_data_model_bad_input():
    for kw, field in [
        (dict(samples_per_s_required=0), "samples_per_s_required"),
        (dict(samples_per_s_required="100 token/s"), "samples_per_s_required"),
        (dict(samples_per_s_required=float("nan")), "samples_per_s_required"),
        (dict(bytes_per_sample="0 kB"), "bytes_per_sample"),
        (dict(bytes_per_sample="2 GB/s"), "bytes_per_sample"),
        (dict(bytes_per_sample=-1), "bytes_per_sample"),
        (dict(storage_bandwidth="fast"), "storage_bandwidth"),
        (dict(storage_bandwidth="2 TFLOP/s"), "storage_bandwidth"),
        (dict(decode_cost_s_per_sample=1e-3), "cpu_workers"),
        (dict(decode_cost_s_per_sample=1e-3, cpu_workers=0), "cpu_workers"),
        (dict(decode_cost_s_per_sample=-1e-3, cpu_workers=2), "decode_cost_s_per_sample"),
        (dict(decode_cost_s_per_sample="2 GB", cpu_workers=2), "decode_cost_s_per_sample"),
        (dict(max_stall_fraction=1.0), "max_stall_fraction"),
    ]:
        args = {**dict(samples_per_s_required=1000, bytes_per_sample="110 kB",
                       storage_bandwidth="1 GB/s"), **kw}
        with pytest.raises(ValidationError) as e:
            DATA.solve(**args)
        assert e.value.field == field, kw
    with pytest.raises(UnknownNameError) as e:
        DATA.solve(1000, "110 kB", "1 GB/s", decode_cost_s_per_sample="jpeg_decode_opencvv",
                   cpu_workers=2)
    assert "jpeg_decode_opencv" in str(e.value)


# --- TransformationModel --------------------------------------------------------------------
def test_pillow_decode_on_one_core():
    """577 images/s per core: 1,000/s need 1000/577 = 1.7331 cores (2 whole); one core gives
    577/s, so the step waits 1 - 577/1000 = 0.423 of the time."""
    r = TRANSFORM.solve(1000, "jpeg_decode_pillow", cpu_cores=1)
    assert close(r.cpu_cores_needed, 1000 / 577) and r.min_cpu_cores == 2
    assert close(r.stall_fraction, 1 - 577 / 1000) and r.binding == "cpu cores"
    assert not r.feasible and "needs 2 cores" in r.reason


def test_resnet_style_pipeline_cost_adds_up():
    """c = 1/721 + 1/4347 + 1/14460 + 1/1819 s = 1.38696 + 0.23004 + 0.06916 + 0.54975 ms =
    2.23592 ms; 3,000 images/s need 3000 x 2.23592e-3 = 6.7077 cores -> 7."""
    r = TRANSFORM.solve(**TransformationModel.example())
    c = 1 / 721 + 1 / 4347 + 1 / 14460 + 1 / 1819
    assert close(r.cost_s_per_sample, c) and round(r.cost_s_per_sample * 1e3, 5) == 2.23592
    assert close(r.cpu_cores_needed, 3000 * c) and r.min_cpu_cores == 7
    assert r.stall_fraction == 0 and r.feasible and r.binding == "none"


def test_user_cost_and_sizing():
    """0.5 ms per sample of tokenization (measured by the user) at 10,000 samples/s: exactly
    5 cores (no rounding up to 6); without cpu_cores the cores are sized: no stall."""
    r = TRANSFORM.solve(10_000, cost_s_per_sample=0.5e-3)
    assert close(r.cpu_cores_needed, 5.0) and r.min_cpu_cores == 5 and r.cpu_cores is None
    assert r.stall_fraction == 0 and r.feasible
    both = TRANSFORM.solve(1000, "jpeg_decode_pillow", cost_s_per_sample="1 ms")
    assert close(both.cost_s_per_sample, 1 / 577 + 1e-3)


@SETTINGS
@given(st.floats(1.0, 1e6), st.integers(1, 256), st.integers(1, 256),
       st.sampled_from(sorted(preprocessing_costs())))
def test_more_cores_never_raise_the_stall(d, c1, c2, extra):
    lo, hi = sorted((c1, c2))
    base = ("jpeg_decode_torchvision",)
    few, many = (TRANSFORM.solve(d, base, cpu_cores=c) for c in (lo, hi))
    assert many.stall_fraction <= few.stall_fraction
    more_work = TRANSFORM.solve(d, base + (extra,), cpu_cores=lo)
    assert more_work.cpu_cores_needed >= few.cpu_cores_needed
    assert more_work.stall_fraction >= few.stall_fraction


def test_preprocessing_data_is_sourced():
    table = preprocessing_costs()
    assert len(table) >= 5
    for key, entry in table.items():
        assert entry.key == key and entry.source.strip() and entry.as_of
        assert entry.rate_per_core.to("sample/s").magnitude > 0
        assert close(entry.cost_s * entry.rate_per_core.to("sample/s").magnitude, 1.0)
    # README of ternaus/imread_benchmark, one thread on Intel Xeon Platinum 8581C.
    assert table["jpeg_decode_pillow"].rate_per_core.magnitude == 577


def test_transformation_bad_input():
    for kw, field in [
        (dict(), "transforms"),
        (dict(transforms=[]), "transforms"),
        (dict(transforms=[1, 2]), "transforms"),
        (dict(cost_s_per_sample=-1.0), "cost_s_per_sample"),
        (dict(cost_s_per_sample=0.0), "transforms"),
        (dict(transforms="jpeg_decode_pillow", cpu_cores=0), "cpu_cores"),
        (dict(transforms="jpeg_decode_pillow", cpu_cores=2.5), "cpu_cores"),
        (dict(transforms="jpeg_decode_pillow", max_stall_fraction=-0.1), "max_stall_fraction"),
    ]:
        with pytest.raises(ValidationError) as e:
            TRANSFORM.solve(1000, **kw)
        assert e.value.field == field, kw
    with pytest.raises(UnknownNameError):
        TRANSFORM.solve(1000, "jpeg_decode")


# --- OrchestrationModel ---------------------------------------------------------------------
def test_one_slot_is_mm1():
    """8 GPUs, 8-GPU jobs of 1 h, 0.5 per hour: c = 1, rho = 0.5, P(wait) = rho = 0.5,
    E[W] = rho / (mu - lambda) = 0.5 / (1 - 0.5) h = 1 h; p99 wait = ln(0.5 / 0.01) /
    0.5 per h = 2 ln 50 h = 7.824 h."""
    r = ORCH.solve(0.5, 8, 1.0, 8)
    assert r.servers == 1 and close(r.utilization, 0.5)
    assert close(r.probability_of_waiting, 0.5, rel=1e-9)
    assert close(r.mean_wait.to("hour").magnitude, 1.0, rel=1e-9)
    assert close(r.p99_wait.to("hour").magnitude, 2 * math.log(50), rel=1e-9)
    assert close(r.mean_turnaround.to("hour").magnitude, 2.0, rel=1e-9)
    assert r.binding == "job runtime" or r.binding == "queueing"


def test_two_slots_wait_twenty_minutes():
    """ErlangC(2, 1) = 1/3; E[W] = (1/3) / (2/1 h - 1/h) = 1/3 h = 20 min."""
    r = ORCH.solve(1, 8, 1, 16)
    assert r.servers == 2 and close(r.probability_of_waiting, 1 / 3, rel=1e-9)
    assert close(r.mean_wait.to("min").magnitude, 20.0, rel=1e-9)


def test_leftover_gpus_and_a_fleet_as_the_cluster():
    """20 GPUs hold floor(20/8) = 2 jobs of 8; 4 idle; GPU utilization = a G / N =
    1 x 8 / 20 = 0.4 while the slots are at 1/2. A fleet counts its accelerators."""
    r = ORCH.solve(1, 8, 1, 20)
    assert r.servers == 2 and r.idle_gpus == 4
    assert close(r.gpu_utilization, 0.4) and close(r.utilization, 0.5)
    assert ORCH.solve(1, 8, 1, SUPERPOD).cluster_gpus == 256
    assert ORCH.solve(1, 8, 1, "DGX_H100").cluster_gpus == 8


def test_queue_matches_tail_latency_model():
    """The same M/M/c as TailLatencyModel: jobs/s and job seconds in, the same wait out."""
    r = ORCH.solve(**OrchestrationModel.example())
    lam = 2.5 / 3600
    t = TailLatencyModel().solve(arrival_rate_qps=lam, service_latency_ms=12 * 3600e3,
                                 num_replicas=32)
    assert close(r.mean_wait_s, t.mean_wait_s, rel=1e-9)
    assert close(r.probability_of_waiting, t.probability_of_waiting, rel=1e-9)


def test_deterministic_jobs_halve_the_wait():
    """Allen-Cunneen: k = (1 + cv^2) / 2 = 1/2 for equal-length jobs."""
    kw = OrchestrationModel.example()
    assert close(ORCH.solve(**kw, job_time_cv=0).mean_wait_s,
                 ORCH.solve(**kw).mean_wait_s / 2, rel=1e-9)


def test_explain_prints_the_allen_cunneen_factor_of_the_job_time_spread():
    """Two 8-GPU slots, 1 job/h of 1 h with cv = 0.5: ErlangC(2, 1) = 1/3, c/T - lambda = 1/h,
    k = (1 + 0.25)/2 = 0.625, E[W] = 1/3 x 0.625 h = 0.2083 h = 12.5 min."""
    lines = ORCH.solve(1, 8, 1, 16, job_time_cv=0.5).explain().splitlines()
    assert ("  E[W] = P(wait)/(c/T - lambda) * k, k = (1 + cv^2)/2 = 0.625 (Allen-Cunneen) = "
            "0.2083 h = 12.5 min") in lines


def test_overloaded_cluster_is_infeasible():
    """3 jobs/h x 1 h on 2 slots: a = 3 >= c = 2; at least (3 + 1) x 8 = 32 GPUs needed."""
    r = ORCH.solve(3, 8, 1, 16)
    assert not r.feasible and r.binding == "cluster capacity" and r.mean_wait_s == math.inf
    assert r.min_gpus == 32 and "32 GPUs" in r.reason
    assert json.loads(r.to_json())["mean_wait"]["value"] is None
    assert ORCH.solve(3, 8, 1, 32).feasible


@SETTINGS
@given(st.floats(0.01, 50), st.integers(1, 16), st.floats(0.1, 100), st.integers(16, 4096),
       st.integers(16, 4096))
def test_more_gpus_never_raise_the_wait(rate, g, hours, n1, n2):
    lo, hi = sorted((n1, n2))
    small, big = (ORCH.solve(rate, g, hours, n) for n in (lo, hi))
    assert big.mean_wait_s <= small.mean_wait_s * (1 + 1e-9)
    assert big.p99_wait_s <= small.p99_wait_s * (1 + 1e-9)
    assert big.utilization <= small.utilization
    assert small.feasible == (small.utilization < 1)


def test_orchestration_bad_input():
    for args, field in [
        ((0, 8, 1, 16), "arrival_rate_jobs_per_h"),
        ((float("nan"), 8, 1, 16), "arrival_rate_jobs_per_h"),
        ((1, 0, 1, 16), "mean_job_gpus"),
        ((1, 8, -1, 16), "mean_job_hours"),
        ((1, 8, 1, 4), "cluster_gpus"),
        ((1, 8, 1, 16.5), "cluster_gpus"),
        ((1, 8, 1, True), "cluster_gpus"),
        ((1, 8, 1, 16, -0.5), "job_time_cv"),
    ]:
        with pytest.raises(ValidationError) as e:
            ORCH.solve(*args)
        assert e.value.field == field, args
    with pytest.raises(UnknownNameError):
        ORCH.solve(1, 8, 1, "DGX_H100_SuperPod")


def test_a_demand_in_plain_per_second_is_samples_per_second():
    """A demand given as 2000 sample/s, '2000 1/s' or the number 2000 is the same demand;
    a rate of something else (tokens) is refused by name."""
    from mlsysim.solvers.data_pipeline import DataModel
    from mlsysim.units import Q_
    ex = DataModel.example(True)
    base = DataModel().solve(**{**ex, "samples_per_s_required": 2000}).to_dict()
    for same in ("2000 1/s", Q_(2000, "1/s"), Q_(2000, "sample/s"), "2000 sample/s"):
        assert DataModel().solve(**{**ex, "samples_per_s_required": same}).to_dict() == base
    with pytest.raises(ValidationError, match="samples_per_s_required"):
        DataModel().solve(**{**ex, "samples_per_s_required": "2000 token/s"})


def test_data_model_reads_the_demand_from_an_engine_profiles_throughput():
    """An Engine profile has ``throughput`` (no ``effective_throughput``): Llama-3-8B decode
    at batch 8 on an H100 runs 1253 sample/s, and that is the demand D."""
    from mlsysim.core.engine import SingleNodeModel
    p = SingleNodeModel().solve(**SingleNodeModel.example())
    r = DataModel().solve(p, "110 kB", "5 GB/s")
    assert r.demand_per_s == pytest.approx(float(p.throughput), rel=1e-12)
    assert r.demand_per_s == pytest.approx(1253.3, rel=1e-4)


def test_data_model_explain_storage_line_in_gb_per_s():
    """R_storage = 2e9 B/s / 110e3 B = 18,182 samples/s; D*s = 3000 x 110 kB = 0.33 GB/s."""
    r = DataModel().solve(**DataModel.example())
    assert r.explain().splitlines()[1] == (
        "  storage: R_storage = B/s = 2 GB/s / 110 kB = 1.818e+04 samples/s "
        "(needs D*s = 0.33 GB/s)")


def test_transformation_explain_shows_the_given_cost_in_ms():
    """5 ms CPU per sample given: 2000/s x 5 ms = 10 cores."""
    r = TransformationModel().solve(2000, cost_s_per_sample=0.005)
    assert r.explain().splitlines()[1:] == [
        "  c = 5 ms (given) = 5 ms CPU per sample",
        "  cores needed = D*c = 2000 * 5 ms = 10 -> 10 cores"]
