"""Cost of test-time compute: reasoning tokens and parallel samples.

A request thinks for ``reasoning_steps`` steps of ``tokens_per_step`` tokens each (the context
grows with every step), then writes an ``answer_len`` answer; ``num_samples`` such chains run
in parallel as one batch (best-of-N, self-consistency). Time and tokens come from ServingModel
with output_len = steps * tokens_per_step + answer_len and batch = num_samples; the baseline
is the answer alone from one sample. Energy is the device's TDP times the time (an upper
bound: the board rarely draws its TDP in memory-bound decode).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from ..core import validate as check
from ..core.contract import REQUIRED, ForwardModel, Option, Result
from ..specs.configs import ServingConfig
from ..specs.configs import serving_options as serving_options_of
from .serving import ServingModel, ServingResult

__all__ = ["InferenceScalingModel", "InferenceScalingResult"]

OWNER = "InferenceScalingModel"


@dataclass(frozen=True, eq=False, repr=False)
class InferenceScalingResult(Result):
    baseline: ServingResult
    scaled: ServingResult
    num_samples: int
    reasoning_tokens: int

    @property
    def latency(self):
        return self.scaled.e2e_latency

    @property
    def latency_multiplier(self) -> float:
        return self.scaled.e2e_latency.magnitude / self.baseline.e2e_latency.magnitude

    @property
    def tokens_generated(self) -> int:
        return self.num_samples * self.scaled.output_len

    @property
    def energy(self):
        hw = self.scaled.hardware
        if hw.tdp is None:
            return None
        devices = self.scaled.tp_size * self.scaled.pp_size
        return (hw.tdp * devices * self.scaled.e2e_latency).to("kJ")

    @property
    def feasible(self) -> bool:
        return self.scaled.feasible and self.baseline.feasible

    @property
    def reason(self) -> str | None:
        if not self.scaled.feasible:
            return f"{self.num_samples} sample(s) with reasoning: {self.scaled.reason}"
        if not self.baseline.feasible:
            return f"even the answer alone: {self.baseline.reason}"
        return None

    @property
    def binding(self) -> str:
        """The scaled run's binding resource (see ServingResult.binding)."""
        return self.scaled.binding

    @property
    def assumptions(self) -> tuple[str, ...]:
        return ("samples run in parallel as one batch", "every chain has the same length",
                "energy = TDP x devices x time (an upper bound)", *self.scaled.assumptions)

    main_latency = "latency"
    summary_inputs = ("scaled.model:", "scaled.hardware:", "num_samples:samples",
                      "reasoning_tokens:reasoning")
    summary_numbers = ("latency:", "latency_multiplier:x")

    def trace(self) -> dict[str, Any]:
        """Both serving runs' traces (the answer alone, and with reasoning and samples)."""
        return {"result": type(self).__name__, "num_samples": self.num_samples,
                "reasoning_tokens": self.reasoning_tokens,
                "baseline": self.baseline.trace(), "scaled": self.scaled.trace()}

    def headline(self) -> dict[str, Any]:
        return {"model": self.scaled.model.name, "hardware": self.scaled.hardware.name,
                "num_samples": self.num_samples, "reasoning_tokens": self.reasoning_tokens,
                "tokens_generated": self.tokens_generated, "latency": self.latency,
                "baseline_latency": self.baseline.e2e_latency,
                "latency_multiplier": round(self.latency_multiplier, 3),
                "energy_upper_bound": self.energy, "feasible": self.feasible,
                "reason": self.reason}

    def explain(self) -> str:
        return (f"{self.num_samples} sample(s) x ({self.reasoning_tokens} reasoning + "
                f"{self.scaled.output_len - self.reasoning_tokens} answer tokens): "
                f"{self.latency.magnitude:.4g} ms vs {self.baseline.e2e_latency.magnitude:.4g}"
                f" ms for the answer alone (x{self.latency_multiplier:.3g}); ITL grows from "
                f"{self.baseline.itl.magnitude:.3g} to {self.scaled.itl.magnitude:.3g} ms with "
                "the context and the batch")


class InferenceScalingModel(ForwardModel):
    """Latency, tokens and energy of reasoning chains and parallel samples."""

    options = (
        Option("model", REQUIRED, "generative model: spec or zoo name"),
        Option("hardware", REQUIRED, "device: spec or zoo name"),
        Option("prompt_len", REQUIRED, "prompt tokens"),
        Option("reasoning_steps", REQUIRED, "thinking steps per chain, >= 0"),
        Option("tokens_per_step", 256, "tokens per thinking step"),
        Option("answer_len", 256, "answer tokens"),
        Option("num_samples", 1, "chains run in parallel (best-of-N)"),
        Option("serving", None, "further ServingModel options: a dict of ServingConfig "
               "fields or a ServingConfig"),
    )

    @classmethod
    def example(cls, feasible: bool = True) -> dict[str, Any]:
        """Llama-3-8B on an H100, 4 samples x 4 steps; then 512 samples of 16 x 256-token
        steps: 512 KV caches of 4.9k tokens (~330 GB) cannot fit."""
        from ..zoo import Hardware, Models
        if feasible:
            return dict(model=Models.Llama3_8B, hardware=Hardware.H100, prompt_len=512,
                        reasoning_steps=4, num_samples=4)
        return dict(model=Models.Llama3_8B, hardware=Hardware.H100, prompt_len=512,
                    reasoning_steps=16, num_samples=512)

    def solve(self, model, hardware, prompt_len: int, reasoning_steps: int,
              tokens_per_step: int = 256, answer_len: int = 256, num_samples: int = 1,
              serving: ServingConfig | dict | None = None) -> InferenceScalingResult:
        """``serving``: further ServingModel options (a dict of ServingConfig fields or a
        ServingConfig); batch, prompt and output lengths are the scaling model's."""
        serving_options = serving_options_of(serving, OWNER, {
            "batch_size": "num_samples", "output_len": "reasoning_steps * tokens_per_step + "
            "answer_len", "seq_len": "prompt_len"})
        check.positive_int("prompt_len", prompt_len, OWNER)
        steps = check.non_negative_int("reasoning_steps", reasoning_steps, OWNER)
        per = check.positive_int("tokens_per_step", tokens_per_step, OWNER)
        n = check.positive_int("num_samples", num_samples, OWNER)
        answer = check.positive_int("answer_len", answer_len, OWNER)
        s = ServingModel()
        base = s.solve(model, hardware, seq_len=prompt_len, output_len=answer, batch_size=1,
                       **serving_options)
        scaled = s.solve(model, hardware, seq_len=prompt_len, output_len=steps * per + answer,
                         batch_size=n, **serving_options)
        return InferenceScalingResult(baseline=base, scaled=scaled, num_samples=n,
                                      reasoning_tokens=steps * per)
