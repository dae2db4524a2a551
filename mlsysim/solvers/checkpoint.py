"""Checkpoints of a training run: how big they are, how long they take to write and to read
back, and what they cost the run.

A checkpoint holds what a restart needs and nothing else (Rajbhandari et al. 2020, "ZeRO",
sec. 3.1: mixed-precision Adam keeps 2 + 2 + K bytes per parameter on the device, fp16/bf16
weights and gradients plus K = 12 bytes of fp32 master weights, momentum and variance; the
gradients are rebuilt by the next step, so they are not saved)::

    bytes/param = weights at `precision` + fp32 master copy (none when training in fp32)
                  + optimizer state
    optimizer state/param:  adam, adamw   2 fp32 moments           8 B   (Kingma & Ba 2015)
                            sgd           1 fp32 momentum buffer   4 B
                            adam8bit      2 int8 moments + one fp32 absmax per 2,048-value
                                          block each               2 + 2*4/2048 B
                                          (Dettmers et al. 2022, "8-bit Optimizers via
                                          Block-wise Quantization", sec. 2)
                            adafactor     factored second moment, no first moment (beta1 = 0)
                                          (Shazeer & Stern 2018): an r x c matrix keeps r + c
                                          fp32 values; taking every weight matrix as h x k*h
                                          (k >= 1, h the hidden size) gives at most 2/h values
                                          per parameter, 8/h B
    so bf16 + Adam = 2 + 4 + 8 = 14 B/param.

Writing: the checkpoint is sharded over ``n_writers`` ranks that write in parallel, each at
the bandwidth of its path to storage, and the file system caps the sum::

    aggregate = min(n_writers * writer_bandwidth, filesystem limit)
    t_write   = size / aggregate,     t_restore = size / aggregate   (reads as fast as writes)

``writer_bandwidth``, unless given, is the slowest link every byte crosses on its way out of a
device: the accelerator's host link (PCIe) and, on a node or fleet, one compute NIC (storage
NICs are not in the zoo, so give ``writer_bandwidth`` for a storage network's figure). With no
known link there is no default: the solver asks for ``writer_bandwidth``.

Cost: a synchronous checkpoint blocks training for ``t_write``; an asynchronous one (CheckFreq,
Mohan et al. FAST 2021; PyTorch DCP ``async_save``) blocks only while each writer copies its
shard to host memory over its host link, ``t_snapshot = size / (n_writers * host link)``, and
persists in the background. ``mfu_penalty_pct`` = blocking time / checkpoint interval, a
fraction (0.01 = 1 %), as the incumbent defined it. A checkpoint whose write outlasts the
interval is infeasible (the next one would start before it is done).

Left out: metadata and file-system latency per file, compression, deduplication across data
parallel replicas (each shard is written once), storage-network contention with training
traffic, and host-memory capacity for async snapshots.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

from ..core import validate as check
from ..core.contract import REQUIRED, ForwardModel, Option, Result
from ..core.memory import OPTIMIZERS, canonical_optimizer, optimizer_state_bytes_per_param
from ..errors import ValidationError
from ..specs.hardware import BYTES_PER_ELEMENT, HardwareSpec
from ..specs.model import ModelSpec
from ..specs.system import Fleet, Node
from ..units import Q_

__all__ = ["CheckpointModel", "CheckpointResult", "OPTIMIZERS", "WEIGHT_PRECISIONS",
           "optimizer_state_bytes_per_param", "checkpoint_bytes_per_param", "canonical_optimizer"]

OWNER = "CheckpointModel"
# The optimizer-state sizes live with the rest of training memory (core/memory.py).
HOUR = 3600.0
FP32 = BYTES_PER_ELEMENT["fp32"]
# Precisions a checkpoint's model weights are stored in.
WEIGHT_PRECISIONS = ("fp32", "bf16", "fp16", "fp8")


# --- bytes per parameter ------------------------------------------------------------------
def checkpoint_bytes_per_param(optimizer: str, precision: str = "bf16",
                               model: ModelSpec | None = None, owner: str = OWNER) -> float:
    """Weights at ``precision`` + fp32 master (unless fp32) + optimizer state, bytes.

    >>> checkpoint_bytes_per_param("adam", "bf16")         # 2 + 4 + 8, ZeRO's 16 less grads
    14.0
    >>> checkpoint_bytes_per_param("adam", "fp32")         # the weights are the master
    12.0
    """
    p = _precision(precision, owner)
    w = BYTES_PER_ELEMENT[p]
    master = 0.0 if p == "fp32" else FP32
    return w + master + optimizer_state_bytes_per_param(optimizer, model, owner)


def _precision(value, owner: str) -> str:
    p = value.strip().lower() if isinstance(value, str) else value
    if p not in WEIGHT_PRECISIONS:
        raise ValidationError("precision", f"must be the precision the weights are stored in, "
                              f"one of: {', '.join(WEIGHT_PRECISIONS)}. Got {value!r} instead.",
                              owner=owner)
    return p


# --- inputs -------------------------------------------------------------------------------
def _system(hardware) -> HardwareSpec | Node | Fleet:
    if isinstance(hardware, str):
        from ..zoo import Hardware, Systems
        if hardware in Hardware:
            return Hardware.get(hardware)
        if hardware in Systems.Nodes or hardware in Systems.Clusters:
            return Systems.get(hardware)
        return Hardware.get(hardware)            # raises with the closest device names
    if isinstance(hardware, (HardwareSpec, Node, Fleet)):
        return hardware
    raise ValidationError("hardware", "must be a device, a Node or a Fleet (spec or zoo "
                          f"name). Got {hardware!r} instead.", owner=OWNER)


def _chip(system) -> HardwareSpec:
    return system if isinstance(system, HardwareSpec) else system.accelerator


def _host_link(system) -> float | None:
    ic = _chip(system).interconnect
    if ic is None or ic.host_bandwidth is None:
        return None
    return float(ic.host_bandwidth.to("byte/s").magnitude)


def _nic(system) -> float | None:
    fabric = system.fabric if isinstance(system, Fleet) else \
        system.nic_fabric if isinstance(system, Node) else None
    if isinstance(system, Fleet) and fabric is None:
        fabric = system.node.nic_fabric
    return None if fabric is None else fabric._base["device_bandwidth"]


def _writer_bandwidth(system, given) -> tuple[float, str]:
    if given is not None:
        return check.bandwidth("writer_bandwidth", given, OWNER), "writer_bandwidth"
    links = {"host link": _host_link(system), "NIC": _nic(system)}
    known = {k: v for k, v in links.items() if v is not None}
    if not known:
        raise ValidationError("writer_bandwidth", f"is needed: {_chip(system).name} has no "
                              "published host link and no NIC is known; give the bandwidth "
                              "one writer reaches storage at (e.g. '25 GB/s').", owner=OWNER)
    name = min(known, key=known.get)
    return known[name], name


def _limit(value) -> float:
    """filesystem_limit_gbs: a number of GB/s, or a bandwidth quantity/string; None: no cap."""
    if value is None:
        return math.inf
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return check.positive_float("filesystem_limit_gbs", value, OWNER) * 1e9
    return check.bandwidth("filesystem_limit_gbs", value, OWNER)


# --- the result -----------------------------------------------------------------------------
@dataclass(frozen=True, eq=False, repr=False)
class CheckpointResult(Result):
    """One checkpoint of ``model`` on ``hardware``. Bytes, byte/s and seconds inside; the
    properties give quantities (``result.write_time_seconds.to('min')``)."""

    model: ModelSpec
    hardware: Any                  # HardwareSpec, Node or Fleet
    optimizer: str
    precision: str
    parameters: int
    bytes_per_param: float
    checkpoint_bytes: float
    n_writers: int
    writer_bandwidth_bps: float    # one writer, byte/s
    writer_link: str               # which link set it: "host link", "NIC", "writer_bandwidth"
    filesystem_limit_bps: float    # inf when uncapped
    interval_s: float
    async_checkpoint: bool
    snapshot_bandwidth_bps: float  # one writer's host link for async snapshots (nan if sync)
    steps_per_checkpoint: int | None

    summary_inputs = ("model", "hardware")
    summary_numbers = ("checkpoint_size:size", "write_time_seconds:write",
                       "mfu_penalty_pct:penalty")
    main_latency = "blocking_s"

    # -- plain floats
    @property
    def aggregate_bps(self) -> float:
        return min(self.n_writers * self.writer_bandwidth_bps, self.filesystem_limit_bps)

    @property
    def write_s(self) -> float:
        return self.checkpoint_bytes / self.aggregate_bps

    @property
    def snapshot_s(self) -> float:
        """Async only: each writer copies its shard to host memory over its host link."""
        if not self.async_checkpoint:
            return 0.0
        return self.checkpoint_bytes / (self.n_writers * self.snapshot_bandwidth_bps)

    @property
    def blocking_s(self) -> float:
        """Seconds training stops per checkpoint: the write, or for async the snapshot."""
        return self.snapshot_s if self.async_checkpoint else self.write_s

    # -- the incumbent's names, as quantities
    @property
    def checkpoint_size(self):
        return Q_(self.checkpoint_bytes, "byte").to("GB")

    @property
    def write_time_seconds(self):
        return Q_(self.write_s, "s")

    @property
    def restore_time_seconds(self):
        """Reading the checkpoint back at the same aggregate bandwidth."""
        return Q_(self.write_s, "s")

    @property
    def storage_bottleneck(self) -> str:
        """"filesystem" when the file system's cap is below what the writers could push,
        else "writers"."""
        return ("filesystem" if self.filesystem_limit_bps < self.n_writers
                * self.writer_bandwidth_bps else "writers")

    @property
    def mfu_penalty_pct(self) -> float:
        """Blocking time / checkpoint interval, a fraction (0.01 = 1 % of MFU lost)."""
        return self.blocking_s / self.interval_s

    @property
    def aggregate_bandwidth(self):
        return Q_(self.aggregate_bps, "byte/s").to("GB/s")

    @property
    def writer_bandwidth(self):
        return Q_(self.writer_bandwidth_bps, "byte/s").to("GB/s")

    # -- the contract
    @property
    def feasible(self) -> bool:
        return self.write_s <= self.interval_s

    @property
    def reason(self) -> str | None:
        if self.feasible:
            return None
        return (f"writing {self.checkpoint_bytes / 1e9:.4g} GB at "
                f"{self.aggregate_bps / 1e9:.4g} GB/s takes {self.write_s:.4g} s, longer than "
                f"the {self.interval_s:.4g} s between checkpoints")

    @property
    def binding(self) -> str:
        """"host link" for a feasible async checkpoint (the snapshot blocks), else "filesystem
        bandwidth" or "writer bandwidth"."""
        if self.async_checkpoint and self.feasible:
            return "host link"
        return ("filesystem bandwidth" if self.storage_bottleneck == "filesystem"
                else "writer bandwidth")

    @property
    def assumptions(self) -> tuple[str, ...]:
        kind = ("async: training waits only for the snapshot to host memory"
                if self.async_checkpoint else "synchronous: training waits for the write")
        return ("checkpoint = weights + fp32 master + optimizer state (no gradients)",
                f"{self.n_writers} writer(s) in parallel, each at its {self.writer_link}",
                "restores read as fast as writes", kind)

    def headline(self) -> dict[str, Any]:
        fs = (None if math.isinf(self.filesystem_limit_bps)
              else Q_(self.filesystem_limit_bps, "byte/s").to("GB/s"))
        return {
            "model": self.model.name, "hardware": self.hardware.name,
            "optimizer": self.optimizer, "precision": self.precision,
            "bytes_per_param": self.bytes_per_param, "checkpoint_size": self.checkpoint_size,
            "n_writers": self.n_writers, "writer_bandwidth": self.writer_bandwidth,
            "filesystem_limit": fs, "aggregate_bandwidth": self.aggregate_bandwidth,
            "write_time_seconds": self.write_time_seconds,
            "restore_time_seconds": self.restore_time_seconds,
            "snapshot_time": Q_(self.snapshot_s, "s") if self.async_checkpoint else None,
            "checkpoint_interval": Q_(self.interval_s / HOUR, "hour"),
            "steps_per_checkpoint": self.steps_per_checkpoint,
            "storage_bottleneck": self.storage_bottleneck,
            "mfu_penalty_pct": self.mfu_penalty_pct,
            "feasible": self.feasible, "reason": self.reason,
        }

    def explain(self) -> str:
        b, n, w = self.checkpoint_bytes, self.n_writers, self.writer_bandwidth_bps
        fs = self.filesystem_limit_bps
        fs_text = "no cap" if math.isinf(fs) else f"{fs / 1e9:.4g} GB/s"
        lines = [
            f"{self.model.name} on {self.hardware.name}, optimizer {self.optimizer}, weights in "
            f"{self.precision}",
            f"  size = {self.parameters:,} params x {self.bytes_per_param:.4g} B = "
            f"{b / 1e9:.4g} GB   (weights + fp32 master + optimizer state; ZeRO sec. 3.1)",
            f"  aggregate = min(n_writers x writer, filesystem) = min({n} x {w / 1e9:.4g} GB/s "
            f"[{self.writer_link}], {fs_text}) = {self.aggregate_bps / 1e9:.4g} GB/s -> "
            f"{self.storage_bottleneck} bind",
            f"  t_write = {b / 1e9:.4g} GB / {self.aggregate_bps / 1e9:.4g} GB/s = "
            f"{self.write_s:.4g} s; t_restore = {self.write_s:.4g} s",
        ]
        if self.async_checkpoint:
            lines.append(
                f"  async: t_snapshot = size / (n_writers x host link) = {b / 1e9:.4g} GB / "
                f"({n} x {self.snapshot_bandwidth_bps / 1e9:.4g} GB/s) = {self.snapshot_s:.4g} s"
                " blocks; the write runs in the background")
        steps = ("" if self.steps_per_checkpoint is None
                 else f" ({self.steps_per_checkpoint} steps)")
        lines.append(f"  MFU penalty = blocking / interval = {self.blocking_s:.4g} s / "
                     f"{self.interval_s:.4g} s{steps} = {self.mfu_penalty_pct:.4g}")
        if not self.feasible:
            lines.append(f"  infeasible: {self.reason}")
        return "\n".join(lines)


