"""Systems above a chip: network fabrics, nodes and fleets.

A *system* is what a workload runs on:

- a chip (:class:`~mlsysim.specs.hardware.HardwareSpec`): one device, or the group its own
  scale-up interconnect reaches (``interconnect.max_devices``), kept for the calls that work
  today (``ServingModel().solve(..., "H100", tp_size=4)``);
- a :class:`Node`: ``accelerators_per_node`` chips joined by an intra-node (scale-up) fabric,
  with NICs onto a scale-out fabric, a host CPU and memory, and the power of its
  non-accelerator parts;
- a :class:`Fleet`: ``count`` nodes (nodes, not GPUs) on an inter-node fabric with a topology,
  optionally in a region and datacenter, with an MTBF.

Bandwidths are **per direction**: NVLink 4's "900 GB/s" is 18 links x 25 GB/s each way;
InfiniBand NDR's "400 Gb/s" is one port, 50 GB/s each way. The *scale-up domain* is the set of
accelerators one collective can reach without leaving the scale-up fabric (8 in a DGX H100,
72 in a GB200 NVL72 rack, a whole slice on TPU ICI).

Zoo entries carry ``source`` and ``as_of`` like every spec; specs that users build in code
default to ``source="user-defined"``. Left out: switch radix and cable lengths, adaptive
routing, congestion; the collective model (:mod:`mlsysim.core.collectives`) reads a fabric's
bandwidth, latency and in-network reduction and nothing finer.
"""

from __future__ import annotations

from functools import cached_property
from typing import Annotated, Any, Literal

from pydantic import BeforeValidator, Field, model_validator

from .base import QuantityOf, Sourced
from .hardware import HardwareSpec, PriceSpec

__all__ = ["NetworkFabric", "Node", "Fleet", "FabricScope", "FabricTopology", "FleetTopology",
           "fabric_from_interconnect"]

FabricScope = Literal["scale_up", "scale_out", "host"]
# How a fabric's endpoints are joined: through switches (NVSwitch, an IB or Ethernet switch
# tier), a ring or torus of direct links (TPU ICI), a full mesh of direct links (AMD Infinity
# Fabric among 8 OAMs), or a shared host bus (PCIe).
FabricTopology = Literal["switched", "fat_tree", "rail_optimized", "torus", "dragonfly",
                         "mesh", "ring", "bus"]
FleetTopology = Literal["fat_tree", "rail_optimized", "torus", "dragonfly", "single_switch"]

PosInt = Annotated[int, Field(gt=0, strict=True)]
NonNegInt = Annotated[int, Field(ge=0, strict=True)]
Key = Annotated[str, Field(pattern=r"^[A-Za-z_][A-Za-z0-9_]*$")]


def _by_name(registry: str):
    """Accept a zoo name where a spec is expected; unknown names raise UnknownNameError with
    the closest matches (it is not a ValueError, so pydantic lets it through unchanged)."""

    def resolve(value: Any) -> Any:
        if isinstance(value, str):
            from .. import zoo
            return getattr(zoo, registry).get(value)
        return value

    return BeforeValidator(resolve)


class _SystemSpec(Sourced):
    """Specs users also build in code: provenance defaults to 'user-defined'; zoo entries have
    a ``key`` (their registry name)."""

    key: Key | None = None
    name: str
    aliases: list[str] = []
    source: str = "user-defined"
    as_of: str = "n/a"



class NetworkFabric(_SystemSpec):
    """One kind of link between accelerators (or nodes), as published.

    ``bandwidth`` is one link's per-direction bandwidth and ``links_per_device`` how many such
    links each endpoint has, so ``device_bandwidth`` is what one accelerator (or NIC) can push
    each way. ``latency`` is the published one-way port-to-port latency where one exists; the
    collective model fits its per-step latency to NCCL measurements and uses this only where a
    fabric has none. ``in_network_reduction`` names switch-side reduction (NVLink SHARP =
    NCCL's NVLS, InfiniBand SHARP), which all-reduce can use instead of a ring.
    """

    group: Literal["Fabric"] = "Fabric"
    scope: FabricScope = "scale_out"
    topology: FabricTopology = "switched"
    bandwidth: QuantityOf("byte/s")
    links_per_device: PosInt = 1
    latency: QuantityOf("s") | None = None
    in_network_reduction: Literal["NVLS", "SHARP"] | None = None
    oversubscription_ratio: float = Field(default=1.0, ge=1.0, allow_inf_nan=False)
    max_endpoints: PosInt | None = None     # largest domain the fabric can join
    vendor: str | None = None               # set where only one vendor's parts attach
    calibration: str | None = None          # fabric key whose NCCL fit applies (default: key)

    @property
    def device_bandwidth(self):
        """Per-direction bandwidth of one endpoint: ``bandwidth * links_per_device``."""
        return (self.bandwidth * self.links_per_device).to("GB/s")

    @cached_property
    def _base(self) -> dict[str, float]:
        return {"device_bandwidth": float(self.bandwidth.to("byte/s").magnitude)
                * self.links_per_device,
                "latency": (None if self.latency is None
                            else float(self.latency.to("s").magnitude))}

    @property
    def calibration_key(self) -> str | None:
        return self.calibration or self.key

    def __repr__(self) -> str:
        return f"NetworkFabric({self.key or self.name}: {self.device_bandwidth:.4g~P} per device)"

    def __str__(self) -> str:
        return self.name


