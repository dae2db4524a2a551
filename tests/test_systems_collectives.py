"""Collectives on systems above a chip: each algorithm's alpha-beta time by hand, the fabric a
group crosses (NVLink inside a scale-up domain, InfiniBand between them), serving on fleets,
and bad system input."""

import math

import numpy as np
import pytest

import mlsysim
from mlsysim import Fleet, NetworkFabric, Node, Systems
from mlsysim.core.collectives import (
    CollectiveEfficiency,
    collective_terms,
    collective_time,
    comm_path,
)
from mlsysim.errors import MLSysimError, SpecError, UnknownNameError, ValidationError

S = 1e8                      # bytes per device
EFF = CollectiveEfficiency(alpha_s=2e-6, eta_bus=0.8, estimated=True)   # fit_devices = 8
SWITCH = NetworkFabric(name="test switch", scope="scale_up", bandwidth="100 GB/s",
                       in_network_reduction="NVLS")
NODE = Node(name="16-GPU test node", accelerator="H100", accelerators_per_node=16,
            intra_node_fabric=SWITCH)


def t(system, n, algorithm="auto", kind="allreduce", size=S, eff=EFF):
    return collective_time(system, kind, size, n, algorithm=algorithm, efficiency=eff)


# ---------------------------------------------------------------- every algorithm, by hand

@pytest.mark.parametrize("algorithm, expected", [
    # B = 100 GB/s, alpha = 2 us, eta = 0.8, n = 8, S = 1e8 B:
    ("nccl", 2 * 7 * 2e-6 + 1.75 * S / (0.8 * 1e11)),        # 28 us + 2.1875 ms
    ("ring", 2 * 7 * 2e-6 + 1.75 * S / (0.8 * 1e11)),        # no ring-only rows: same eta
    ("tree", 2 * 3 * 2e-6 + 2 * S / (0.8 * 1e11)),           # 2 ceil(log2 8) steps, 2 S
    ("one_shot", 2e-6 + 7 * S / (0.8 * 1e11)),               # read 7 peers' buffers
    ("two_shot", 2 * 2e-6 + 1.75 * S / (0.8 * 1e11)),        # RS + AG by direct writes
    ("in_network", 2 * 2e-6 + S / (0.8 * 1.75 * 1e11)),      # eta_inr = 0.8 x 2(8-1)/8
    ("auto", 2 * 7 * 2e-6 + 1.75 * S / (0.8 * 1e11)),        # n <= 8 fitted: the NCCL fit
])
def test_allreduce_algorithms_by_hand(algorithm, expected):
    assert t(NODE, 8, algorithm) == pytest.approx(expected, rel=1e-12)


def test_auto_beyond_the_fitted_group_takes_the_fastest_schedule():
    # n = 16 > 8: min(nccl 30 alpha + 1.875 S/(eta B), tree 8 alpha + 2 S/(eta B),
    # in-network 2 alpha + S/(1.4 B)) = in-network, 4 us + 714.3 us.
    assert t(NODE, 16) == pytest.approx(4e-6 + S / 1.4e11, rel=1e-12)
    assert t(NODE, 16) == min(t(NODE, 16, a) for a in ("nccl", "tree", "in_network"))


def test_other_kinds_are_rings():
    # all-gather: (n-1) alpha + (n-1)/n S / (eta B);  p2p: alpha + S / (eta B)
    assert t(NODE, 8, kind="allgather") == pytest.approx(7 * 2e-6 + 7 / 8 * S / 0.8e11)
    assert t(NODE, 2, kind="p2p") == pytest.approx(2e-6 + S / 0.8e11)
    with pytest.raises(ValidationError, match="all-reduce only"):
        t(NODE, 8, "tree", kind="allgather")