# --- the solver -----------------------------------------------------------------------------
class CheckpointModel(ForwardModel):
    """Checkpoint size, write and restore time and the MFU it costs (see the module
    docstring)."""

    options = (
        Option("model", REQUIRED, "workload: spec or zoo name"),
        Option("hardware", REQUIRED, "device, Node or Fleet (spec or zoo name)"),
        Option("optimizer", "adam", f"one of {', '.join(OPTIMIZERS)} (adamw = adam)"),
        Option("checkpoint_interval_hours", 1.0, "training hours between checkpoints, > 0"),
        Option("n_writers", 1, "ranks writing shards in parallel, >= 1"),
        Option("filesystem_limit_gbs", None, "aggregate file-system bandwidth cap, GB/s (or a "
               "bandwidth such as '2 TB/s'); None: no cap"),
        Option("precision", "bf16", f"precision the weights are stored in: "
               f"{', '.join(WEIGHT_PRECISIONS)}"),
        Option("async_checkpoint", False, "snapshot to host memory, persist in the background"),
        Option("step_time_s", None, "seconds per training step; checkpoints fall on step "
               "boundaries (the interval is rounded down to whole steps)"),
        Option("writer_bandwidth", None, "one writer's bandwidth to storage, e.g. '25 GB/s'; "
               "default: the slowest of the host link and one NIC"),
        Option("snapshot_bandwidth", None, "async: one writer's copy bandwidth to host memory; "
               "default: the device's host link"),
    )

    @classmethod
    def example(cls, feasible: bool = True) -> dict[str, Any]:
        """Llama-3-70B with Adam on one DGX H100, 8 writers, hourly; then Llama-3-405B through
        a single writer every 36 s, less than its 113 s write."""
        from ..zoo import Models, Systems
        node = Systems.Nodes.DGX_H100
        if feasible:
            return dict(model=Models.Llama3_70B, hardware=node, n_writers=8)
        return dict(model=Models.Llama3_405B, hardware=node, checkpoint_interval_hours=0.01)

    def solve(self, model, hardware, optimizer: str = "adam",
              checkpoint_interval_hours: float = 1.0, n_writers: int = 1,
              filesystem_limit_gbs=None, precision: str = "bf16", async_checkpoint: bool = False,
              step_time_s: float | None = None, writer_bandwidth=None,
              snapshot_bandwidth=None) -> CheckpointResult:
        """Size, write time and cost of one checkpoint.

        Parameters
        ----------
        model : ModelSpec or zoo name
        hardware : HardwareSpec, Node or Fleet (or a zoo name): where the writers' links come
            from (host link, NIC)
        optimizer : "adam" (= "adamw"), "sgd" (with momentum), "adafactor", "adam8bit"
        checkpoint_interval_hours : float > 0, training hours between checkpoints
        n_writers : int >= 1, ranks writing their shards in parallel
        filesystem_limit_gbs : GB/s (number) or bandwidth quantity; None for no cap
        precision : "bf16" (default), "fp16", "fp8" or "fp32": the stored weights
        async_checkpoint : bool, only the snapshot to host memory blocks training
        step_time_s : float > 0 or None, a training step; the interval becomes whole steps
        writer_bandwidth : bandwidth of one writer to storage; default: the slowest of the
            device's host link and one NIC of the node (an error names this option when
            neither is known)
        snapshot_bandwidth : async only, one writer's device-to-host copy bandwidth; default:
            the device's host link

        Examples
        --------
        Llama-3-70B (70,553,706,496 parameters) with bf16 + Adam, 14 B/param = 987.75 GB;
        eight writers on a DGX H100, each at min(PCIe 64 GB/s, NDR NIC 50 GB/s) = 50 GB/s:
        987.75 GB / 400 GB/s = 2.469 s, 2.469 / 3600 = 0.069 % of an hour.

        >>> from mlsysim import Models, Systems
        >>> r = CheckpointModel().solve(Models.Llama3_70B, Systems.Nodes.DGX_H100, n_writers=8)
        >>> round(r.checkpoint_size.to("GB").magnitude, 2), round(r.write_time_seconds.m, 3)
        (987.75, 2.469)
        >>> r.storage_bottleneck, round(r.mfu_penalty_pct, 6)
        ('writers', 0.000686)
        >>> r = CheckpointModel().solve(Models.Llama3_70B, Systems.Nodes.DGX_H100, n_writers=64,
        ...                             filesystem_limit_gbs=2000)  # Llama 3's 2 TB/s Tectonic
        >>> r.storage_bottleneck, round(r.write_time_seconds.m, 4)  # 987.75 GB / 2000 GB/s
        ('filesystem', 0.4939)
        """
        if isinstance(model, str):
            from ..zoo import Models
            model = Models.get(model)
        if not isinstance(model, ModelSpec):
            raise ValidationError("model", f"must be a model spec or zoo name. Got {model!r} "
                                  "instead.", owner=OWNER)
        system = _system(hardware)
        opt = canonical_optimizer(optimizer, OWNER)
        prec = _precision(precision, OWNER)
        interval = check.positive_float("checkpoint_interval_hours", checkpoint_interval_hours,
                                        OWNER) * HOUR
        writers = check.positive_int("n_writers", n_writers, OWNER)
        fs = _limit(filesystem_limit_gbs)
        if not isinstance(async_checkpoint, bool):
            raise ValidationError("async_checkpoint", f"must be True or False. Got "
                                  f"{async_checkpoint!r} instead.", owner=OWNER)
        steps = None
        if step_time_s is not None:
            step = check.positive_float("step_time_s", step_time_s, OWNER)
            steps = max(1, math.floor(interval / step * (1 + 1e-12)))
            interval = steps * step
        w, link = _writer_bandwidth(system, writer_bandwidth)
        snap = math.nan
        if async_checkpoint:
            if snapshot_bandwidth is not None:
                snap = check.bandwidth("snapshot_bandwidth", snapshot_bandwidth, OWNER)
            else:
                host = _host_link(system)
                if host is None:
                    raise ValidationError("snapshot_bandwidth", f"is needed for an async "
                                          f"checkpoint: {_chip(system).name} has no published "
                                          "host link (e.g. '64 GB/s').", owner=OWNER)
                snap = host
        bpp = checkpoint_bytes_per_param(opt, prec, model)
        n = model.parameter_count
        return CheckpointResult(
            model=model, hardware=system, optimizer=opt, precision=prec, parameters=n,
            bytes_per_param=bpp, checkpoint_bytes=n * bpp, n_writers=writers,
            writer_bandwidth_bps=w, writer_link=link, filesystem_limit_bps=fs,
            interval_s=interval, async_checkpoint=async_checkpoint,
            snapshot_bandwidth_bps=snap, steps_per_checkpoint=steps)