class Node(_SystemSpec):
    """``accelerators_per_node`` chips on an intra-node fabric, NICs, host CPU and memory.

    ``scale_up_domain``: accelerators reachable on the intra-node fabric (default: this node's
    own; larger where the scale-up fabric spans several hosts, as TPU ICI does).
    ``host_power``: the non-accelerator parts (CPUs, memory, NICs, fans) at load, from the
    datasheet's system power minus the accelerators' TDP where only that is published.
    ``intra_node_bw`` (the incumbent's keyword) builds an unnamed switched scale-up fabric of
    that per-direction bandwidth when no ``intra_node_fabric`` is given.
    """

    group: Literal["Node"] = "Node"
    accelerator: Annotated[HardwareSpec, _by_name("Hardware")]
    accelerators_per_node: PosInt
    intra_node_fabric: Annotated[NetworkFabric, _by_name("Fabrics")] | None = None
    intra_node_bw: QuantityOf("byte/s") | None = None
    scale_up_domain: PosInt | None = None
    nics_per_node: NonNegInt = 0
    nic_fabric: Annotated[NetworkFabric, _by_name("Fabrics")] | None = None
    host_cpu: str | None = None
    host_memory: QuantityOf("byte") | None = None
    host_power: QuantityOf("W", allow_zero=True) | None = None
    system_power: QuantityOf("W") | None = None
    price: PriceSpec | None = None

    @model_validator(mode="before")
    @classmethod
    def _fabric_from_bw(cls, data: Any) -> Any:
        if isinstance(data, dict) and data.get("intra_node_fabric") is not None \
                and data.get("intra_node_bw") is not None:
            raise ValueError("give intra_node_fabric or intra_node_bw, not both")
        if isinstance(data, dict) and data.get("intra_node_fabric") is None \
                and data.get("intra_node_bw") is not None:
            data = {**data, "intra_node_fabric": NetworkFabric(
                name=f"{data.get('name', 'node')} intra-node link", scope="scale_up",
                bandwidth=data["intra_node_bw"])}
        return data

    @model_validator(mode="after")
    def _fabrics_fit(self):
        fab, n = self.intra_node_fabric, self.accelerators_per_node
        if n > 1 and fab is None:
            raise ValueError(f"a node of {n} accelerators needs an intra_node_fabric "
                             "(or intra_node_bw)")
        if fab is not None:
            if fab.scope == "scale_out":
                raise ValueError(f"intra_node_fabric '{fab.name}' is a scale-out fabric; use "
                                 "a scale-up or host fabric (NVLink, Infinity Fabric, PCIe)")
            if fab.vendor and fab.vendor != self.accelerator.vendor:
                raise ValueError(f"intra_node_fabric '{fab.name}' joins {fab.vendor} parts "
                                 f"only; {self.accelerator.name} is made by "
                                 f"{self.accelerator.vendor}")
            if fab.max_endpoints is not None and self.domain > fab.max_endpoints:
                raise ValueError(f"a scale-up domain of {self.domain} exceeds the "
                                 f"{fab.max_endpoints} endpoints '{fab.name}' can join")
            ic = self.accelerator.interconnect
            if fab.scope == "scale_up" and ic is not None and \
                    fab._base["device_bandwidth"] > float(ic.bandwidth.to("byte/s").magnitude) \
                    * (1 + 1e-9):
                raise ValueError(f"intra_node_fabric '{fab.name}' moves "
                                 f"{fab.device_bandwidth.magnitude:.4g} GB/s per device, more "
                                 f"than the {ic.bandwidth.to('GB/s').magnitude:.4g} GB/s "
                                 f"{self.accelerator.name}'s own links carry")
        if self.scale_up_domain is not None and self.scale_up_domain < n:
            raise ValueError(f"scale_up_domain (={self.scale_up_domain}) must be at least "
                             f"accelerators_per_node (={n})")
        if self.domain > 1 and fab is None:
            raise ValueError(f"scale_up_domain (={self.domain}) reaches accelerators beyond "
                             "this one only over an intra_node_fabric (or intra_node_bw); give "
                             "one, or leave scale_up_domain out")
        if self.nics_per_node and self.nic_fabric is None:
            raise ValueError(f"nics_per_node (={self.nics_per_node}) needs a nic_fabric")
        if self.nic_fabric is not None:
            if self.nic_fabric.scope != "scale_out":
                raise ValueError(f"nic_fabric '{self.nic_fabric.name}' must be a scale-out "
                                 f"fabric, not {self.nic_fabric.scope}")
            if not self.nics_per_node:
                raise ValueError("nic_fabric is set but nics_per_node is 0")
        return self

    @property
    def domain(self) -> int:
        """Accelerators one scale-up collective can reach from this node."""
        return self.scale_up_domain or self.accelerators_per_node

    @property
    def scale_out_bandwidth(self):
        """Per-direction scale-out bandwidth per accelerator: NICs x port bandwidth / GPUs."""
        if self.nic_fabric is None:
            return None
        return (self.nic_fabric.device_bandwidth * self.nics_per_node
                / self.accelerators_per_node).to("GB/s")

    def __repr__(self) -> str:
        return (f"Node({self.key or self.name}: {self.accelerators_per_node} x "
                f"{self.accelerator.key})")

    def __str__(self) -> str:
        return self.name


