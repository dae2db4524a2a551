"""Where the lost FLOPs go: one training step's ``1 - MFU`` split into terms that add up.

Convention. Every term is a share of the roof ``devices x dense peak x step time`` (the
denominator of MFU, :class:`~mlsysim.solvers.distributed.DistributedResult`), so the terms
and MFU sum to one exactly::

    1 = MFU + bubble + communication + optimizer + recomputation + kernel

    bubble         = t_bubble / t_step                     pipeline fill and drain, (p-1)/v t_mb
    communication  = (t_TP + t_EP + t_PP + t_DP,exposed) / t_step
                                                            collectives on the critical path:
                                                            TP, EP and PP hand-offs inside the
                                                            micro-batches, the DP reduction
                                                            left over after the overlap
    optimizer      = t_opt / t_step                        the parameter update
    useful         = 1 - bubble - communication - optimizer
                                                            share of the step in micro-batch
                                                            compute (= scaling_efficiency)
    recomputation  = HFU - MFU = (F_hw - F_model) / (n P t_step)
                                                            flops executed but not counted as
                                                            model flops
    kernel         = useful - HFU                          compute time not at peak: kernels
                                                            below peak, memory-bound
                                                            operators, pipeline stages busier
                                                            than others, CP's excess over
                                                            attention

with ``F_model`` the MFU convention's flops (``6 N + 12 L h s`` per token), ``F_hw`` the flops
executed (backward, recomputation, attention as run), ``n`` devices and ``P`` the dense peak.
The recomputation term is the whole gap between the two counts: with no recomputation it is
negative for causal models, because the convention counts attention over the full length
while the causal kernels execute about half of it (a gain the convention hides, not a loss).

Input: a :class:`~mlsysim.solvers.distributed.DistributedResult`, or a model, fleet and
:class:`~mlsysim.specs.configs.DistributedConfig` that ``DistributedModel`` solves first.
Left out: anything outside the step (data loading stalls, checkpoints, failures: see
DataModel, CheckpointModel, ReliabilityModel); a split of the kernel term per operator (the
training result keeps the slowest stage's time, not its per-operator breakdown).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from ..core.contract import ForwardModel, Option, Result
from ..errors import ValidationError

__all__ = ["EfficiencyModel", "EfficiencyResult", "training_run"]

OWNER = "EfficiencyModel"

TERMS = ("bubble", "communication", "optimizer", "recomputation", "kernel")
LABELS = {"bubble": "pipeline bubble", "communication": "communication",
          "optimizer": "optimizer", "recomputation": "recomputation",
          "kernel": "kernel efficiency"}


def training_run(run, model, fleet, config, owner: str):
    """A training step: ``run`` as given (a DistributedResult), or ``DistributedModel`` solved
    on ``model``, ``fleet`` and ``config`` (a DistributedConfig); never both."""
    from ..specs.configs import DistributedConfig
    from .distributed import DistributedModel, DistributedResult
    rest = {"model": model, "fleet": fleet, "config": config}
    if run is not None:
        given = [k for k, v in rest.items() if v is not None]
        if given:
            raise ValidationError(given[0], "and run both describe the training step; give "
                                  "run, or model, fleet and config.", owner=owner)
        if not isinstance(run, DistributedResult):
            raise ValidationError("run", "must be a DistributedResult (DistributedModel()."
                                  f"solve(...)). Got {type(run).__name__} instead.", owner=owner)
        return run
    missing = [k for k, v in rest.items() if v is None]
    if len(missing) == 3:
        return None
    if missing:
        raise ValidationError(missing[0], "is needed with "
                              + " and ".join(k for k in rest if k not in missing)
                              + " (or give run, a DistributedResult).", owner=owner)
    if not isinstance(config, DistributedConfig):
        raise ValidationError("config", "must be a DistributedConfig. Got "
                              f"{type(config).__name__} instead.", owner=owner)
    return DistributedModel().solve(model, fleet, config=config)


@dataclass(frozen=True, eq=False, repr=False)
class EfficiencyResult(Result):
    """The step's MFU and the shares of the roof it loses, each a fraction of
    ``devices x peak x step`` (module docstring); the shares and MFU sum to one."""

    run: Any                     # the DistributedResult
    mfu: float
    hfu: float
    bubble: float
    communication: float
    optimizer: float
    recomputation: float
    kernel: float
    tp_share: float
    ep_share: float
    pp_share: float
    dp_share: float

    main_latency = None
    summary_inputs = ("run.model", "run.hardware")
    summary_numbers = ("mfu", "binding:lost most to")

    @property
    def useful(self) -> float:
        """Share of the step spent in micro-batch compute: 1 - bubble - communication -
        optimizer."""
        return 1.0 - self.bubble - self.communication - self.optimizer

    @property
    def lost(self) -> dict[str, float]:
        """The terms of 1 - MFU, by name."""
        return {k: getattr(self, k) for k in TERMS}

    @property
    def total(self) -> float:
        """MFU + every term: 1 up to rounding."""
        return self.mfu + sum(self.lost.values())

    @property
    def feasible(self) -> bool:
        return bool(self.run.feasible)

    @property
    def reason(self) -> str | None:
        return None if self.feasible else f"the run does not fit: {self.run.reason}"

    @property
    def binding(self) -> str:
        lost = self.lost
        return LABELS[max(lost, key=lost.get)]

    @property
    def assumptions(self) -> tuple[str, ...]:
        return ("shares of devices x dense peak x step time (the MFU roof); they sum to 1",
                "communication on the critical path as DistributedModel reports it (TP, EP, "
                "PP inside the micro-batches; DP only where not overlapped)",
                "recomputation = HFU - MFU: every executed flop the MFU convention does not "
                "count (negative when causal attention runs fewer flops than it counts)",
                *self.run.assumptions[:1])

    def headline(self) -> dict[str, Any]:
        r = self.run
        return {"model": r.model.name, "system": getattr(r.system, "name", str(r.system)),
                "mfu": self.mfu, "hfu": self.hfu, "lost": 1.0 - self.mfu,
                "bubble_share": self.bubble, "communication_share": self.communication,
                "communication_split": {"tp": self.tp_share, "ep": self.ep_share,
                                        "pp": self.pp_share, "dp_exposed": self.dp_share},
                "optimizer_share": self.optimizer, "recomputation_share": self.recomputation,
                "kernel_share": self.kernel, "useful_share": self.useful,
                "feasible": self.feasible, "reason": self.reason}

    def explain(self) -> str:
        r = self.run
        s = r.step_s

        def ms(x: float) -> str:
            return f"{x * 1e3:.4g} ms"

        roof = f"({r.devices} x {r.peak_flops / 1e12:.4g} TFLOP/s x {s:.4g} s)"
        lines = [
            f"{r.model.name} on {r.devices} x {r.hardware.name}: MFU {self.mfu:.4f}, so "
            f"{1 - self.mfu:.4f} of the roof {roof} is lost:",
            f"  pipeline bubble  = t_bubble / t_step = {ms(r.bubble_s)} / {ms(s)} = "
            f"{self.bubble:.4f}",
            f"  communication    = (TP {ms(r.tp_comm_s)} + EP {ms(r.ep_comm_s)} + PP "
            f"{ms(r.pp_comm_s)} + exposed DP {ms(r.dp_exposed_s + r.zero3_exposed_s)}) / "
            f"{ms(s)} = "
            f"{self.communication:.4f}",
            f"  optimizer        = t_opt / t_step = {ms(r.optimizer_s)} / {ms(s)} = "
            f"{self.optimizer:.4f}",
            f"  recomputation    = HFU - MFU = (F_hw {r.hardware_flops:.4g} - F_model "
            f"{r.model_flops:.4g}) / roof = {self.hfu:.4f} - {self.mfu:.4f} = "
            f"{self.recomputation:.4f}",
            f"  kernel efficiency = useful - HFU = (1 - bubble - communication - optimizer) - "
            f"HFU = {self.useful:.4f} - {self.hfu:.4f} = {self.kernel:.4f}",
            f"  check: MFU + terms = {self.total:.12f}",
        ]
        if not self.feasible:
            lines.append(f"  note: {self.reason}")
        return "\n".join(lines)


class EfficiencyModel(ForwardModel):
    """Where a training step's lost FLOPs go (module docstring)."""

    options = (
        Option("run", None, "a DistributedResult (or give model, fleet and config)"),
        Option("model", None, "transformer or layered model, with fleet and config"),
        Option("fleet", None, "chip, node or fleet, with model and config"),
        Option("config", None, "a DistributedConfig, with model and fleet"),
    )

    @classmethod
    def example(cls, feasible: bool = True) -> dict[str, Any]:
        """Llama-3-8B on one DGX H100 (8-way DP, ZeRO-1, batch 64 x 2048); the infeasible one
        is GPT-3 175B unsharded on the same node (its step is still decomposed)."""
        from ..specs.configs import DistributedConfig
        if feasible:
            return dict(model="Llama3_8B", fleet="DGX_H100",
                        config=DistributedConfig(batch_size=64, seq_len=2048, zero_stage=1))
        from .distributed import DistributedModel
        return dict(run=DistributedModel().solve("GPT3_175B", "DGX_H100", batch_size=8,
                                                 seq_len=2048))

    def solve(self, run=None, model=None, fleet=None, config=None) -> EfficiencyResult:
        """Split ``1 - MFU`` of a training step into bubble, communication, optimizer,
        recomputation and kernel-efficiency shares (module docstring).

        Parameters
        ----------
        run : DistributedResult, optional
            The step to decompose.
        model, fleet, config : optional
            Instead of ``run``: a model and a chip, node or fleet (specs or zoo names) and a
            :class:`~mlsysim.specs.configs.DistributedConfig`, solved by DistributedModel.

        Returns
        -------
        EfficiencyResult
            ``mfu``, ``hfu`` and the shares (dimensionless fractions of ``devices x peak x
            step``): ``bubble``, ``communication``, ``optimizer``, ``recomputation``,
            ``kernel``; they and MFU sum to 1.

        Examples
        --------
        >>> import mlsysim
        >>> run = mlsysim.DistributedModel().solve("Llama3_8B", "DGX_H100", batch_size=64,
        ...                                        seq_len=2048, zero_stage=1)
        >>> r = mlsysim.EfficiencyModel().solve(run)
        >>> abs(r.total - 1.0) < 1e-12, r.bubble          # dp only: no pipeline, no bubble
        (True, 0.0)
        """
        r = training_run(run, model, fleet, config, OWNER)
        if r is None:
            raise ValidationError("run", "is needed: a DistributedResult, or model, fleet and "
                                  "config.", owner=OWNER)
        s = r.step_s
        tp, ep, pp, dp = (x / s for x in (r.tp_comm_s, r.ep_comm_s, r.pp_comm_s,
                                          r.dp_exposed_s + r.zero3_exposed_s))
        bubble, optimizer = r.bubble_s / s, r.optimizer_s / s
        communication = tp + ep + pp + dp
        useful = 1.0 - bubble - communication - optimizer
        mfu, hfu = r.mfu, r.hfu
        return EfficiencyResult(run=r, mfu=mfu, hfu=hfu, bubble=bubble,
                                communication=communication, optimizer=optimizer,
                                recomputation=hfu - mfu, kernel=useful - hfu, tp_share=tp,
                                ep_share=ep, pp_share=pp, dp_share=dp)
