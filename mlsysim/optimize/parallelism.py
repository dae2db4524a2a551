"""The fastest way to split a training run: a search over tensor, pipeline, context, expert and
data parallelism, micro-batch size, interleaving, recomputation and ZeRO stage.

The search space is data: every combination of the declared choices. A lowering choice (tp,
cp, ep, recomputation) is prepared once (:func:`~mlsysim.solvers.distributed.parts_for`); the
rest of the grid (pipeline depth, interleaving, micro-batch size, ZeRO stage; data parallelism
follows from the fleet) is evaluated at once by numpy broadcasting over the same equations
``DistributedModel`` uses for one config (``evaluate_grid``), so the best config's step time
and MFU are exactly what ``DistributedModel`` reports for it. Configs that cannot run are
pruned and counted by reason (tp x pp x cp not dividing the fleet, the batch not splitting
into replicas or micro-batches, interleaving without a whole number of rounds, experts not
dividing, out of memory).
Left out: heterogeneous stage sizes, non-power-of-two tensor parallelism, schedules other than
1F1B (interleaved), per-layer recomputation choices.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from ..core.contract import REQUIRED, ForwardModel, Option, Result
from ..errors import ValidationError
from ..solvers.distributed import _resolve, evaluate_grid, parts_for
from ..specs.configs import DistributedConfig
from ..units import Q_, Rate

__all__ = ["ParallelismOptimizer", "ParallelismResult"]

OWNER = "ParallelismOptimizer"
OBJECTIVES = ("step_time", "mfu")


@dataclass(frozen=True, eq=False, repr=False)
class ParallelismResult(Result):
    """The best configs of a search, with the counts of what was searched and pruned."""

    model: Any
    system: Any
    batch_size: int
    seq_len: int
    best_config: dict[str, Any] | None
    best_step_s: float | None
    best_mfu_value: float | None
    best_tokens_per_s: float | None
    total_searched: int
    search_space_size: int
    pruned: dict[str, int]
    top_candidates: tuple[dict[str, Any], ...] = field(default=())
    objective: str = "step_time"

    main_latency = "best_step_time"
    summary_inputs = ("model", "batch_size:batch", "seq_len:seq")
    summary_numbers = ("best_step_time:step", "best_mfu", "total_searched:searched")

    @property
    def best_step_time(self):
        return None if self.best_step_s is None else Q_(self.best_step_s, "s").to("ms")

    @property
    def best_mfu(self) -> float | None:
        return self.best_mfu_value

    @property
    def best_throughput(self) -> Rate | None:
        return None if self.best_tokens_per_s is None else Rate(self.best_tokens_per_s,
                                                                "token/s")

    @property
    def feasible(self) -> bool:
        return self.best_config is not None

    @property
    def reason(self) -> str | None:
        if self.feasible:
            return None
        counts = ", ".join(f"{k}: {v}" for k, v in sorted(self.pruned.items()) if v)
        return f"no config of {self.search_space_size} runs ({counts})"

    @property
    def binding(self) -> str:
        return "search" if self.feasible else "memory capacity"

    @property
    def assumptions(self) -> tuple[str, ...]:
        return ("the grid's configs are evaluated with DistributedModel's equations",
                "tensor parallelism in powers of two dividing the heads")

    def headline(self) -> dict[str, Any]:
        return {"model": self.model.name, "system": self.system.name,
                "batch_size": self.batch_size, "seq_len": self.seq_len,
                "objective": self.objective, "best_config": self.best_config,
                "best_step_time": self.best_step_time, "best_mfu": self.best_mfu,
                "best_throughput": self.best_throughput,
                "total_searched": self.total_searched,
                "search_space_size": self.search_space_size, "pruned": self.pruned,
                "top_candidates": list(self.top_candidates), "feasible": self.feasible,
                "reason": self.reason}

    def explain(self) -> str:
        lines = [f"{self.model.name} on {self.system.name}: searched {self.total_searched} of "
                 f"{self.search_space_size} configs (pruned: " + ", ".join(
                     f"{k} {v}" for k, v in sorted(self.pruned.items()) if v) + ")"]
        if self.feasible:
            lines.append(f"  best ({self.objective}): {self.best_config} -> step "
                         f"{self.best_step_s * 1e3:.4g} ms, MFU {self.best_mfu:.3f}, "
                         f"{self.best_tokens_per_s:,.0f} tokens/s")
            for c in self.top_candidates[1:]:
                lines.append(f"  then {c['config']}: {c['step_ms']:.4g} ms, MFU {c['mfu']:.3f}")
        else:
            lines.append(f"  {self.reason}")
        return "\n".join(lines)


def _powers_of_two(limit: int) -> list[int]:
    return [2 ** k for k in range(0, 31) if 2 ** k <= limit]


class ParallelismOptimizer(ForwardModel):
    """Search the parallel layouts of a training run for the fastest step (module
    docstring)."""

    options = (
        Option("model", REQUIRED, "transformer: spec or zoo name"),
        Option("fleet", REQUIRED, "chip, node or fleet (spec or zoo name)"),
        Option("batch_size", REQUIRED, "global batch in sequences"),
        Option("seq_len", None, "tokens per sequence; default: the model's default length"),
        Option("precision", None, "compute precision; default bf16 where published"),
        Option("max_tp", None, "largest tensor-parallel degree (default: the scale-up "
               "domain, at most 8)"),
        Option("max_pp", None, "largest pipeline depth (default: 64)"),
        Option("cp_sizes", (1,), "context-parallel degrees to try"),
        Option("ep_sizes", (1,), "expert-parallel degrees to try (MoE)"),
        Option("microbatch_sizes", (1, 2, 4, 8), "micro-batch sizes to try"),
        Option("v_stages", (1, 2), "interleaving depths to try"),
        Option("recomputation", ("none", "selective", "full"), "recomputation modes"),
        Option("zero_stages", (0, 1, 2, 3), "ZeRO stages to try"),
        Option("objective", "step_time", "'step_time' (fastest step) or 'mfu'"),
        Option("top_k", 5, "candidates to report"),
        Option("memory_utilization", 0.95, "usable fraction of device memory"),
        Option("dropout", True, "attention and hidden dropout on (their masks stored); "
               "False for models trained without, as Llama"),
        Option("attention_kernel", "flash", "the attention kernel the run uses "
               "(DistributedModel's: flash, flash1, triton, xformers, materialized)"),
        Option("backward_prefetch", "pre", "ZeRO-3 configs: DistributedModel's "
               "backward_prefetch, 'pre' (gathers overlapped) or 'post' (FSDP BACKWARD_POST: "
               "the backward waits for its gathers)"),
        Option("sharding_runtime", None, "ZeRO-3 configs: DistributedModel's "
               "sharding_runtime, the software whose measured throughput caps the gathers "
               "(a ShardingRuntimes key); default None: NCCL"),
    )

    @classmethod
    def example(cls, feasible: bool = True) -> dict[str, Any]:
        """Llama-3-8B on one DGX H100; GPT-3 175B on one node cannot fit any layout."""
        from ..zoo import Models, Nodes
        if feasible:
            return dict(model=Models.Llama3_8B, fleet=Nodes.DGX_H100, batch_size=64,
                        seq_len=2048)
        return dict(model=Models.GPT3_175B, fleet=Nodes.DGX_H100, batch_size=8,
                    seq_len=2048)

    def solve(self, model, fleet, batch_size: int, seq_len: int | None = None,
              precision: str | None = None, max_tp: int | None = None,
              max_pp: int | None = None, cp_sizes=(1,), ep_sizes=(1,),
              microbatch_sizes=(1, 2, 4, 8), v_stages=(1, 2),
              recomputation=("none", "selective", "full"), zero_stages=(0, 1, 2, 3),
              objective: str = "step_time", top_k: int = 5,
              memory_utilization: float = 0.95, dropout: bool = True,
              attention_kernel: str = "flash",
              backward_prefetch: str = "pre",
              sharding_runtime: str | None = None) -> ParallelismResult:
        """Search, returning the best configs (``best_config`` feeds ``DistributedModel``).

        Examples
        --------
        >>> import mlsysim
        >>> r = mlsysim.ParallelismOptimizer().solve("Llama3_8B", "DGX_H100", batch_size=64,
        ...                                          seq_len=2048, zero_stages=(1,))
        >>> r.feasible and r.total_searched > 0
        True
        """
        from ..core import validate as check
        base = DistributedConfig(batch_size=batch_size, seq_len=seq_len, precision=precision,
                                 memory_utilization=memory_utilization, dropout=dropout,
                                 attention_kernel=attention_kernel)
        flash = base.attention_kernel != "materialized"
        model, system, hardware, path, precision, seq = _resolve(model, fleet, base)
        if objective not in OBJECTIVES:
            raise ValidationError("objective", f"must be one of {', '.join(OBJECTIVES)}. Got "
                                  f"{objective!r} instead.", owner=OWNER)
        top_k = check.positive_int("top_k", top_k, OWNER)
        if backward_prefetch not in ("pre", "post"):
            raise ValidationError("backward_prefetch", "must be 'pre' or 'post'. Got "
                                  f"{backward_prefetch!r} instead.", owner=OWNER)
        if sharding_runtime is not None:
            if not isinstance(sharding_runtime, str):
                raise ValidationError("sharding_runtime", "must be a ShardingRuntimes key "
                                      f"(a string). Got {sharding_runtime!r} instead.",
                                      owner=OWNER)
            from ..zoo import ShardingRuntimes
            sharding_runtime = ShardingRuntimes.get(sharding_runtime).key
        from ..solvers.distributed import zero3_throughput
        cap = zero3_throughput(sharding_runtime)
        devices = path.total
        max_tp = check.positive_int("max_tp", max_tp if max_tp is not None else
                                    min(path.domain, 8), OWNER)
        max_pp = check.positive_int("max_pp", max_pp if max_pp is not None else 64, OWNER)
        def as_tuple(value):        # one choice may be given bare: recomputation="full"
            return (value,) if isinstance(value, (str, int)) else value

        cp_sizes, ep_sizes, microbatch_sizes, v_stages, recomputation, zero_stages = map(
            as_tuple, (cp_sizes, ep_sizes, microbatch_sizes, v_stages, recomputation,
                       zero_stages))
        choices = {}
        for name, values in (("cp_sizes", cp_sizes), ("ep_sizes", ep_sizes),
                             ("microbatch_sizes", microbatch_sizes), ("v_stages", v_stages)):
            try:
                choices[name] = sorted({check.positive_int(name, x, OWNER) for x in values})
            except TypeError:
                raise ValidationError(name, f"must be a list of positive whole numbers. Got "
                                      f"{values!r} instead.", owner=OWNER) from None
        recomputation = tuple(recomputation)
        for r in recomputation:
            if r not in ("none", "selective", "full"):
                raise ValidationError("recomputation", "must hold 'none', 'selective' or "
                                      f"'full'. Got {r!r} instead.", owner=OWNER)
        zero_stages = tuple(zero_stages)
        for z in zero_stages:
            if z not in (0, 1, 2, 3):
                raise ValidationError("zero_stages", f"must hold 0-3. Got {z!r} instead.",
                                      owner=OWNER)
        usable = hardware._base["capacity"] * memory_utilization
        from ..solvers.distributed import _depth
        heads = getattr(model, "heads", 1)      # layered models: data parallelism only
        tps = [t for t in _powers_of_two(max_tp) if heads % t == 0]
        pps = [p for p in range(1, min(max_pp, _depth(model)) + 1)]
        mbs_c = np.array(choices["microbatch_sizes"])
        v_c = np.array(choices["v_stages"])
        z_c = np.array(zero_stages)
        pruned = {"tp x pp x cp does not divide the fleet": 0,
                  "batch does not split into replicas and micro-batches": 0,
                  "interleaving needs pp > 1 and whole rounds": 0,
                  "ep does not divide the experts or dp x cp": 0,
                  "cp does not divide seq_len": 0, "out of memory": 0}
        space = len(tps) * len(pps) * len(choices["cp_sizes"]) * len(choices["ep_sizes"]) \
            * len(mbs_c) * len(v_c) * len(recomputation) * len(z_c)
        found: list[dict[str, Any]] = []
        searched = 0
        for tp, cp, ep, rc in itertools.product(tps, choices["cp_sizes"], choices["ep_sizes"],
                                                recomputation):
            n_inner = len(pps) * len(mbs_c) * len(v_c) * len(z_c)
            if seq % cp:
                pruned["cp does not divide seq_len"] += n_inner
                continue
            if ep > 1 and (model.moe is None or model.moe.experts % ep):
                pruned["ep does not divide the experts or dp x cp"] += n_inner
                continue
            P, MB, V, Z = (a.ravel() for a in np.meshgrid(np.array(pps), mbs_c, v_c, z_c,
                                                           indexing="ij"))
            ok_div = devices % (tp * P * cp) == 0
            pruned["tp x pp x cp does not divide the fleet"] += int((~ok_div).sum())
            dp = np.where(ok_div, devices // np.maximum(tp * P * cp, 1), 1)
            ok_ep = (dp * cp) % ep == 0
            ok_batch = (batch_size % dp == 0) & ((batch_size // dp) % MB == 0)
            M = np.where(ok_batch, batch_size // dp // MB, 1)
            ok_v = (V == 1) | ((P > 1) & (M % P == 0) & (P * V <= _depth(model)))
            keep = ok_div & ok_ep & ok_batch & ok_v
            pruned["ep does not divide the experts or dp x cp"] += int((ok_div & ~ok_ep).sum())
            pruned["batch does not split into replicas and micro-batches"] += int(
                (ok_div & ok_ep & ~ok_batch).sum())
            pruned["interleaving needs pp > 1 and whole rounds"] += int(
                (ok_div & ok_ep & ok_batch & ~ok_v).sum())
            if not keep.any():
                continue
            sel = np.flatnonzero(keep)
            sp = tp > 1
            parts = parts_for(model, hardware, path, precision, seq, tp, cp, ep, rc, sp, 1.0,
                              devices, flash=flash, dropout=base.dropout,
                              attention_kernel=base.attention_kernel)
            n = len(sel)
            grid = dict(tp=np.full(n, tp), pp=P[sel], cp=np.full(n, cp), dp=dp[sel], v=V[sel],
                        mbs=MB[sel], m=M[sel], zero=Z[sel])
            g = evaluate_grid(parts, system, model, grid, precision=precision, seq=seq, sp=sp,
                              recompute=rc, schedule="1f1b", overlap=True, optimizer="adam",
                              capacity_factor=1.0, usable=usable, flash=flash,
                              dropout=base.dropout, backward_prefetch=backward_prefetch,
                              zero3_throughput=cap)
            searched += n
            fits = g["fits"]
            pruned["out of memory"] += int((~fits).sum())
            peak = hardware._base[f"peak_{precision}"]
            mfu = g["model_flops"] / (devices * peak * g["step"])
            # Only this lowering's best top_k can reach the overall top_k: the rest are never
            # turned into Python rows (a stable sort keeps the grid's order among equals).
            score = np.where(fits, g["step"] if objective == "step_time" else -mfu, np.inf)
            best_here = np.argsort(score, kind="stable")[:min(top_k, int(fits.sum()))]
            for i in best_here:
                found.append({"config": {"tp": tp, "pp": int(grid["pp"][i]),
                                         "dp": int(grid["dp"][i]), "cp": cp, "ep": ep,
                                         "v_stages": int(grid["v"][i]),
                                         "microbatch_size": int(grid["mbs"][i]),
                                         "zero_stage": int(grid["zero"][i]),
                                         "activation_recomputation": rc,
                                         "dropout": base.dropout,
                                         "attention_kernel": base.attention_kernel,
                                         # it applies to ZeRO-3's gathers only
                                         "backward_prefetch": backward_prefetch
                                         if int(grid["zero"][i]) == 3 else "pre",
                                         **({"sharding_runtime": sharding_runtime}
                                            if sharding_runtime is not None
                                            and int(grid["zero"][i]) == 3 else {})},
                              "step_ms": float(g["step"][i]) * 1e3, "mfu": float(mfu[i]),
                              "tokens_per_s": float(g["tokens"][i] / g["step"][i]),
                              "memory_gb": float(g["memory"][i]) / 1e9,
                              "breakdown_ms": {
                                  "micro-batches": float(g["compute"][i]) * 1e3,
                                  "bubble": float(g["bubble"][i]) * 1e3,
                                  "optimizer": float(g["optimizer"][i]) * 1e3,
                                  "exposed DP": float(g["dp_exposed"][i]) * 1e3}})
        key = (lambda c: c["step_ms"]) if objective == "step_time" else (lambda c: -c["mfu"])
        found.sort(key=key)
        top = tuple(found[:top_k])
        best = top[0] if top else None
        return ParallelismResult(
            model=model, system=system, batch_size=batch_size, seq_len=seq,
            best_config=None if best is None else best["config"],
            best_step_s=None if best is None else best["step_ms"] / 1e3,
            best_mfu_value=None if best is None else best["mfu"],
            best_tokens_per_s=None if best is None else best["tokens_per_s"],
            total_searched=searched, search_space_size=space, pruned=pruned,
            top_candidates=top, objective=objective)
