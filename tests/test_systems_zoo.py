"""The systems zoo (fabrics, nodes, clusters) loads, carries provenance, agrees with the hardware
zoo, and its derived numbers match hand arithmetic; bad systems fail through the specs.

Bandwidths are per direction throughout: a fabric's ``device_bandwidth`` is one link's
bandwidth times the links per endpoint; a node's ``scale_out_bandwidth`` is NICs x NIC
bandwidth / accelerators.
"""

import pytest

import mlsysim
from mlsysim.errors import DimensionError, SpecError, UnknownNameError
from mlsysim.specs.system import Fleet, NetworkFabric, Node

Fabrics, Nodes, Clusters = (mlsysim.Systems.Fabrics, mlsysim.Systems.Nodes,
                            mlsysim.Systems.Clusters)
FABRICS, NODES, CLUSTERS = list(Fabrics), list(Nodes), list(Clusters)
HARDWARE = list(mlsysim.Hardware)


def gbs(q) -> float:
    """A bandwidth quantity in GB/s (decimal), as a plain float."""
    return float(q.to("GB/s").magnitude)


def watts(q) -> float:
    return float(q.to("W").magnitude)


# ----------------------------------------------------------------------------- loading

REQUIRED = {
    "fabrics": ["NVLink3", "NVLink4", "NVLink5", "PCIe4", "PCIe5", "InfiniBand_HDR",
                "InfiniBand_NDR", "InfiniBand_XDR", "RoCE_400G", "RoCE_800G", "Ethernet_100G",
                "TPU_v4_ICI", "TPU_v5p_ICI", "AMD_Infinity_Fabric"],
    "nodes": ["DGX_A100", "DGX_H100", "HGX_H200", "DGX_B200", "GB200_NVL72", "MI300X_Platform",
              "TPU_v4_Slice", "TPU_v5p_Slice"],
}


@pytest.mark.parametrize("key", REQUIRED["fabrics"])
def test_required_fabric_present(key):
    assert Fabrics.get(key).key == key


@pytest.mark.parametrize("key", REQUIRED["nodes"])
def test_required_node_present(key):
    assert Nodes.get(key).key == key


@pytest.mark.parametrize("spec", FABRICS + NODES + CLUSTERS, ids=lambda s: s.key)
def test_entry_has_source_url_and_as_of(spec):
    assert spec.source.startswith("https://"), spec.source
    assert spec.as_of.strip() and spec.as_of != "n/a"
    for field, url in spec.field_sources.items():
        assert url.startswith("https://"), (field, url)
    if spec.estimate:
        assert spec.notes and spec.notes.strip()


def test_cluster_sizes_span_256_to_100k_accelerators():
    sizes = sorted(c.total_accelerators for c in CLUSTERS)
    assert sizes[0] <= 256 and sizes[-1] >= 100_000


def test_lookup_by_alias_and_across_registries():
    assert Fabrics.get("NDR") is Fabrics.InfiniBand_NDR
    assert Fabrics.get("nvlink 4") is Fabrics.NVLink4
    assert mlsysim.Systems.get("DGX H100") is Nodes.DGX_H100
    assert mlsysim.Systems.get("Colossus") is Clusters.xAI_Colossus_100K


# ----------------------------------------------------------------------------- fabrics by hand

@pytest.mark.parametrize("key, link_gbs, links, device_gbs", [
    ("NVLink3", 25, 12, 300),           # 600 GB/s both ways / 2; 12 x 25 = 300
    ("NVLink4", 25, 18, 450),           # 900 GB/s both ways / 2; 18 x 25 = 450
    ("NVLink5", 50, 18, 900),           # 1.8 TB/s both ways / 2; 18 x 50 = 900
    ("AMD_Infinity_Fabric", 64, 7, 448),  # 128 GB/s bidi per link / 2; 7 x 64 = 448
    ("TPU_v4_ICI", 50, 6, 300),         # 2,400 Gbps = 300 GB/s per chip; / 6 links
    ("TPU_v5p_ICI", 100, 6, 600),       # 1,200 GB/s bidi per chip / 2 = 600; / 6 links
    ("PCIe4", 32, 1, 32),               # x16 Gen4 "64 GB/s" both ways / 2
    ("PCIe5", 64, 1, 64),               # x16 Gen5 "128 GB/s" both ways / 2
    ("InfiniBand_HDR", 25, 1, 25),      # 200 Gb/s / 8
    ("InfiniBand_NDR", 50, 1, 50),      # 400 Gb/s / 8
    ("InfiniBand_XDR", 100, 1, 100),    # 800 Gb/s / 8
    ("RoCE_400G", 50, 1, 50),           # 400 Gb/s / 8
    ("RoCE_800G", 50, 2, 100),          # ConnectX-8: 2 x 400 GbE = 2 x 50 GB/s
    ("Ethernet_100G", 12.5, 1, 12.5),   # 100 Gb/s / 8
    ("TPU_v5p_DCN", 6.25, 1, 6.25),     # 50 Gbps per chip / 8
])
def test_fabric_bandwidth_by_hand(key, link_gbs, links, device_gbs):
    f = Fabrics.get(key)
    assert gbs(f.bandwidth) == pytest.approx(link_gbs)
    assert f.links_per_device == links
    assert gbs(f.device_bandwidth) == pytest.approx(device_gbs)


