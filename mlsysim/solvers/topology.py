"""What a network topology gives the nodes it joins: injection bandwidth, bisection bandwidth,
the bandwidth each node keeps under uniform all-to-all traffic, and hop counts.

Every link of ``fabric`` carries ``b = fabric.bandwidth`` per direction; a node injects
``B = nics_per_node x fabric.device_bandwidth``. Bandwidths are per direction. Hops count the
links a message crosses (for switched networks including the two endpoint links), averaged over
ordered pairs of distinct endpoints placed in order (filling a leaf, a pod or a group before the
next). Topologies::

  fat_tree        folded Clos of radix-k switches (Leiserson 1985; Al-Fares et al. 2008):
                  L tiers hold 2 (k/2)^L ports, L the fewest that fit E = N x nics ports
                  (L = 1: one switch, E <= k); a level-l subtree holds (k/2)^l ports and two
                  ports whose lowest common switch is at tier l are 2 l links apart.
                  bisection = floor(N/2) x B / oversubscription
  rail_optimized  one fat tree per NIC rank (a rail), each joining N ports; as fat_tree with
                  E = N per rail (hops within a rail; cross-rail traffic goes over NVLink first)
  single_switch   one non-blocking switch: 2 hops, bisection floor(N/2) x B
  torus           k-ary n-cube with wraparound, shape a_1 x ... x a_n = N (Dally & Towles 2004,
                  "Principles and Practices of Interconnection Networks", sec. 3.3 and 5.2):
                  bisection = 2 N / a_max links (each of the N / a_max rings along the longest
                  dimension is cut twice), x b; average distance per ring a/4 (a even) or
                  (a^2 - 1)/(4a) (odd), summed over dimensions and scaled by N/(N - 1) to
                  exclude a node and itself; diameter = sum floor(a_i / 2)
  dragonfly       groups of a routers, p terminals and h global links per router, all-to-all
                  local links (Kim, Dally, Scott & Abts 2008, "Technology-Driven, Highly-Scalable
                  Dragonfly Topology", ISCA, sec. 3): balanced a = 2p = 2h unless
                  dragonfly_shape is given, up to a p (a h + 1) terminals in g = ceil(E / (a p))
                  groups; minimal routes cross 2 links within a router, 3 within a group and
                  2 + 1 + 2 (1 - 1/a) = 5 - 2/a between groups (the global link starts or ends at
                  the source or destination router with probability 1/a each).
                  bisection = the g a h / 2 global links x the share of group pairs split by
                  halving the groups, floor(g/2) ceil(g/2) / (g (g - 1) / 2), x b

``uniform_traffic_bw``: under uniform random traffic half of each node's traffic crosses the
bisection, so a node keeps ``min(B / oversubscription, 4 x bisection / N)`` (Dally & Towles
eq. 3.5: a torus of side k gives 8 b / k).

Left out: routing (minimal routes only, no adaptive or Valiant routing), congestion and
collectives (:mod:`mlsysim.core.collectives` costs those), oversubscription's effect on the
switch count of a tree, partially filled dragonfly groups (the bisection counts g full
groups), link latency, and the traffic between the NICs of one node.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

from ..core import validate as check
from ..core.contract import REQUIRED, ForwardModel, Option, Result
from ..errors import ValidationError, closest
from ..specs.system import Fleet, NetworkFabric
from ..units import Q_

__all__ = ["TopologyModel", "TopologyResult", "TOPOLOGIES", "fat_tree_hops", "torus_hops",
           "dragonfly_hops", "balanced_torus_shape"]

OWNER = "TopologyModel"
TOPOLOGIES = ("fat_tree", "rail_optimized", "single_switch", "torus", "dragonfly")
# A fabric's own topology word -> the topology modelled here.
_FROM_FABRIC = {"fat_tree": "fat_tree", "rail_optimized": "rail_optimized",
                "switched": "single_switch", "single_switch": "single_switch",
                "torus": "torus", "dragonfly": "dragonfly"}
# NVIDIA Quantum-2 QM9700 (the zoo's InfiniBand NDR switch) has 64 NDR ports, as do 51.2 Tb/s
# Ethernet switches at 800G split in two (Tomahawk 5, Spectrum-4 SN5600 at 64 x 800G).
DEFAULT_SWITCH_RADIX = 64


# --- pairs and hops (pure functions on counts) ----------------------------------------------
def _pairs_within(endpoints: int, group: int) -> int:
    """Ordered pairs of distinct endpoints sharing a group when ``endpoints`` fill groups of
    ``group`` in order."""
    full, rest = divmod(endpoints, group)
    return full * group * (group - 1) + rest * (rest - 1)


def fat_tree_tiers(endpoints: int, radix: int) -> int:
    """Fewest tiers of radix-k switches whose folded Clos holds ``endpoints`` ports:
    1 if E <= k, else the least L with 2 (k/2)^L >= E (Al-Fares et al. 2008: k^3/4 at L=3)."""
    if endpoints <= radix:
        return 1
    half, tiers = radix // 2, 2
    while 2 * half ** tiers < endpoints:
        tiers += 1
    return tiers


def fat_tree_hops(endpoints: int, radix: int) -> tuple[float, int, int]:
    """(average links between distinct ports, diameter in links, tiers) of a packed fat tree.

    >>> avg, diameter, tiers = fat_tree_hops(2048, 64)  # 2 tiers: 32 ports per leaf
    >>> round(avg, 4), diameter, tiers                # 4 - 2 * 31/2047
    (3.9697, 4, 2)
    """
    if endpoints == 1:
        return 0.0, 0, 1
    tiers = fat_tree_tiers(endpoints, radix)
    total = endpoints * (endpoints - 1)
    half = radix // 2
    below, weighted, diameter = 0, 0.0, 0
    for level in range(1, tiers + 1):
        within = total if level == tiers else _pairs_within(endpoints, half ** level)
        if within > below:
            weighted += 2 * level * (within - below)
            diameter = 2 * level
        below = within
    return weighted / total, diameter, tiers


def torus_hops(shape: tuple[int, ...]) -> tuple[float, int]:
    """(average links between distinct nodes, diameter) of a torus with wraparound.

    >>> avg, diameter = torus_hops((8, 8, 8))        # 3 x 8/4 = 6, times 512/511
    >>> round(avg, 4), diameter
    (6.0117, 12)
    """
    n = math.prod(shape)
    if n == 1:
        return 0.0, 0
    mean_all = sum(a / 4 if a % 2 == 0 else (a * a - 1) / (4 * a) for a in shape)
    return mean_all * n / (n - 1), sum(a // 2 for a in shape)


def dragonfly_hops(endpoints: int, p: int, a: int) -> tuple[float, int]:
    """(average links between distinct terminals, diameter) with minimal routing."""
    if endpoints == 1:
        return 0.0, 0
    total = endpoints * (endpoints - 1)
    router = _pairs_within(endpoints, p)
    group = _pairs_within(endpoints, a * p)
    avg = (2 * router + 3 * (group - router) + (5 - 2 / a) * (total - group)) / total
    diameter = 2 if endpoints <= p else 3 if endpoints <= a * p else (5 if a > 1 else 3)
    return avg, diameter


def balanced_torus_shape(nodes: int, dims: int = 3) -> tuple[int, ...]:
    """The ``dims``-dimensional factorization of ``nodes`` with the smallest longest side
    (then the smallest next one), sides in increasing order.

    >>> balanced_torus_shape(512), balanced_torus_shape(6144)
    ((8, 8, 8), (16, 16, 24))
    """
    def best(n: int, d: int, lo: int) -> tuple[int, ...] | None:
        if d == 1:
            return (n,) if n >= lo else None
        winner = None
        side = lo
        while side ** d <= n:
            if n % side == 0:
                rest = best(n // side, d - 1, side)
                if rest is not None:
                    cand = (side, *rest)
                    if winner is None or cand[::-1] < winner[::-1]:
                        winner = cand
            side += 1
        return winner

    return best(nodes, dims, 1) or (nodes,)


# --- the result -----------------------------------------------------------------------------
@dataclass(frozen=True, eq=False, repr=False)
class TopologyResult(Result):
    """The network ``num_nodes`` nodes see on ``fabric`` in ``topology``. byte/s inside; the
    properties give quantities (``result.bisection_bw.to('TB/s')``)."""

    fabric: NetworkFabric
    topology: str
    num_nodes: int
    nics_per_node: int
    endpoints: int                  # ports (fat tree, dragonfly), per rail, or torus nodes
    link_bps: float                 # one link per direction
    injection_bps: float            # one node: nics x device bandwidth
    oversubscription: float
    bisection_links: float
    bisection_bps: float
    hops_avg: float
    diameter: int
    tiers: int | None               # fat trees
    shape: tuple[int, ...] | None   # torus sides, or dragonfly (p, a, h)
    switch_radix: int
    router_radix: int | None        # dragonfly: p + a - 1 + h
    feasible: bool = True
    reason: str | None = None

    summary_inputs = ("fabric", "topology:", "num_nodes:nodes")
    summary_numbers = ("effective_bw:per_node", "bisection_bw:bisection", "hops_avg:hops")

    @property
    def effective_bw(self):
        """Per-node injection bandwidth after oversubscription, ``B / r`` (GB/s)."""
        return Q_(self.injection_bps / self.oversubscription, "byte/s").to("GB/s")

    @property
    def injection_bw(self):
        return Q_(self.injection_bps, "byte/s").to("GB/s")

    @property
    def bisection_bw(self):
        """Bandwidth across the narrowest cut into two halves, per direction (TB/s)."""
        return Q_(self.bisection_bps, "byte/s").to("TB/s")

    @property
    def uniform_bps(self) -> float:
        per_node = self.injection_bps / self.oversubscription
        if self.num_nodes < 2:
            return per_node
        return min(per_node, 4.0 * self.bisection_bps / self.num_nodes)

    @property
    def uniform_traffic_bw(self):
        """What each node keeps under uniform all-to-all traffic (GB/s)."""
        return Q_(self.uniform_bps, "byte/s").to("GB/s")

    @property
    def traffic_cap(self) -> str:
        """What caps a node's uniform traffic: "bisection", "oversubscription" or
        "injection"."""
        per_node = self.injection_bps / self.oversubscription
        if self.num_nodes >= 2 and 4.0 * self.bisection_bps / self.num_nodes < per_node:
            return "bisection"
        return "oversubscription" if self.oversubscription > 1 else "injection"

    @property
    def binding(self) -> str:
        """The traffic cap; for an infeasible network "switch radix" or "endpoints"."""
        if not self.feasible:
            return "switch radix" if "radix" in (self.reason or "") else "endpoints"
        return self.traffic_cap

    @property
    def assumptions(self) -> tuple[str, ...]:
        return ("every link at the fabric's per-direction bandwidth",
                "minimal routing, no congestion",
                "endpoints placed in order (leaf, pod, group filled first)",
                "uniform traffic: half of each node's bytes cross the bisection")

    def headline(self) -> dict[str, Any]:
        return {
            "fabric": self.fabric.name, "topology": self.topology, "num_nodes": self.num_nodes,
            "nics_per_node": self.nics_per_node, "oversubscription": self.oversubscription,
            "injection_bw": self.injection_bw, "effective_bw": self.effective_bw,
            "bisection_bw": self.bisection_bw, "uniform_traffic_bw": self.uniform_traffic_bw,
            "hops_avg": self.hops_avg, "diameter": self.diameter, "tiers": self.tiers,
            "shape": list(self.shape) if self.shape else None,
            "feasible": self.feasible, "reason": self.reason,
        }

    def explain(self) -> str:
        n, b, big_b, r = self.num_nodes, self.link_bps, self.injection_bps, self.oversubscription
        port = self.fabric._base["device_bandwidth"]
        lines = [f"{n} nodes on {self.fabric.name}, {self.topology}; link b = {b / 1e9:.4g} GB/s,"
                 f" B = {self.nics_per_node} NIC(s) x {port / 1e9:.4g} GB/s = "
                 f"{big_b / 1e9:.4g} GB/s per node",
                 f"  effective = B / r = {big_b / 1e9:.4g} / {r:.4g} = "
                 f"{big_b / r / 1e9:.4g} GB/s per node"]
        t = self.topology
        if t in ("fat_tree", "rail_optimized", "single_switch"):
            lines.append(f"  bisection = floor(N/2) x B / r = {n // 2} x {big_b / 1e9:.4g} / "
                         f"{r:.4g} = {self.bisection_bps / 1e12:.4g} TB/s")
            if t != "single_switch":
                k = self.switch_radix
                rail = " per rail" if t == "rail_optimized" else ""
                lines.append(f"  {self.endpoints} ports{rail} on radix-{k} switches: "
                             f"{self.tiers} tier(s) (2 (k/2)^L >= ports);"
                             f" avg hops {self.hops_avg:.4g}, diameter {self.diameter}")
            else:
                lines.append(f"  one switch: hops {self.hops_avg:.4g}, diameter {self.diameter}")
        elif t == "torus":
            shape = " x ".join(map(str, self.shape))
            lines += [f"  torus {shape}: bisection = 2 N / a_max = 2 x {n} / {max(self.shape)} ="
                      f" {self.bisection_links:.4g} links x {b / 1e9:.4g} GB/s = "
                      f"{self.bisection_bps / 1e12:.4g} TB/s",
                      f"  avg hops = sum(a/4 or (a^2-1)/4a) x N/(N-1) = {self.hops_avg:.4g}; "
                      f"diameter = sum floor(a/2) = {self.diameter}"]
        else:
            p, a, h = self.shape
            g = math.ceil(self.endpoints / (a * p))
            lines += [f"  dragonfly p={p}, a={a}, h={h}: {g} group(s), router radix "
                      f"{self.router_radix}; bisection {self.bisection_links:.4g} global links x "
                      f"{b / 1e9:.4g} GB/s = {self.bisection_bps / 1e12:.4g} TB/s",
                      f"  avg hops {self.hops_avg:.4g} (2 same router, 3 same group, "
                      f"5 - 2/a = {5 - 2 / a:.4g} between groups); diameter {self.diameter}"]
        if n >= 2:
            lines.append(f"  uniform traffic: min(B / r, 4 x bisection / N) = "
                         f"{self.uniform_bps / 1e9:.4g} GB/s per node -> {self.traffic_cap}")
        if not self.feasible:
            lines.append(f"  infeasible: {self.reason}")
        return "\n".join(lines)


# --- inputs ---------------------------------------------------------------------------------
def _fabric_and_fleet(value) -> tuple[NetworkFabric, Fleet | None]:
    if isinstance(value, str):
        from ..zoo import Clusters, Fabrics
        value = Clusters.get(value) if value in Clusters and value not in Fabrics else \
            Fabrics.get(value)
    if isinstance(value, Fleet):
        if value.fabric is None:
            raise ValidationError("fabric", f"must be a fabric; the fleet '{value.name}' has "
                                  "none (a single node without NICs).", owner=OWNER)
        return value.fabric, value
    if isinstance(value, NetworkFabric):
        return value, None
    raise ValidationError("fabric", "must be a NetworkFabric, a Fleet or a zoo fabric or "
                          f"cluster name. Got {value!r} instead.", owner=OWNER)


def _topology(value, fabric: NetworkFabric, fleet: Fleet | None) -> str:
    if value is None:
        if fleet is not None:
            value = fleet.effective_topology
        else:
            value = _FROM_FABRIC.get(fabric.topology)
            if value is None:
                raise ValidationError("topology", f"is needed: '{fabric.name}' is a "
                                      f"{fabric.topology}; choose one of: "
                                      f"{', '.join(TOPOLOGIES)}.", owner=OWNER)
    if not isinstance(value, str) or value not in TOPOLOGIES:
        near = closest(str(value), TOPOLOGIES)
        hint = f" Did you mean: {', '.join(near)}?" if near else ""
        raise ValidationError("topology", f"must be one of: {', '.join(TOPOLOGIES)}. Got "
                              f"{value!r} instead.{hint}", owner=OWNER)
    return value


def _shape(value, name: str, length: int | None = None) -> tuple[int, ...]:
    if isinstance(value, (str, bytes)) or not hasattr(value, "__iter__"):
        raise ValidationError(name, f"must be a sequence of positive whole numbers. Got "
                              f"{value!r} instead.", owner=OWNER)
    out = tuple(check.positive_int(name, v, OWNER) for v in value)
    if not out or (length is not None and len(out) != length):
        want = f"{length} numbers" if length else "at least one number"
        raise ValidationError(name, f"must have {want}. Got {value!r} instead.", owner=OWNER)
    return out


# --- the solver -----------------------------------------------------------------------------
class TopologyModel(ForwardModel):
    """Bisection and per-node bandwidth, average hops and diameter of a fat tree, rail-
    optimized tree, single switch, torus or dragonfly (see the module docstring)."""

    options = (
        Option("fabric", REQUIRED, "NetworkFabric (or a Fleet, whose fabric, topology, node "
               "count and NICs are the defaults), spec or zoo name"),
        Option("topology", None, f"one of {', '.join(TOPOLOGIES)}; default: the fleet's or "
               "the fabric's"),
        Option("num_nodes", None, "nodes joined; default: the fleet's count"),
        Option("oversubscription_ratio", None, "leaf down:up bandwidth, >= 1 (trees only); "
               "default: the fleet's or fabric's"),
        Option("nics_per_node", None, "NICs (fabric ports) per node; default: the fleet "
               "node's, else 1"),
        Option("switch_radix", DEFAULT_SWITCH_RADIX, "ports per switch or router, >= 4 "
               "(64: NVIDIA Quantum-2 QM9700)"),
        Option("torus_shape", None, "torus sides, product = num_nodes; default: the most "
               "cubic 3-D shape"),
        Option("dragonfly_shape", None, "dragonfly (p, a, h); default: balanced a = 2p = 2h, "
               "the smallest that fits"),
    )

    @classmethod
    def example(cls, feasible: bool = True) -> dict[str, Any]:
        """The 256-GPU DGX H100 SuperPOD (32 nodes, 8 NDR rails); then a 16,384-chip TPU v5p
        ICI torus, more than the 8,960 chips ICI joins."""
        from ..zoo import Clusters, Fabrics
        if feasible:
            return dict(fabric=Clusters.DGX_H100_SuperPOD_256)
        return dict(fabric=Fabrics.TPU_v5p_ICI, topology="torus", num_nodes=16384)

    def solve(self, fabric, topology: str | None = None, num_nodes: int | None = None,
              oversubscription_ratio: float | None = None, nics_per_node: int | None = None,
              switch_radix: int = DEFAULT_SWITCH_RADIX, torus_shape=None,
              dragonfly_shape=None) -> TopologyResult:
        """Bandwidth and hops of ``num_nodes`` nodes on ``fabric`` in ``topology``.

        Parameters
        ----------
        fabric : NetworkFabric, Fleet, or a zoo fabric or cluster name
        topology : "fat_tree", "rail_optimized", "single_switch", "torus" or "dragonfly";
            default: the fleet's ``effective_topology`` or the fabric's own
        num_nodes : int >= 1 (default: the fleet's ``count``, or the torus shape's product)
        oversubscription_ratio : float >= 1, trees only (torus and dragonfly refuse > 1)
        nics_per_node : int >= 1, fabric ports per node (default: the fleet node's, else 1)
        switch_radix : int >= 4, ports per switch (trees) or router (dragonfly)
        torus_shape : sides of the torus (default: the most cubic 3-D factorization)
        dragonfly_shape : (p, a, h) terminals, routers per group, global links per router

        Examples
        --------
        2,048 nodes with one NDR port each (50 GB/s) on radix-64 switches: 2 tiers (2 x 32^2
        = 2,048 ports), bisection 1,024 x 50 GB/s = 51.2 TB/s, 4 - 2 x 31/2047 = 3.970 hops.

        >>> r = TopologyModel().solve("InfiniBand_NDR", "fat_tree", 2048)
        >>> round(r.bisection_bw.to("TB/s").m, 2), r.tiers, round(r.hops_avg, 3), r.diameter
        (51.2, 2, 3.97, 4)

        An 8 x 8 x 8 TPU v4 torus (50 GB/s links): 2 x 512 / 8 = 128 links across the
        bisection = 6.4 TB/s; uniform traffic leaves each chip 4 x 6.4 TB/s / 512 = 50 GB/s.

        >>> r = TopologyModel().solve("TPU_v4_ICI", "torus", 512)
        >>> round(r.bisection_bw.to("TB/s").m, 2), r.uniform_traffic_bw.m, r.diameter
        (6.4, 50.0, 12)
        """
        fab, fleet = _fabric_and_fleet(fabric)
        topo = _topology(topology, fab, fleet)
        radix = check.positive_int("switch_radix", switch_radix, OWNER)
        if radix < 4:
            raise ValidationError("switch_radix", f"must be at least 4. Got {switch_radix!r} "
                                  "instead.", owner=OWNER)
        shape = None if torus_shape is None else _shape(torus_shape, "torus_shape")
        if num_nodes is None:
            n = fleet.count if fleet is not None else math.prod(shape) if shape else None
            if n is None:
                raise ValidationError("num_nodes", "is needed with a fabric (or pass a Fleet). "
                                      "Got None instead.", owner=OWNER)
        else:
            n = check.positive_int("num_nodes", num_nodes, OWNER)
        if nics_per_node is None:
            nics = (fleet.node.nics_per_node or 1) if fleet is not None else 1
        else:
            nics = check.positive_int("nics_per_node", nics_per_node, OWNER)
        if oversubscription_ratio is None:
            r = fleet.effective_oversubscription if fleet is not None else \
                fab.oversubscription_ratio
        else:
            r = check.positive_float("oversubscription_ratio", oversubscription_ratio, OWNER)
            if r < 1.0:
                raise ValidationError("oversubscription_ratio", f"must be at least 1. Got "
                                      f"{oversubscription_ratio!r} instead.", owner=OWNER)
        if topo in ("torus", "dragonfly") and r != 1.0:
            if oversubscription_ratio is not None:
                raise ValidationError("oversubscription_ratio", f"applies to switched trees; a "
                                      f"{topo} has none (give 1 or None). Got "
                                      f"{oversubscription_ratio!r} instead.", owner=OWNER)
            r = 1.0
        if shape is not None and topo != "torus":
            raise ValidationError("torus_shape", f"is for topology 'torus', not {topo!r}.",
                                  owner=OWNER)
        if dragonfly_shape is not None and topo != "dragonfly":
            raise ValidationError("dragonfly_shape", f"is for topology 'dragonfly', not "
                                  f"{topo!r}.", owner=OWNER)

        base = fab._base["device_bandwidth"]
        b = float(fab.bandwidth.to("byte/s").magnitude)
        inj = nics * base
        tiers = router_radix = None
        problems: list[str] = []
        if topo in ("fat_tree", "rail_optimized", "single_switch"):
            endpoints = n if topo == "rail_optimized" else n * nics
            links = (n // 2) * inj / b / r
            bis = (n // 2) * inj / r
            if topo == "single_switch":
                hops, diameter, tiers = (0.0, 0, 1) if endpoints == 1 else (2.0, 2, 1)
                if endpoints > radix:
                    problems.append(f"one switch of radix {radix} cannot take {endpoints} "
                                    "ports")
            else:
                hops, diameter, tiers = fat_tree_hops(endpoints, radix)
        elif topo == "torus":
            if shape is None:
                shape = balanced_torus_shape(n)
            elif math.prod(shape) != n:
                raise ValidationError("torus_shape", f"must multiply to num_nodes (={n}). Got "
                                      f"{torus_shape!r} instead.", owner=OWNER)
            endpoints = n
            links = 2 * n / max(shape) * nics if n > 1 else 0.0   # one torus per NIC
            bis = links * b
            hops, diameter = torus_hops(shape)
        else:
            endpoints = n * nics
            if dragonfly_shape is None:
                h = 1
                while 2 * h * h * (2 * h * h + 1) < endpoints:
                    h += 1
                shape = (h, 2 * h, h)
            else:
                shape = _shape(dragonfly_shape, "dragonfly_shape", 3)
            p, a, h = shape
            router_radix = p + a - 1 + h
            g = math.ceil(endpoints / (a * p))
            if g > a * h + 1:
                problems.append(f"{endpoints} terminals need {g} groups; a dragonfly with "
                                f"a h = {a * h} global links per group reaches {a * h + 1}")
            if router_radix > radix:
                problems.append(f"routers need radix p + a - 1 + h = {router_radix}, more than "
                                f"the switch radix {radix}")
            if g >= 2:
                links = g * a * h / 2 * (g // 2) * (g - g // 2) / (g * (g - 1) / 2)
            else:
                links = float((a // 2) * (a - a // 2))
            bis = links * b
            hops, diameter = dragonfly_hops(endpoints, p, a)
        if fab.max_endpoints is not None and endpoints > fab.max_endpoints:
            problems.append(f"{endpoints} endpoints exceed the {fab.max_endpoints} that "
                            f"{fab.name} joins")
        return TopologyResult(
            fabric=fab, topology=topo, num_nodes=n, nics_per_node=nics, endpoints=endpoints,
            link_bps=b, injection_bps=inj, oversubscription=r, bisection_links=links,
            bisection_bps=bis, hops_avg=hops, diameter=diameter, tiers=tiers, shape=shape,
            switch_radix=radix, router_radix=router_radix, feasible=not problems,
            reason="; ".join(problems) or None)