class Fleet(_SystemSpec):
    """``count`` nodes (nodes, as users already write) on an inter-node ``fabric``.

    ``fabric`` defaults to the node's NIC fabric; ``topology`` and ``oversubscription_ratio``
    to the fabric's. A fleet of more than one node needs one.
    """

    group: Literal["Cluster"] = "Cluster"
    node: Annotated[Node, _by_name("Nodes")]
    # Nodes, not accelerators. The largest published clusters hold ~10^5 accelerators; a
    # million nodes is far past any and keeps the arithmetic honest.
    count: Annotated[int, Field(gt=0, le=1_000_000, strict=True)]
    fabric: Annotated[NetworkFabric, _by_name("Fabrics")] | None = None
    topology: FleetTopology | None = None
    oversubscription_ratio: float | None = Field(default=None, ge=1.0, allow_inf_nan=False)
    region: str | None = None
    datacenter: str | None = None
    mtbf_hours: float | None = Field(default=None, gt=0, allow_inf_nan=False)

    @model_validator(mode="before")
    @classmethod
    def _default_fabric(cls, data: Any) -> Any:
        if isinstance(data, dict) and data.get("fabric") is None:
            node = data.get("node")
            if isinstance(node, str):
                from ..zoo import Nodes
                node = Nodes.get(node)
            if isinstance(node, Node) and node.nic_fabric is not None:
                data = {**data, "node": node, "fabric": node.nic_fabric}
        return data

    @model_validator(mode="after")
    def _fabric_needed(self):
        if self.fabric is None and self.count > 1:
            raise ValueError(f"a fleet of {self.count} nodes needs an inter-node fabric; "
                             f"{self.node.name} has no nic_fabric, so give fabric=")
        if self.fabric is not None and self.fabric.scope != "scale_out":
            raise ValueError(f"fabric '{self.fabric.name}' is a {self.fabric.scope} fabric; "
                             "nodes are joined by a scale-out fabric (InfiniBand, Ethernet)")
        if self.fabric is not None and self.count > 1 and not self.node.nics_per_node:
            # The fabric's bandwidth is per port: without NICs it reaches no accelerator.
            raise ValueError(f"node '{self.node.name}' has nics_per_node=0, so fabric "
                             f"'{self.fabric.name}' reaches none of its accelerators; give "
                             "Node(..., nics_per_node=N), e.g. one per accelerator as a DGX "
                             "H100 has 8")
        return self

    @property
    def num_nodes(self) -> int:
        return self.count

    @property
    def total_accelerators(self) -> int:
        return self.count * self.node.accelerators_per_node

    @property
    def scale_up_domain(self) -> int:
        """Accelerators one collective reaches on the scale-up fabric alone."""
        return min(self.node.domain, self.total_accelerators)

    @property
    def accelerator(self) -> HardwareSpec:
        return self.node.accelerator

    @property
    def effective_topology(self) -> str:
        if self.topology:
            return self.topology
        if self.fabric is not None and self.fabric.topology in ("fat_tree", "rail_optimized",
                                                                 "torus", "dragonfly"):
            return self.fabric.topology
        return "fat_tree" if self.count > 1 else "single_switch"

    @property
    def effective_oversubscription(self) -> float:
        if self.oversubscription_ratio is not None:
            return self.oversubscription_ratio
        return self.fabric.oversubscription_ratio if self.fabric is not None else 1.0

    def __repr__(self) -> str:
        return (f"Fleet({self.key or self.name}: {self.count} x {self.node.key or self.node.name}"
                f" = {self.total_accelerators} {self.accelerator.key})")

    def __str__(self) -> str:
        return self.name


def fabric_from_interconnect(hw: HardwareSpec) -> NetworkFabric | None:
    """The scale-up fabric a bare chip brings: its own interconnect's per-direction bandwidth,
    calibrated as the zoo fabric it names (``interconnect.fabric``)."""
    ic = hw.interconnect
    if ic is None:
        return None
    return NetworkFabric(
        name=ic.name, scope="scale_up", topology="switched", bandwidth=ic.bandwidth,
        max_endpoints=ic.max_devices, calibration=ic.fabric,
        source=hw.source, as_of=hw.as_of)