def test_nvlink4_matches_h100_interconnect():
    # 18 links x 25 GB/s = 450 GB/s each way = the H100's "900 GB/s" NVLink halved.
    assert gbs(Fabrics.NVLink4.device_bandwidth) == pytest.approx(450)
    h100 = mlsysim.Hardware.H100.interconnect.bandwidth
    assert gbs(Fabrics.NVLink4.device_bandwidth) == pytest.approx(gbs(h100))


@pytest.mark.parametrize("key, scope", [
    ("NVLink3", "scale_up"), ("NVLink4", "scale_up"), ("NVLink5", "scale_up"),
    ("AMD_Infinity_Fabric", "scale_up"), ("TPU_v4_ICI", "scale_up"), ("TPU_v5p_ICI", "scale_up"),
    ("PCIe4", "host"), ("PCIe5", "host"),
    ("InfiniBand_HDR", "scale_out"), ("InfiniBand_NDR", "scale_out"),
    ("InfiniBand_XDR", "scale_out"), ("RoCE_400G", "scale_out"), ("RoCE_800G", "scale_out"),
    ("Ethernet_100G", "scale_out"),
])
def test_fabric_scope(key, scope):
    assert Fabrics.get(key).scope == scope


def test_vendor_fabrics_and_published_limits():
    vendors = {f.key: f.vendor for f in FABRICS if f.vendor}
    assert vendors.items() >= {
        "NVLink3": "NVIDIA", "NVLink4": "NVIDIA", "NVLink5": "NVIDIA",
        "AMD_Infinity_Fabric": "AMD", "TPU_v4_ICI": "Google", "TPU_v5p_ICI": "Google"}.items()
    assert Fabrics.NVLink5.max_endpoints == 576          # NVIDIA: up to 576 GPUs per domain
    assert Fabrics.NVLink4.max_endpoints == 256          # NVLink Switch System
    assert Fabrics.TPU_v5p_ICI.max_endpoints == 8960     # v5p pod
    assert Fabrics.NVLink4.in_network_reduction == Fabrics.NVLink5.in_network_reduction == "NVLS"
    assert Fabrics.InfiniBand_NDR.in_network_reduction == "SHARP"
    assert (Fabrics.PCIe5.topology, Fabrics.TPU_v5p_ICI.topology,
            Fabrics.AMD_Infinity_Fabric.topology) == ("bus", "torus", "mesh")


# ----------------------------------------------------------------------------- nodes by hand

def test_dgx_h100_scale_out_bandwidth():
    # 8 NICs x 50 GB/s (NDR 400 Gb/s) / 8 GPUs = 50 GB/s per GPU each way.
    n = Nodes.DGX_H100
    assert (n.nics_per_node, n.nic_fabric.key) == (8, "InfiniBand_NDR")
    assert gbs(n.scale_out_bandwidth) == pytest.approx(50)


def test_dgx_a100_scale_out_bandwidth():
    # 8 NICs x 25 GB/s (HDR 200 Gb/s) / 8 GPUs = 25 GB/s per GPU.
    assert gbs(Nodes.DGX_A100.scale_out_bandwidth) == pytest.approx(25)


def test_gb200_nvl72_is_one_72_gpu_domain():
    # 18 compute trays x 4 GPUs = 72 GPUs on one NVLink 5 domain; 18 x 4 NICs = 72 NICs,
    # so 72 x 50 GB/s / 72 = 50 GB/s per GPU off the rack.
    n = Nodes.GB200_NVL72
    assert (n.accelerator.key, n.accelerators_per_node, n.domain) == ("GB200", 72, 72)
    assert gbs(n.scale_out_bandwidth) == pytest.approx(50)


def test_tpu_slices_reach_past_the_host():
    # ICI spans hosts: a 4-chip host's domain is the slice, not 4.
    assert Nodes.TPU_v4_Slice.domain == 4096          # v4 pod
    assert Nodes.TPU_v5p_Slice.domain == 6144         # largest v5p single slice, 16x16x24
    # DCN: 4 per-chip shares x 6.25 GB/s / 4 chips = 6.25 GB/s = 50 Gbps per chip.
    assert gbs(Nodes.TPU_v5p_Slice.scale_out_bandwidth) == pytest.approx(6.25)


