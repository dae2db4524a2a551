"""Continuous (iteration-level) batching in steady state [Yu et al., Orca, OSDI 2022], with
paged KV [Kwon et al., vLLM, SOSP 2023] and chunked prefill [Agrawal et al., Sarathi-Serve,
OSDI 2024].

Requests of ``prompt_len`` tokens arrive at ``arrival_rate_qps`` and each generates
``output_len`` tokens. Every engine step runs one token for each of the N decoding sequences
plus up to ``max_num_batched_tokens - N`` prompt tokens (chunked prefill), and costs

    tau(N) = pass(N decode tokens at mean context P + O/2,  c prompt tokens) + step overhead,

one pass reading the weights once. In steady state decode tokens leave at lambda * O per second
and prompt tokens at lambda * P, so N / tau = lambda * O and c = N * P / O. N is found by
bisection (throughput N / tau grows with N); the KV cache (paged) and the engine's
max_num_seqs cap N. Latency: TPOT = tau; TTFT = wait for prefill slots (M/D/1 mean wait, a
prompt occupying P / free of a step's spare budget) + its own chunked prefill steps. Without an
arrival rate the engine is saturated: N at its cap, giving the maximum throughput.
Left out: preemption and swapping, prefix sharing between requests, output-length variance.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

from ..core.contract import REQUIRED, Option
from ..core.engine import ForwardModel, resolve
from ..core.result import Result
from ..errors import ValidationError
from ..specs.configs import ContinuousBatchingConfig
from ..specs.hardware import BYTES_PER_ELEMENT, HardwareSpec
from ..specs.model import ModelSpec, TransformerSpec
from ..specs.serving import ServingEngineSpec
from ..units import Q_, Rate
from ..workloads.transformer import Segment
from .queueing import mmc_mean_wait
from .serving import ServingModel, pass_time, serving_efficiency

__all__ = ["ContinuousBatchingModel", "ContinuousBatchingResult"]

OWNER = "ContinuousBatchingModel"


@dataclass(frozen=True, eq=False, repr=False)
class ContinuousBatchingResult(Result):
    model: ModelSpec
    hardware: HardwareSpec
    engine: ServingEngineSpec
    prompt_len: int
    output_len: int
    tp_size: int
    arrival_rate: float | None      # requests/s asked for (None: saturated)
    concurrency: float              # decoding sequences per step, N
    max_concurrency: int            # cap from KV capacity and max_num_seqs
    prefill_chunk: float            # prompt tokens per step, c
    step_s: float                   # tau
    step_overhead_s: float
    ttft_wait_s: float
    ttft_service_s: float
    feasible: bool
    reason: str | None

    @property
    def requests_per_s(self) -> Rate:
        return Rate(self.concurrency / (self.step_s * self.output_len), "1/s")

    @property
    def output_tokens_per_s(self) -> Rate:
        return Rate(self.concurrency / self.step_s, "token/s")

    @property
    def tokens_per_s_per_gpu(self) -> Rate:
        return Rate(float(self.output_tokens_per_s) / self.tp_size, "token/s")

    @property
    def total_tokens_per_s(self) -> Rate:
        return Rate(float(self.requests_per_s) * (self.prompt_len + self.output_len), "token/s")

    @property
    def tpot(self):
        return Q_(self.step_s, "s").to("ms")

    @property
    def ttft(self):
        return Q_(self.ttft_wait_s + self.ttft_service_s, "s").to("ms")

    @property
    def e2e_latency(self):
        return Q_(self.ttft_wait_s + self.ttft_service_s + (self.output_len - 1) * self.step_s,
                  "s").to("ms")

    @property
    def binding(self) -> str:
        """At the concurrency cap (saturated or overloaded): "prefill budget" when the chunk
        budget admits prompts slower than the cap would, else "max_num_seqs" or "KV capacity",
        whichever sets the cap. Below it: "prefill budget" if prompts outrun the budget,
        "queueing" if the prefill wait outlasts the prefill, else "arrival rate" (demand)."""
        budget_bound = self.prefill_chunk < self.concurrency * self.prompt_len / \
            self.output_len - 1e-9
        if self.concurrency >= self.max_concurrency:
            if budget_bound:
                return "prefill budget"
            return ("max_num_seqs" if self.max_concurrency >= self.engine.max_num_seqs
                    else "KV capacity")
        if not self.feasible:
            return "prefill budget"
        return "queueing" if self.ttft_wait_s > self.ttft_service_s else "arrival rate"

    @property
    def assumptions(self) -> tuple[str, ...]:
        return ("steady state: Poisson arrivals at a constant mean rate",
                "every request has the same prompt and output length",
                "decode context at the mean, prompt + output_len / 2",
                "prefill wait: M/D/1 over the step's spare token budget",
                "no preemption, swapping or prefix sharing")

    main_latency = "e2e_latency"
    summary_inputs = ("model", "hardware", "engine", "prompt_len:prompt", "output_len:output")
    summary_numbers = ("output_tokens_per_s:", "ttft", "tpot")

    def headline(self) -> dict[str, Any]:
        return {
            "model": self.model.name, "hardware": self.hardware.name,
            "engine": self.engine.name, "tp_size": self.tp_size,
            "prompt_len": self.prompt_len, "output_len": self.output_len,
            "arrival_rate": None if self.arrival_rate is None else
            Rate(self.arrival_rate, "1/s"), "requests_per_s": self.requests_per_s,
            "output_tokens_per_s": self.output_tokens_per_s,
            "tokens_per_s_per_gpu": self.tokens_per_s_per_gpu,
            "ttft": self.ttft, "tpot": self.tpot, "e2e_latency": self.e2e_latency,
            "concurrency": round(self.concurrency, 2), "max_concurrency": self.max_concurrency,
            "feasible": self.feasible, "reason": self.reason,
            "metric_definitions": {
                "tpot": "time per output token after the first = one engine step",
                "ttft": "mean wait for prefill slots + prefill steps (queueing included; "
                        "without an arrival rate, the prefill steps only)",
                "output_tokens_per_s": "decode tokens per second of the whole tp group",
                "tokens_per_s_per_gpu": "output_tokens_per_s / tp_size",
                "total_tokens_per_s": "(prompt + output) tokens per second",
            },
        }

    def explain(self) -> str:
        return "\n".join([
            f"{self.model.name} on {self.tp_size} x {self.hardware.name} with "
            f"{self.engine.name}: prompt {self.prompt_len}, output {self.output_len}",
            f"  step: {self.concurrency:.1f} decode tokens + {self.prefill_chunk:.0f} prompt "
            f"tokens (budget {self.engine.max_num_batched_tokens}), tau = "
            f"{self.step_s * 1e3:.4g} ms incl. {self.step_overhead_s * 1e3:.3g} ms step "
            f"overhead",
            f"  steady state: N / tau = {float(self.output_tokens_per_s):.4g} tokens/s = "
            f"{float(self.requests_per_s):.4g} requests/s x {self.output_len} tokens"
            + (f" (asked {self.arrival_rate:g} req/s)" if self.arrival_rate else " (saturated)"),
            f"  TTFT = wait {self.ttft_wait_s * 1e3:.4g} ms + prefill (up to "
            f"{self.engine.max_concurrent_prefills} prompt(s) share the spare budget) "
            f"{self.ttft_service_s * 1e3:.4g} ms; TPOT = tau = {self.step_s * 1e3:.4g} ms",
            f"  concurrency cap {self.max_concurrency} (KV cache pages and max_num_seqs)"
            + ("" if self.feasible else f"; INFEASIBLE: {self.reason}"),
        ])


class ContinuousBatchingModel(ForwardModel):
    """Steady-state throughput and latency of an iteration-level scheduler."""

    options = (
        Option("model", REQUIRED, "decoder transformer: spec or zoo name"),
        Option("hardware", REQUIRED, "device: spec or zoo name"),
        Option("prompt_len", None, "prompt tokens per request (required unless config)"),
        Option("output_len", None, "generated tokens per request (required unless config)"),
        Option("arrival_rate_qps", None, "requests per second; None: saturated"),
        Option("engine", "vllm", "serving-engine preset (mlsysim.ServingEngines)"),
        Option("precision", None, "compute precision; default: the device's"),
        Option("kv_precision", None, "KV-cache precision; default: precision"),
        Option("weight_precision", None, "weight precision; default: precision"),
        Option("tp_size", 1, "tensor-parallel devices"),
        Option("page_size", 16, "tokens per KV-cache page"),
        Option("memory_utilization", None, "fraction of device memory for weights, "
               "activations and KV cache (default: the engine preset's own rule)"),
        Option("config", None, "a ContinuousBatchingConfig holding all of the above but model "
               "and hardware (the three-input form)"),
    )

    @classmethod
    def example(cls, feasible: bool = True) -> dict[str, Any]:
        """Llama-3-8B on an H100 at 2 req/s; then at 1000 req/s, beyond its capacity."""
        from ..zoo import Hardware, Models
        return dict(model=Models.Llama3_8B, hardware=Hardware.H100, prompt_len=512,
                    output_len=64, arrival_rate_qps=2 if feasible else 1000)

    def solve(self, model, hardware, prompt_len: int | None = None,
              output_len: int | None = None, arrival_rate_qps: float | None = None,
              engine: str = "vllm", precision: str | None = None,
              kv_precision: str | None = None, weight_precision: str | None = None,
              tp_size: int = 1, page_size: int = 16, memory_utilization: float | None = None,
              config: ContinuousBatchingConfig | None = None) -> ContinuousBatchingResult:
        """Serve a stream of requests with a serving-engine preset (``mlsysim.zoo.ServingEngines``:
        vllm, sglang, tensorrt_llm, static). ``hardware`` is a chip, node or fleet; the
        keywords are the convenience form of ``solve(model, system, ContinuousBatchingConfig(
        ...))``."""
        from ..core.collectives import resolve_system
        from ..zoo import ServingEngines

        if isinstance(prompt_len, ContinuousBatchingConfig):
            config, prompt_len = prompt_len, None
        if config is None:
            config = ContinuousBatchingConfig(
                prompt_len=prompt_len, output_len=output_len, arrival_rate_qps=arrival_rate_qps,
                engine=engine, precision=precision, kv_precision=kv_precision,
                weight_precision=weight_precision, tp_size=tp_size, page_size=page_size,
                memory_utilization=memory_utilization)
        elif not isinstance(config, ContinuousBatchingConfig):
            raise ValidationError("config", "must be a ContinuousBatchingConfig. Got "
                                  f"{type(config).__name__} instead.", owner=OWNER)
        c = config
        system = hardware
        hardware, path = resolve_system(system)
        model = resolve(model, hardware)[0]
        engine = c.engine
        preset = engine if isinstance(engine, ServingEngineSpec) else ServingEngines.get(engine)
        if not isinstance(model, TransformerSpec) or model.kind == "encoder":
            raise ValidationError("model", f"must be a decoder transformer; {model.name} is "
                                  f"{model.architecture}.", owner=OWNER)
        P, Out, lam = c.prompt_len, c.output_len, c.arrival_rate_qps
        # One request through ServingModel validates the rest (precisions, TP, context, memory).
        try:
            single = ServingModel().solve(model, system, seq_len=P, output_len=Out,
                                          precision=c.precision, kv_precision=c.kv_precision,
                                          weight_precision=c.weight_precision,
                                          tp_size=c.tp_size, page_size=c.page_size,
                                          memory_utilization=c.memory_utilization,
                                          engine=preset)
        except ValidationError as exc:      # the options are this solver's own
            raise exc.owned_by(OWNER) from None
        tp = single.tp_size
        prec, kvp, wp = single.precision, single.kv_precision, single.weight_precision
        e, kv_e, we = (BYTES_PER_ELEMENT[p] for p in (prec, kvp, wp))
        cap = min(single.max_concurrent_sequences, preset.max_num_seqs)
        overhead = float(preset.step_overhead.to("s").magnitude)
        budget = preset.max_num_batched_tokens
        eff = serving_efficiency(hardware, prec, preset.cuda_graphs)
        ctx = P + Out // 2

        def step(n: int, chunk: tuple[int, int] | None = None) -> tuple[float, float]:
            """(tau, prompt tokens per step) with n sequences decoding and the steady-state
            prompt share, or an explicit (tokens, prefix) prompt chunk."""
            c = n * P / Out
            if preset.chunked_prefill:
                c = min(c, max(budget - n, 0))
            if chunk is not None:
                prompt_seg = Segment(chunk[0], chunk[1])
            elif c > P:  # several whole prompts per step
                prompt_seg = Segment(P, 0, sequences=max(int(round(c / P)), 1))
            else:  # a chunk of one prompt, at the mean offset P/2 into it
                prompt_seg = Segment(max(int(math.ceil(c)), 1), P // 2)
            if chunk is not None:
                c = chunk[0]
            segments = (Segment(1, ctx, sequences=n),) + ((prompt_seg,) if c > 0 else ())
            t = pass_time(model, hardware, segments, 1, precision=prec, e=e, kv_e=kv_e, we=we,
                          tp=tp, eff=eff, path=path)   # TP all-reduces are rows of the pass
            return t + overhead, c

        feasible, reason = True, None
        if cap < 1:
            feasible = False
            reason = single.reason or "the KV cache has no room for one sequence"
            cap = 1
        tau_cap, c_cap = step(cap)
        max_rate = cap / (tau_cap * Out)
        if c_cap < cap * P / Out - 1e-9:
            # The chunk budget, not the cache, limits how fast prompts enter.
            max_rate = min(max_rate, c_cap / (tau_cap * P))
        if lam is None:
            n, (tau, c) = cap, (tau_cap, c_cap)
        elif lam >= max_rate:
            n, (tau, c) = cap, (tau_cap, c_cap)
            feasible = False
            reason = (f"arrival rate {lam:g} req/s exceeds the capacity of {max_rate:.4g} req/s "
                      f"(concurrency cap {cap})")
        else:
            lo, hi = 1, cap
            while lo < hi:  # smallest n whose throughput meets the arrival rate
                mid = (lo + hi) // 2
                t_mid, _ = step(mid)
                if mid / (t_mid * Out) >= lam:
                    hi = mid
                else:
                    lo = mid + 1
            n = lo
            tau, c = step(n)
        # TTFT: a prompt is prefilled in chunks of the budget left after the decode tokens,
        # each chunk riding in a step with the n decoding sequences.
        free = max(budget - n, 1) if preset.chunked_prefill else P
        share = max(free // preset.max_concurrent_prefills, 1)  # this prompt's part of it
        service, done = 0.0, 0
        while done < P:
            size = min(share, P - done)
            service += step(n, (size, done))[0]
            done += size
        # Waiting for prefill slots: each prompt occupies P / free of a step's budget, so the
        # budget serves prompts like one server of service time P * tau / free (M/D/1).
        # Saturated (no arrival rate): report the service part only; the queue is at its edge.
        occupancy = P * tau / free if preset.chunked_prefill else service
        wait = 0.0 if lam is None else (
            mmc_mean_wait(lam, occupancy, 1, service_time_cv=0.0) if lam * occupancy < 1
            else math.inf)
        if wait == math.inf and feasible:
            feasible = False
            reason = "prompts arrive faster than the prefill budget admits them"
        return ContinuousBatchingResult(
            model=model, hardware=hardware, engine=preset, prompt_len=P, output_len=Out,
            tp_size=tp, arrival_rate=lam, concurrency=float(n), max_concurrency=cap,
            prefill_chunk=float(c), step_s=tau, step_overhead_s=overhead, ttft_wait_s=wait,
            ttft_service_s=service, feasible=feasible, reason=reason)