def test_in_network_needs_a_reducing_switch():
    plain = Node(name="no NVLS", accelerator="H100", accelerators_per_node=8,
                 intra_node_fabric=NetworkFabric(name="plain", scope="scale_up",
                                                 bandwidth="100 GB/s"))
    with pytest.raises(ValidationError, match="in_network") as info:
        t(plain, 8, "in_network")
    assert info.value.field == "algorithm"
    with pytest.raises(ValidationError, match="algorithm"):
        t(NODE, 8, "butterfly")


def test_hierarchical_allreduce_across_nodes_by_hand():
    ib = NetworkFabric(name="test IB", bandwidth="25 GB/s")      # scale-out by default
    node = Node(name="8-GPU node", accelerator="H100", accelerators_per_node=8,
                intra_node_fabric=SWITCH, nics_per_node=4, nic_fabric=ib)
    fleet = Fleet(name="2 nodes", node=node, count=2)
    path = comm_path(fleet)
    assert path.out_bw == pytest.approx(4 * 25e9 / 8)          # 12.5 GB/s per GPU
    a_out, e_out = path.out_eff.alpha_s, path.out_eff.eta_link
    # L = 8 per node, N = 2 nodes: RS + AG within (2 x 7 alpha, 2 x 7/8 S / (eta B)) plus a
    # ring all-reduce of S/8 across the 2 nodes (2 x 1 alpha_out, 2 x 1/2 x S/8 / B_out).
    hier = 2 * 7 * 2e-6 + 2 * 7 / 8 * S / 0.8e11 + 2 * a_out + (S / 8) / (e_out * 12.5e9)
    flat = 30 * a_out + 1.875 * S / (e_out * 12.5e9)
    assert t(fleet, 16, "hierarchical") == pytest.approx(hier, rel=1e-12)
    assert t(fleet, 16, "ring") == pytest.approx(flat, rel=1e-12)
    assert t(fleet, 16) == pytest.approx(min(hier, flat), rel=1e-12)
    with pytest.raises(ValidationError, match="one scale-up domain"):
        t(fleet, 16, "one_shot")


# ---------------------------------------------------------------- which fabric a group crosses

def _with_nic(node: Node, fabric: str) -> Node:
    return node.model_copy(update={"key": None, "nic_fabric": fabric})


def test_nvl72_allreduce_stays_on_nvlink():
    nvl = Systems.Nodes.GB200_NVL72
    path = comm_path(nvl)
    assert path.domain == 72 and path.up_bw == pytest.approx(18 * 50e9)   # NVLink 5
    base = collective_time(nvl, "allreduce", 2**30, 72)
    # A faster scale-out fabric changes nothing: 72 GPUs never leave the NVLink domain.
    assert collective_time(_with_nic(nvl, "InfiniBand_XDR"), "allreduce", 2**30, 72) == base
    terms = collective_terms(path, "allreduce", 72)
    assert base == pytest.approx(min(a + b * 2**30 for a, b in terms))


def test_sixteen_dgx_h100_allreduce_crosses_infiniband():
    fleet = Fleet(name="16 x DGX H100", node=Systems.Nodes.DGX_H100, count=16,
                  fabric=Systems.Fabrics.InfiniBand_NDR)
    assert fleet.total_accelerators == 128 and fleet.scale_up_domain == 8
    path = comm_path(fleet)
    assert path.out_bw == pytest.approx(8 * 50e9 / 8)       # 8 NDR NICs per 8 GPUs
    t_ndr = collective_time(fleet, "allreduce", 2**30, 128)
    faster = Fleet(name="16 x DGX H100, XDR", node=_with_nic(Systems.Nodes.DGX_H100,
                                                             "InfiniBand_XDR"), count=16)
    assert collective_time(faster, "allreduce", 2**30, 128) < t_ndr
    # Within one node the same collective never touches InfiniBand.
    assert collective_time(fleet, "allreduce", 2**30, 8) == \
        collective_time(faster, "allreduce", 2**30, 8)
    # NDR + SHARP: hierarchical = RS/AG on NVLink + in-switch all-reduce of S/8 on IB.
    up, out = path.up_eff, path.out_eff
    hier = (2 * 7 * up.alpha_s + 2 * 7 / 8 * 2**30 / (up.eta_link * 450e9)
            + 2 * out.alpha_s + 2**30 / 8 / (out.eta_link * 50e9))
    assert collective_time(fleet, "allreduce", 2**30, 128, algorithm="hierarchical") == \
        pytest.approx(hier, rel=1e-12)