@pytest.mark.parametrize("key, system_kw, gpus, tdp_w, host_kw", [
    ("DGX_A100", 6.5, 8, 400, 3.3),     # 6,500 - 8 x 400 = 3,300 W
    ("DGX_H100", 10.2, 8, 700, 4.6),    # 10,200 - 8 x 700 = 4,600 W
    ("DGX_H200", 10.2, 8, 700, 4.6),    # 10,200 - 8 x 700 = 4,600 W
    ("DGX_B200", 14.3, 8, 1000, 6.3),   # 14,300 - 8 x 1,000 = 6,300 W
])
def test_host_power_is_system_power_minus_accelerators(key, system_kw, gpus, tdp_w, host_kw):
    n = Nodes.get(key)
    assert watts(n.system_power) == pytest.approx(system_kw * 1e3)
    assert watts(n.accelerator.tdp) == tdp_w and n.accelerators_per_node == gpus
    assert watts(n.host_power) == pytest.approx(host_kw * 1e3)


@pytest.mark.parametrize("node", [n for n in NODES if n.host_power and n.system_power],
                         ids=lambda n: n.key)
def test_every_host_power_is_the_stated_derivation(node):
    tdp = watts(node.accelerator.tdp)
    assert watts(node.host_power) == pytest.approx(
        watts(node.system_power) - node.accelerators_per_node * tdp)


@pytest.mark.parametrize("node", NODES, ids=lambda n: n.key)
def test_node_intra_fabric_matches_its_accelerator(node):
    """Cross-file check: the node's scale-up fabric moves what the chip's datasheet says."""
    fab, ic = node.intra_node_fabric, node.accelerator.interconnect
    assert gbs(fab.device_bandwidth) == pytest.approx(gbs(ic.bandwidth))
    if ic.fabric is not None:
        assert ic.fabric == fab.key
    if fab.vendor:
        assert fab.vendor == node.accelerator.vendor
    if fab.max_endpoints:
        assert node.accelerators_per_node <= fab.max_endpoints


# ----------------------------------------------------------------------------- clusters

@pytest.mark.parametrize("fleet", CLUSTERS, ids=lambda c: c.key)
def test_total_accelerators_is_count_times_per_node(fleet):
    assert fleet.total_accelerators == fleet.count * fleet.node.accelerators_per_node
    assert fleet.fabric is not None and fleet.fabric.scope == "scale_out"


@pytest.mark.parametrize("key, count, per_node, total", [
    ("DGX_H100_SuperPOD_256", 32, 8, 256),        # 32 x 8 = 256
    ("DGX_H100_SuperPOD_4SU", 127, 8, 1016),      # 127 x 8 = 1,016
    ("Meta_GenAI_RoCE_24K", 3072, 8, 24576),      # 3,072 x 8 = 24,576
    ("xAI_Colossus_100K", 12500, 8, 100000),      # 12,500 x 8 = 100,000
    ("DGX_GB200_SuperPOD_1SU", 8, 72, 576),       # 8 racks x 72 = 576
    ("TPU_v5p_Pod", 2240, 4, 8960),               # 2,240 hosts x 4 = 8,960
])
def test_cluster_totals_by_hand(key, count, per_node, total):
    c = Clusters.get(key)
    assert (c.count, c.node.accelerators_per_node, c.total_accelerators) == (count, per_node, total)


def test_fleet_fabric_defaults_to_node_nics_and_can_be_overridden():
    assert Clusters.DGX_H100_SuperPOD_256.fabric is Fabrics.InfiniBand_NDR
    ib = Clusters.Meta_GenAI_IB_24K
    assert ib.node.nic_fabric is Fabrics.RoCE_400G and ib.fabric is Fabrics.InfiniBand_NDR


def test_published_topology_and_oversubscription():
    assert Clusters.DGX_H100_SuperPOD_256.effective_topology == "rail_optimized"
    assert Clusters.Meta_GenAI_RoCE_24K.effective_oversubscription == 7.0   # Llama 3: 1:7
    assert Clusters.Meta_RSC_Phase1.effective_oversubscription == 1.0       # "no oversubscription"
    # The NVL72 fleet's collectives stay on NVLink up to one rack: min(72, 8 x 72) = 72.
    assert Clusters.DGX_GB200_SuperPOD_1SU.scale_up_domain == 72


# ----------------------------------------------------------------------------- hardware links

