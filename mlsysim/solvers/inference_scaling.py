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
from ..core.engine import ForwardModel
from ..core.result import Result
from ..errors import ValidationError
from .serving import ServingModel, ServingResult

__all__ = ["InferenceScalingModel", "InferenceScalingResult"]

OWNER = "InferenceScalingModel"


@dataclass(frozen=True, eq=False)
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

    def headline(self) -> dict[str, Any]:
        return {"model": self.scaled.model.name, "hardware": self.scaled.hardware.name,
                "num_samples": self.num_samples, "reasoning_tokens": self.reasoning_tokens,
                "tokens_generated": self.tokens_generated, "latency": self.latency,
                "baseline_latency": self.baseline.e2e_latency,
                "latency_multiplier": round(self.latency_multiplier, 3),
                "energy_upper_bound": self.energy, "feasible": self.scaled.feasible,
                "reason": self.scaled.reason}

    def explain(self) -> str:
        return (f"{self.num_samples} sample(s) x ({self.reasoning_tokens} reasoning + "
                f"{self.scaled.output_len - self.reasoning_tokens} answer tokens): "
                f"{self.latency.magnitude:.4g} ms vs {self.baseline.e2e_latency.magnitude:.4g}"
                f" ms for the answer alone (x{self.latency_multiplier:.3g}); ITL grows from "
                f"{self.baseline.itl.magnitude:.3g} to {self.scaled.itl.magnitude:.3g} ms with "
                "the context and the batch")


class InferenceScalingModel(ForwardModel):
    def solve(self, model, hardware, prompt_len: int, reasoning_steps: int,
              tokens_per_step: int = 256, answer_len: int = 256, num_samples: int = 1,
              **serving_options) -> InferenceScalingResult:
        for name in ("batch_size", "output_len", "seq_len"):
            if name in serving_options:
                raise ValidationError(name, "is set by the scaling model (num_samples, "
                                      "reasoning_steps * tokens_per_step + answer_len, "
                                      "prompt_len).", owner=OWNER)
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