def test_oversubscription_slows_cross_node_traffic():
    node = Systems.Nodes.DGX_H100
    full = Fleet(name="1:1", node=node, count=4)
    half = Fleet(name="2:1", node=node, count=4, oversubscription_ratio=2.0)
    assert comm_path(half).out_bw == pytest.approx(comm_path(full).out_bw / 2)
    assert collective_time(half, "allgather", 2**30, 32) > \
        collective_time(full, "allgather", 2**30, 32)


def test_groups_larger_than_the_system_are_infeasible():
    with pytest.raises(MLSysimError, match="128 accelerators"):
        collective_time(Systems.Clusters.DGX_H100_SuperPOD_256.model_copy(
            update={"key": None, "count": 16}), "allreduce", 1e6, 129)


# ---------------------------------------------------------------- serving on nodes and fleets

def test_serving_on_a_fleet_prices_tp_beyond_the_node_on_infiniband():
    two = Fleet(name="2 x DGX H100", node="DGX_H100", count=2)
    kw = dict(seq_len=1024, output_len=128, batch_size=8)
    r8 = mlsysim.ServingModel().solve("Llama3_405B", two, tp_size=8, pp_size=2, **kw)
    r16 = mlsysim.ServingModel().solve("Llama3_405B", two, tp_size=16, **kw)
    assert r8.hardware is mlsysim.Hardware.H100
    # 16-way TP crosses nodes every layer. Prefill all-reduces are bandwidth-bound (8 x 1024
    # tokens x 16384 x 2 B = 268 MB each): their S/8 share crosses 50 GB/s IB per GPU, slower
    # than the 8-way NVLink ring of the tp=8 x pp=2 layout at 450 GB/s.
    assert r16.comm_prefill_s > r8.comm_prefill_s
    # Decode all-reduces (8 tokens, 262 kB) are latency-bound: 16-way adds the IB steps.
    assert r16.comm_decode_s > r8.comm_decode_s
    # On the node alone the same group is the one DGX H100's NVLink domain.
    node = mlsysim.ServingModel().solve("Llama3_70B", "DGX_H100", tp_size=8, **kw)
    chip = mlsysim.ServingModel().solve("Llama3_70B", "H100", tp_size=8, **kw)
    assert node.itl_s == pytest.approx(chip.itl_s, rel=1e-12)


def test_tp_beyond_the_domain_without_scale_out_is_refused():
    with pytest.raises(ValidationError, match="scale-up domain.*no scale-out fabric") as info:
        mlsysim.ServingModel().solve("Llama3_405B", "H100", seq_len=128, tp_size=16)
    assert info.value.field == "tp_size"
    with pytest.raises(ValidationError, match="exceeds the 8 accelerators"):
        mlsysim.ServingModel().solve("Llama3_405B", "DGX_H100", seq_len=128, tp_size=16)


def test_three_inputs_and_keywords_agree():
    cfg = mlsysim.ServingConfig(seq_len=1024, output_len=128, batch_size=4, tp_size=2)
    a = mlsysim.ServingModel().solve("Llama3_8B", "H100", cfg)
    b = mlsysim.ServingModel().solve("Llama3_8B", "H100", seq_len=1024, output_len=128,
                                     batch_size=4, tp_size=2)
    assert a.to_dict() == b.to_dict()
    assert cfg == mlsysim.ServingConfig(seq_len=1024, output_len=128, batch_size=4, tp_size=2)
    assert hash(cfg) == hash(cfg.model_copy())
    with pytest.raises(ValidationError, match="tp_size.*positive whole number"):
        mlsysim.ServingConfig(seq_len=1024, tp_size=0)