def test_every_chip_fabric_names_an_existing_fabric():
    named = {h.key: h.interconnect.fabric for h in HARDWARE
             if h.interconnect is not None and h.interconnect.fabric}
    assert named, "no chip names its fabric"
    for chip, fab in named.items():
        assert fab in Fabrics.names(), (chip, fab)


@pytest.mark.parametrize("chip", [h for h in HARDWARE
                                  if h.interconnect is not None and h.interconnect.fabric],
                         ids=lambda h: h.key)
def test_chip_fabric_agrees_with_chip(chip):
    fab = Fabrics.get(chip.interconnect.fabric)
    assert gbs(fab.device_bandwidth) == pytest.approx(gbs(chip.interconnect.bandwidth))
    if fab.vendor:
        assert fab.vendor == chip.vendor


@pytest.mark.parametrize("key, fabric", [
    ("A100", "NVLink3"), ("A100_40GB", "NVLink3"), ("H100", "NVLink4"), ("H200", "NVLink4"),
    ("GH200", "NVLink4"), ("B200", "NVLink5"), ("GB200", "NVLink5"), ("L4", "PCIe4"),
    ("L40S", "PCIe4"), ("A10G", "PCIe4"), ("RTX4090", "PCIe4"), ("MI300X", "AMD_Infinity_Fabric"),
    ("MI325X", "AMD_Infinity_Fabric"), ("TPUv4", "TPU_v4_ICI"), ("TPUv5p", "TPU_v5p_ICI"),
])
def test_chip_fabric_assignment(key, fabric):
    assert mlsysim.Hardware.get(key).interconnect.fabric == fabric


@pytest.mark.parametrize("key", ["A100_PCIe", "H100_PCIe", "H100_NVL", "V100", "T4", "MI250X"])
def test_chips_outside_the_fabric_zoo_name_none(key):
    # NVLink bridges, NVLink 2, PCIe Gen3 and CDNA 2 Infinity Fabric have no zoo fabric.
    assert mlsysim.Hardware.get(key).interconnect.fabric is None


# ----------------------------------------------------------------------------- bad input

@pytest.mark.parametrize("count", [0, 2.5, True, "4", -1])
def test_fleet_count_must_be_a_positive_int(count):
    with pytest.raises(SpecError, match="count"):
        Fleet(name="bad", node="DGX_H100", count=count)


def test_scale_out_fabric_cannot_be_intra_node():
    with pytest.raises(SpecError, match="scale-out fabric"):
        Node(name="bad", accelerator="H100", accelerators_per_node=8,
             intra_node_fabric="InfiniBand_NDR")


def test_nvlink_on_an_amd_accelerator_is_refused():
    with pytest.raises(SpecError, match="NVIDIA parts only"):
        Node(name="bad", accelerator="MI300X", accelerators_per_node=8,
             intra_node_fabric="NVLink4")


def test_unknown_fabric_name_suggests_the_close_one():
    with pytest.raises(UnknownNameError) as err:
        Node(name="bad", accelerator="H100", accelerators_per_node=8, intra_node_fabric="NVLnk4")
    assert "NVLink4" in err.value.suggestions
    with pytest.raises(UnknownNameError) as err:
        Fabrics.get("InfiniBand_NRD")
    assert "InfiniBand_NDR" in err.value.suggestions


@pytest.mark.parametrize("field, value", [
    ("bandwidth", "nan GB/s"), ("bandwidth", "-50 GB/s"), ("bandwidth", "0 GB/s"),
    ("latency", "nan us"), ("latency", "-1 us"),
])
def test_fabric_rejects_nan_and_negative_quantities(field, value):
    kw = {"bandwidth": "50 GB/s", field: value}
    with pytest.raises(SpecError, match=field):
        NetworkFabric(name="bad", **kw)


def test_fabric_bandwidth_needs_a_bandwidth_unit():
    with pytest.raises(DimensionError, match="bandwidth"):
        NetworkFabric(name="bad", bandwidth="50 TFLOP/s")
    with pytest.raises(SpecError, match="bandwidth"):
        NetworkFabric(name="bad", bandwidth=50)


def test_fabric_and_fleet_limits():
    with pytest.raises(SpecError, match="576 endpoints"):      # NVLink 5's published domain
        Node(name="bad", accelerator="GB200", accelerators_per_node=600,
             intra_node_fabric="NVLink5")
    with pytest.raises(SpecError, match="scale_up fabric"):    # NVLink is not an inter-node net
        Fleet(name="bad", node="DGX_H100", count=4, fabric="NVLink4")
    with pytest.raises(SpecError, match="needs an inter-node fabric"):
        Fleet(name="bad", node="MI300X_Platform", count=2)
    with pytest.raises(SpecError, match="links_per_device"):
        NetworkFabric(name="bad", bandwidth="50 GB/s", links_per_device=0)
