"""The network roofline of a training step: model flops per byte that crosses the scale-out
fabric, against the fabric's ridge point.

The roofline of Williams, Waterman & Patterson (2009) bounds a kernel by
``min(peak, intensity x bandwidth)``; Cardwell & Song (2019), "Extending the Roofline Model
for Bottleneck Analysis in the Presence of Interconnects", put the interconnect in place of
memory: intensity becomes flops per byte communicated. Per accelerator and per training step::

    F      = (6 N + 12 L h s) x tokens / devices      model flops (DistributedModel's MFU count)
    Q      = Q_dp + Q_tp + Q_pp                       bytes it sends over the scale-out fabric
    B      = NICs x port bandwidth / accelerators per node / oversubscription
    P      = dense peak at the training precision
    I      = F / Q                                    communication intensity, flop/byte
    ridge  = P / B
    attainable = min(P, I x B);  bound = "network" if I < ridge else "compute"
    min step   = max(F / P, Q / B) = F / attainable

The step itself comes from :class:`~mlsysim.DistributedModel` (run here with the same
config; its step time, flops, stage parameters and micro-batching are read from its result),
and the bytes follow the schedules :mod:`mlsysim.core.collectives` costs. A collective over
``n`` ranks spread over ``span`` devices stays on the scale-up fabric while ``span`` fits in
one domain of ``D`` accelerators; otherwise each domain holds ``L = max(1, n D / span)`` of
its ranks and ``N = ceil(n / L)`` domains take part, and per byte of the buffer ``S`` each
accelerator sends over the scale-out fabric:

- all-reduce, hierarchical (reduce-scatter within the domain, all-reduce of ``S / L`` across,
  all-gather within; the fewest bytes through the NICs): ``2 (N - 1) / N / L`` for a ring
  across [Patarasuk & Yuan 2009], ``1 / L`` with in-switch reduction (InfiniBand SHARP:
  ``S / L`` up, the result down);
- all-gather and reduce-scatter (ZeRO-3): the same two levels, ``(N - 1) / N / L`` (each of
  a domain's ``L`` members exchanges its local index's ``S / L`` across the ``N`` domains
  through its own port); ``(n - 1) / n`` with one member per domain, a flat ring [Thakur,
  Rabenseifner & Gropp 2005];
- a pipeline hand-off (point to point between ranks ``stride`` apart, a pair spanning
  ``2 stride`` devices as DistributedModel prices it): 1.

The buffers and groups follow DistributedModel's rank order (innermost first): Megatron's
``tp-cp-dp-pp`` (data-parallel ranks ``tp`` apart, stages ``tp dp`` apart) or Llama 3's
``tp-cp-pp-dp`` (stages ``tp`` apart, the DP group spanning every device):

- DP: the gradients of a stage's parameters, ``S = e P_stage`` (``e`` = 2 B at 16-bit), once
  per step; ZeRO-3 all-gathers the weights in every forward and backward and reduce-scatters
  the gradients per micro-batch (3 m buffers) [Rajbhandari et al. 2020];
- TP: ``S = b s h e`` per all-reduce, two per layer forward and two backward (two more forward
  ones under full recomputation) per micro-batch [Shoeybi et al. 2019, sec. 3]; sequence
  parallelism moves the same bytes as reduce-scatter + all-gather [Korthikanti et al. 2022];
- PP: ``S = b s h e / tp`` per hand-off, the TP shard of the activations forward and of
  their gradients back, per micro-batch (``v`` times with interleaving) [Narayanan et al.
  2021, sec. 4.1]; the busiest (a middle) stage sends both ways; without sequence
  parallelism the receiver all-gathers the ``tp`` shards again (``b s h e`` over the TP
  group, which crosses only when TP does).

Left out: context- and expert-parallel traffic (``cp_size`` and ``ep_size`` must be 1), the
scale-up fabric's own roofline, latency terms (small messages), congestion beyond the
oversubscription ratio, and any overlap: the bound assumes compute and communication could
overlap perfectly, so it is a floor on the step, not a prediction of it.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

from ..core.contract import REQUIRED, ForwardModel, Option, Result
from ..errors import ValidationError
from ..specs.configs import DistributedConfig
from ..units import Q_
from .distributed import DistributedModel, DistributedResult, _element_bytes

__all__ = ["NetworkRooflineModel", "NetworkRooflineResult", "scale_out_factor"]

OWNER = "NetworkRooflineModel"


def scale_out_factor(path, kind: str, n: int, span: int) -> float:
    """Bytes each accelerator sends over the scale-out fabric per byte of a collective's
    buffer (module docstring): 0 while the group's ``span`` fits one scale-up domain.

    >>> from mlsysim.core.collectives import comm_path
    >>> from mlsysim import Systems
    >>> p = comm_path(Systems.Clusters.HGX_H100_SpectrumX_1024)   # RoCE: no SHARP, domain 8
    >>> scale_out_factor(p, "allreduce", 8, 8), scale_out_factor(p, "allreduce", 32, 32)
    (0.0, 0.1875)
    """
    if n <= 1 or span <= path.domain:
        return 0.0
    members = max(1, n * path.domain // span) if path.up_bw is not None else 1
    L = min(members, path.domain)
    N = math.ceil(n / L)
    if kind == "allreduce":
        return 1.0 / L if path.out_inr else 2.0 * (N - 1) / N / L
    if kind == "p2p":
        return 1.0
    if kind in ("allgather", "reducescatter") and L > 1:
        return (N - 1) / N / L          # each member's port carries its local index's share
    return (n - 1) / n


@dataclass(frozen=True, eq=False, repr=False)
class NetworkRooflineResult(Result):
    """A training step against its scale-out fabric. SI floats inside (flop, byte, flop/s,
    byte/s, s), per accelerator and per step; the properties give quantities."""

    training: DistributedResult        # the step this roofline bounds
    flops: float                       # F, model flops per accelerator per step
    dp_bytes: float                    # Q_dp, Q_tp, Q_pp: bytes sent over the scale-out fabric
    tp_bytes: float
    pp_bytes: float
    peak_flops: float                  # P
    scale_out_bps: float | None        # B (None: no scale-out fabric)
    in_network_reduction: bool         # SHARP on the scale-out fabric
    rank_order: str = "tp-cp-dp-pp"    # DistributedModel's rank layout, innermost first

    main_latency = "min_step_s"
    summary_inputs = ("training.model", "training.system")
    summary_numbers = ("communication_intensity:intensity", "ridge_point:ridge", "bound")

    # -- the roofline
    @property
    def scale_out_bytes(self) -> float:
        return self.dp_bytes + self.tp_bytes + self.pp_bytes

    @property
    def intensity(self) -> float:
        """``I = F / Q`` flop/byte (inf when nothing crosses the fabric)."""
        q = self.scale_out_bytes
        return self.flops / q if q > 0 else math.inf

    @property
    def ridge(self) -> float:
        """``P / B`` flop/byte (inf without a scale-out fabric)."""
        return self.peak_flops / self.scale_out_bps if self.scale_out_bps else math.inf

    @property
    def attainable(self) -> float:
        """``min(P, I B)`` flop/s per accelerator."""
        if self.scale_out_bytes == 0 or not self.scale_out_bps:
            return self.peak_flops
        return min(self.peak_flops, self.intensity * self.scale_out_bps)

    @property
    def compute_s(self) -> float:
        return self.flops / self.peak_flops

    @property
    def network_s(self) -> float:
        return self.scale_out_bytes / self.scale_out_bps if self.scale_out_bps else 0.0

    @property
    def min_step_s(self) -> float:
        """``max(F / P, Q / B)``: no step of this config can be shorter."""
        return max(self.compute_s, self.network_s)

    @property
    def bound(self) -> str:
        """"network" when ``I`` is left of the ridge, else "compute"."""
        return "network" if self.intensity < self.ridge else "compute"

    @property
    def achieved_flops(self) -> float:
        """``F / step`` of DistributedModel's step, flop/s per accelerator."""
        return self.flops / self.training.step_s

    # -- quantities
    @property
    def communication_intensity(self):
        return Q_(self.intensity, "flop/byte")

    @property
    def ridge_point(self):
        return Q_(self.ridge, "flop/byte")

    @property
    def attainable_flops(self):
        return Q_(self.attainable / 1e12, "TFLOP/s")

    @property
    def min_step_latency(self):
        return Q_(self.min_step_s * 1e3, "ms")

    # -- the contract
    @property
    def feasible(self) -> bool:
        return self.training.feasible

    @property
    def reason(self) -> str | None:
        return None if self.feasible else f"the step does not fit: {self.training.reason}"

    @property
    def binding(self) -> str:
        if not self.feasible:
            return "memory capacity"
        return "scale-out network" if self.bound == "network" else "compute"

    @property
    def assumptions(self) -> tuple[str, ...]:
        return ("model flops 6 N + 12 L h s per token (DistributedModel's MFU count), spread "
                "evenly over the accelerators",
                "DP all-reduce hierarchical (fewest bytes through the NICs)"
                + (", reduced in the switch (SHARP)" if self.in_network_reduction else ""),
                f"rank order {self.rank_order}; groups fill scale-up domains in order",
                "per-accelerator scale-out bandwidth at its spec (NIC share / "
                "oversubscription); compute and communication could overlap fully",
                "context- and expert-parallel traffic left out")

    def headline(self) -> dict[str, Any]:
        t = self.training
        gb = {"dp": self.dp_bytes / 1e9, "tp": self.tp_bytes / 1e9, "pp": self.pp_bytes / 1e9}
        return {
            "model": t.model.name, "system": getattr(t.system, "name", str(t.system)),
            "parallelism": t.parallelism, "batch_size": t.batch_size, "seq_len": t.seq_len,
            "precision": t.precision,
            "flops_per_accelerator": Q_(self.flops / 1e12, "TFLOP"),
            "scale_out_bytes": Q_(self.scale_out_bytes / 1e9, "GB"),
            "scale_out_bytes_by_group": {k: Q_(v, "GB") for k, v in gb.items()},
            "scale_out_bandwidth": None if self.scale_out_bps is None else
            Q_(self.scale_out_bps / 1e9, "GB/s"),
            "peak_flops": Q_(self.peak_flops / 1e12, "TFLOP/s"),
            "communication_intensity": self.communication_intensity,
            "ridge_point": self.ridge_point, "bound": self.bound,
            "attainable_flops": self.attainable_flops,
            "compute_time": Q_(self.compute_s * 1e3, "ms"),
            "network_time": Q_(self.network_s * 1e3, "ms"),
            "min_step_latency": self.min_step_latency,
            "step_latency": t.step_latency_total,
            "achieved_flops": Q_(self.achieved_flops / 1e12, "TFLOP/s"),
            "fraction_of_attainable": round(self.achieved_flops / self.attainable, 4),
            "feasible": self.feasible, "reason": self.reason,
        }

    def explain(self) -> str:
        t = self.training
        par = t.parallelism
        q, b = self.scale_out_bytes, self.scale_out_bps
        lines = [
            f"{t.model.name} on {t.devices} x {t.hardware.name} (dp={par['dp']}, tp={par['tp']}, "
            f"pp={par['pp']}), batch {t.batch_size} x {t.seq_len}, {t.precision}; per "
            "accelerator, per step:",
            f"  F = (6 N + 12 L h s) x tokens / devices = {t.model_flops:.4g} / {t.devices} = "
            f"{self.flops:.4g} flop",
            f"  Q = DP {self.dp_bytes / 1e9:.4g} GB + TP {self.tp_bytes / 1e9:.4g} GB + PP "
            f"{self.pp_bytes / 1e9:.4g} GB = {q / 1e9:.4g} GB over the scale-out fabric",
        ]
        if b is None or q == 0:
            lines.append("  nothing crosses the scale-out fabric: I = inf, compute-bound at "
                         f"P = {self.peak_flops / 1e12:.4g} TFLOP/s")
        else:
            lines += [
                f"  I = F/Q = {self.flops:.4g} / {q:.4g} = {self.intensity:.4g} flop/byte; "
                f"ridge = P/B = {self.peak_flops / 1e12:.4g} TFLOP/s / {b / 1e9:.4g} GB/s = "
                f"{self.ridge:.4g} flop/byte -> {self.bound}-bound   (Cardwell & Song 2019)",
                f"  attainable = min(P, I*B) = min({self.peak_flops / 1e12:.4g}, "
                f"{self.intensity * b / 1e12:.4g}) = {self.attainable / 1e12:.4g} TFLOP/s",
            ]
        lines.append(
            f"  min step = max(F/P, Q/B) = max({self.compute_s * 1e3:.4g}, "
            f"{self.network_s * 1e3:.4g}) = {self.min_step_s * 1e3:.4g} ms; DistributedModel's "
            f"step {t.step_s * 1e3:.4g} ms = {self.achieved_flops / 1e12:.4g} TFLOP/s "
            f"({self.achieved_flops / self.attainable:.3f} of attainable)")
        if not self.feasible:
            lines.append(f"  infeasible: {self.reason}")
        return "\n".join(lines)