# ---------------------------------------------------------------- bad system input

@pytest.mark.parametrize("update, field", [
    ({"count": 0}, "count"), ({"count": 2.5}, "count"), ({"count": True}, "count"),
    ({"count": math.nan}, "count"), ({"mtbf_hours": -1.0}, "mtbf_hours"),
])
def test_bad_fleets_name_the_field(update, field):
    with pytest.raises(SpecError, match=field):
        Fleet(**{"name": "f", "node": "DGX_H100", "count": 4, **update})


@pytest.mark.parametrize("kwargs, match", [
    ({"bandwidth": "nan GB/s"}, "bandwidth"),
    ({"bandwidth": "-5 GB/s"}, "bandwidth"),
    ({"bandwidth": "5 TFLOP/s"}, "bandwidth"),
    ({"bandwidth": "5 GB/s", "latency": "-1 us"}, "latency"),
    ({"bandwidth": "5 GB/s", "links_per_device": 0}, "links_per_device"),
])
def test_bad_fabrics_name_the_field(kwargs, match):
    with pytest.raises(SpecError, match=match):
        NetworkFabric(name="x", **kwargs)


def test_bad_nodes_are_refused():
    with pytest.raises(SpecError, match="not both"):
        Node(name="n", accelerator="H100", accelerators_per_node=8, intra_node_fabric="NVLink4",
             intra_node_bw="450 GB/s")
    with pytest.raises(SpecError, match="more than the 300 GB/s"):        # A100 on NVLink 5
        Node(name="n", accelerator="A100", accelerators_per_node=8, intra_node_fabric="NVLink5")
    with pytest.raises(SpecError, match="exceeds the 16 endpoints"):
        Node(name="n", accelerator="A100", accelerators_per_node=8, intra_node_fabric="NVLink3",
             scale_up_domain=64)
    with pytest.raises(SpecError, match="scale-out fabric"):
        Node(name="n", accelerator="H100", accelerators_per_node=8,
             intra_node_fabric="InfiniBand_NDR")
    with pytest.raises(UnknownNameError) as info:
        Node(name="n", accelerator="H100", accelerators_per_node=8, intra_node_fabric="NVLink4",
             nics_per_node=8, nic_fabric="InfiniBand_NRD")
    assert "InfiniBand_NDR" in info.value.suggestions
    with pytest.raises(UnknownNameError):
        mlsysim.Systems.Nodes.DGX_H1000
    data = mlsysim.Hardware.H100.model_dump(mode="json")
    data["interconnect"]["fabric"] = "NVLink44"
    with pytest.raises(UnknownNameError, match="NVLink4"):
        mlsysim.specs.hardware.HardwareSpec(**data)


def test_vectorized_sizes_match_scalars_on_a_fleet():
    fleet = Fleet(name="4 x DGX H100", node="DGX_H100", count=4)
    sizes = np.array([0.0, 1e3, 1e6, 1e9])
    out = collective_time(fleet, "allreduce", sizes, 32)
    assert out[0] == 0.0
    assert np.allclose(out, [collective_time(fleet, "allreduce", float(s), 32) for s in sizes])