class NetworkRooflineModel(ForwardModel):
    """Communication intensity of a training step against the scale-out fabric's ridge point
    (see the module docstring)."""

    options = (
        Option("model", REQUIRED, "transformer: spec or zoo name"),
        Option("fleet", REQUIRED, "chip, node or fleet (spec or zoo name)"),
        Option("batch_size", None, "global batch in sequences (required unless config)"),
        Option("seq_len", None, "tokens per sequence; default: the model's default length"),
        Option("precision", None, "compute precision; default bf16 where published"),
        Option("tp_size", 1, "tensor-parallel degree"),
        Option("pp_size", 1, "pipeline stages"),
        Option("dp_size", None, "data-parallel replicas; default: devices / (tp pp)"),
        Option("microbatch_size", None, "sequences per micro-batch (default 1)"),
        Option("zero_stage", 0, "ZeRO stage 0-3"),
        Option("rank_order", "tp-cp-dp-pp", "rank layout, innermost first: Megatron's "
               "'tp-cp-dp-pp' or 'tp-cp-pp-dp' (data parallelism outermost, as Llama 3)"),
        Option("config", None, "a DistributedConfig instead of the keywords above "
               "(cp_size and ep_size must be 1)"),
    )

    @classmethod
    def example(cls, feasible: bool = True) -> dict[str, Any]:
        """Llama-3-8B data-parallel over 256 H100 on InfiniBand NDR (ZeRO-1, batch 512 x
        2048); then GPT-3 175B unsharded on the same fleet (2.9 TB per GPU: does not fit)."""
        from ..zoo import Clusters, Models
        fleet = Clusters.DGX_H100_SuperPOD_256
        if feasible:
            return dict(model=Models.Llama3_8B, fleet=fleet, batch_size=512, seq_len=2048,
                        zero_stage=1)
        return dict(model=Models.GPT3_175B, fleet=fleet, batch_size=256, seq_len=2048)

    def solve(self, model, fleet, batch_size: int | None = None, seq_len: int | None = None,
              precision: str | None = None, tp_size: int = 1, pp_size: int = 1,
              dp_size: int | None = None, microbatch_size: int | None = None,
              zero_stage: int = 0, rank_order: str = "tp-cp-dp-pp",
              config: DistributedConfig | None = None
              ) -> NetworkRooflineResult:
        """Where a training step sits on its scale-out fabric's roofline.

        Parameters
        ----------
        model : transformer spec or zoo name
        fleet : chip, node or fleet (spec or zoo name)
        batch_size : int >= 1, global batch in sequences (a multiple of dp); required unless
            ``config`` is given
        seq_len : int or None, tokens per sequence
        precision : str or None, compute precision (the peak ``P``)
        tp_size, pp_size, dp_size : parallel degrees (dp default: devices / (tp pp))
        microbatch_size : int or None, sequences per micro-batch
        zero_stage : 0-3
        rank_order : "tp-cp-dp-pp" (Megatron: stages outermost) or "tp-cp-pp-dp" (Llama 3:
            data parallelism outermost); decides which groups leave a scale-up domain
        config : DistributedConfig or None, every DistributedModel option at once (then the
            keywords above but model and fleet are ignored); cp_size and ep_size must be 1

        Returns
        -------
        NetworkRooflineResult with ``communication_intensity`` and ``ridge_point``
        (flop/byte), ``bound`` ("network" or "compute"), ``attainable_flops``,
        ``scale_out_bytes`` per accelerator per step, ``min_step_latency`` and the
        DistributedModel step it bounds (``training``).

        Examples
        --------
        Llama-3-8B, pure DP over 256 H100 (32 DGX nodes, InfiniBand NDR with SHARP, 50 GB/s
        per GPU): each GPU sends its 16.06 GB of bf16 gradients' 1/8 share, 2.008 GB; F =
        5.139e10 flop/token x 1,048,576 tokens / 256 = 2.105e14 flop, so I = 1.05e5
        flop/byte, far right of the ridge 989.5 TFLOP/s / 50 GB/s = 19,790.

        >>> from mlsysim import Systems
        >>> r = NetworkRooflineModel().solve("Llama3_8B", Systems.Clusters.DGX_H100_SuperPOD_256,
        ...                                  batch_size=512, seq_len=2048, zero_stage=1)
        >>> r.bound, round(r.ridge), round(r.intensity, -3)
        ('compute', 19790, 105000.0)
        """
        if config is None:
            if batch_size is None:
                raise ValidationError("batch_size", "must be given (the global batch in "
                                      "sequences) unless a config is. Got None instead.",
                                      owner=OWNER)
            try:
                config = DistributedConfig(
                    batch_size=batch_size, seq_len=seq_len, precision=precision,
                    tp_size=tp_size, pp_size=pp_size, dp_size=dp_size,
                    microbatch_size=microbatch_size, zero_stage=zero_stage,
                    rank_order=rank_order)
            except ValidationError as exc:
                raise exc.owned_by(OWNER) from None
        elif not isinstance(config, DistributedConfig):
            raise ValidationError("config", "must be a DistributedConfig. Got "
                                  f"{type(config).__name__} instead.", owner=OWNER)
        for name in ("cp_size", "ep_size"):
            if getattr(config, name) != 1:
                raise ValidationError(name, "must be 1: NetworkRooflineModel counts DP, TP and "
                                      "PP traffic only (context- and expert-parallel traffic "
                                      f"is left out). Got {getattr(config, name)} instead.",
                                      owner=OWNER)
        try:
            t = DistributedModel().solve(model, fleet, config=config)
        except ValidationError as exc:      # the parallelism options are this solver's own
            raise exc.owned_by(OWNER) from None
        sp = config.tp_size > 1 if config.sequence_parallel is None else \
            config.sequence_parallel
        return _roofline(t, config.rank_order, sp)