def test_continuous_batching_takes_a_config_and_a_node():
    cfg = mlsysim.ContinuousBatchingConfig(prompt_len=512, output_len=128, tp_size=2)
    a = mlsysim.ContinuousBatchingModel().solve("Llama3_8B", "DGX_H100", cfg)
    b = mlsysim.ContinuousBatchingModel().solve("Llama3_8B", "H100", prompt_len=512,
                                                output_len=128, tp_size=2)
    assert a.step_s == pytest.approx(b.step_s, rel=1e-12)     # same NVLink 4 domain
    c = mlsysim.ServingModel().solve("Llama3_8B", "H100", config=mlsysim.ServingConfig(
        seq_len=512, output_len=128))
    assert c.seq_len == 512
    with pytest.raises(ValidationError, match="prompt_len"):
        mlsysim.ContinuousBatchingModel().solve("Llama3_8B", "H100", output_len=128)
    with pytest.raises(ValidationError, match="config"):
        mlsysim.ContinuousBatchingModel().solve("Llama3_8B", "H100", config={"prompt_len": 1})


def test_band_edges_move_collectives_by_their_fit_spread():
    path = comm_path("H100")
    lo, hi = path.up_eff.spread                    # 10th / 90th pct of measured / fitted busbw
    assert 0.5 < lo < 1 < hi < 1.5
    (a, b), = collective_terms(path, "allreduce", 8, "nccl")
    (af, bf), = collective_terms(path.at("fast"), "allreduce", 8, "nccl")
    (as_, bs), = collective_terms(path.at("slow"), "allreduce", 8, "nccl")
    assert (af, bf) == pytest.approx((a / hi, b / hi)) and (as_, bs) == pytest.approx((a / lo,
                                                                                       b / lo))
    r = mlsysim.ServingModel().solve("Llama3_70B", "H100", seq_len=1024, tp_size=8)
    fast, slow = (q.to("s").magnitude for q in r.band["itl"])
    assert fast < r.itl_s < slow


def test_pipeline_hand_off_is_one_send_per_stage_boundary():
    # tp=1, pp=2, batch 4: one decode step hands 4 tokens x 4096 hidden x 2 B = 32 kB from
    # stage 1 to stage 2 once; nothing else communicates.
    r = mlsysim.ServingModel().solve("Llama3_8B", "H100", seq_len=1024, batch_size=4,
                                     pp_size=2)
    one_send = collective_time("H100", "p2p", 4 * 4096 * 2, 2)
    assert r.comm_decode_s == pytest.approx(one_send, rel=1e-12)
    # Prefill hands the whole prompt on: 4 x 1024 tokens.
    assert r.comm_prefill_s == pytest.approx(collective_time("H100", "p2p", 4 * 1024 * 4096 * 2,
                                                             2), rel=1e-12)


def test_overlap_rule_hides_collectives_behind_compute():
    from mlsysim.core.calibration import calibration
    from mlsysim.core.costmodel import evaluate, prepare
    from mlsysim.workloads.operators import OperatorBuilder, OpKind

    hw = mlsysim.Hardware.H100
    eff = calibration().efficiency("H100", "bf16")
    path = comm_path("DGX_H100")

    def pass_with(message):
        b = OperatorBuilder()
        b.add("gemm", OpKind.GEMM, flops=2 * 4096 * 4096 * 4096, weight_bytes=4096 * 4096 * 2,
              act_bytes=2 * 4096 * 4096 * 2)
        b.collective("grad", "allreduce", message_bytes=message, group=8, overlap=True)
        return prepare(b.build(weight_total_bytes=0.0), hw, "bf16", eff, path=path)

    small, big = pass_with(1e3), pass_with(1e10)
    for p in (small, big):
        ev = evaluate(p, 1)
        compute = ev.latency - ev.comm_time
        comm = collective_time("DGX_H100", "allreduce", p.table.act_bytes_per_sample[1], 8)
        # latency = compute + max(0, comm - compute)
        assert ev.latency == pytest.approx(compute + max(0.0, comm - compute), rel=1e-9)
    assert evaluate(small, 1).comm_time == 0.0                  # fully hidden
    assert evaluate(big, 1).comm_time > 0.0                     # its excess shows


def test_absurd_fleets_are_refused():
    with pytest.raises(SpecError, match="count"):
        Fleet(name="f", node="DGX_H100", count=10**20)