def _roofline(t: DistributedResult, rank_order: str, sp: bool) -> NetworkRooflineResult:
    from ..core.collectives import comm_path

    path = comm_path(t.system)
    par = t.parallelism
    tp, pp, dp = par["tp"], par["pp"], par["dp"]
    m, mbs, v = t.microbatch_count, t.microbatch_size, t.v_stages
    model = t.model
    e = _element_bytes(t.precision)
    dp_outer = rank_order == "tp-cp-pp-dp"
    dp_span = tp * pp * dp if dp_outer else tp * dp
    stage_stride = tp if dp_outer else tp * dp
    # Parameters of the stage DistributedModel sized memory for (ZeRO-3 shards them over dp).
    stage_params = t.memory.weights / e * (dp if t.zero_stage >= 3 else 1)
    if t.zero_stage < 3:
        dp_bytes = scale_out_factor(path, "allreduce", dp, dp_span) * e * stage_params
    else:
        dp_bytes = 3 * m * scale_out_factor(path, "allgather", dp, dp_span) * e * stage_params
    act = mbs * t.seq_len * model.hidden * e                 # one TP all-reduce's buffer
    per_layer = 6 if t.activation_recomputation == "full" else 4
    layers = math.ceil(model.layers / pp)                    # the first stage holds the rest
    tp_bytes = m * layers * per_layer * scale_out_factor(path, "allreduce", tp, tp) * act
    pp_bytes = 0.0
    if pp > 1:
        hand_off = scale_out_factor(path, "p2p", 2, 2 * stage_stride) * act / tp
        if not sp and tp > 1:
            hand_off += scale_out_factor(path, "allgather", tp, tp) * act
        pp_bytes = m * v * (2 if pp > 2 else 1) * hand_off
    return NetworkRooflineResult(
        training=t, flops=t.model_flops / t.devices, dp_bytes=dp_bytes, tp_bytes=tp_bytes,
        pp_bytes=pp_bytes, peak_flops=t.peak_flops, scale_out_bps=path.out_bw,
        in_network_reduction=path.out_inr, rank_order=rank_order)
