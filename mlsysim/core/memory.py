"""Memory per device, accounted once for every solver and optimizer.

A run holds, on each device::

    resident(B) = weights + gradients + optimizer state          (independent of the batch)
                + B * per_sample                                (KV cache / SSM state / stored
                                                                  activations, per sequence)
                + activations                                   (runtime buffers of the
                                                                  largest step)
                + B * activations_per_sample

and fits when ``resident(B) <= usable`` (the device capacity times the fraction the runtime
may use: vLLM's 0.9, or 1 for a bare pass). ``B`` may be an int or a numpy array (a sweep):
one equation for both. Serving sizes ``activations`` for the largest scheduled step (fixed);
a single pass grows them with the batch (``activations_per_sample``). Gradients and
optimizer state are zero until training fills them.
Left out: allocator fragmentation beyond ``usable``, CUDA context and library workspaces
(inside the runtime's reserve), host memory.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

__all__ = ["MemoryBudget", "fmt_bytes"]


def fmt_bytes(n: float) -> str:
    """Decimal bytes with a readable prefix: 1.2e9 -> '1.2 GB'."""
    for unit, scale in (("TB", 1e12), ("GB", 1e9), ("MB", 1e6), ("kB", 1e3)):
        if n >= scale:
            return f"{n / scale:.3g} {unit}"
    return f"{n:.3g} B"


@dataclass(frozen=True)
class MemoryBudget:
    """Bytes per device (see the module docstring). ``per_sample_label`` names the per-sample
    term in messages ("KV", "state")."""

    weights: float
    usable: float
    per_sample: float = 0.0
    activations: float = 0.0
    activations_per_sample: float = 0.0
    gradients: float = 0.0
    optimizer: float = 0.0
    per_sample_label: str = "KV"

    @property
    def fixed(self) -> float:
        """Bytes that do not depend on the batch."""
        return self.weights + self.gradients + self.optimizer + self.activations

    def total(self, batch):
        """Resident bytes at ``batch`` (an int or an array)."""
        return self.fixed + batch * (self.per_sample + self.activations_per_sample)

    def fits(self, batch):
        return self.total(batch) <= self.usable

    def max_batch(self) -> int:
        """The largest batch that fits (0 when not even one does)."""
        grow = self.per_sample + self.activations_per_sample
        free = self.usable - self.fixed
        if grow <= 0:
            return 0 if free < 0 else np.iinfo(np.int64).max
        return int(max(free, 0.0) // grow)

    def free_for_samples(self) -> float:
        """Bytes left for the per-sample terms once the fixed ones are resident."""
        return max(self.usable - self.fixed, 0.0)

    def terms(self, batch: int) -> dict[str, float]:
        d = {"weights": self.weights, "gradients": self.gradients,
             "optimizer state": self.optimizer,
             self.per_sample_label: batch * self.per_sample,
             "activations": self.activations + batch * self.activations_per_sample}
        return {k: v for k, v in d.items() if v > 0 or k == "weights"}

    def largest_term(self, batch: int) -> str:
        t = self.terms(batch)
        return max(t, key=t.get)

    def reason(self, batch: int, where: str) -> str | None:
        """None when ``batch`` fits; otherwise what is needed, term by term, against what
        ``where`` (the device, with the usable fraction) offers."""
        total = float(self.total(batch))
        if total <= self.usable:
            return None
        parts = ", ".join(f"{k} {fmt_bytes(v)}" for k, v in self.terms(batch).items())
        return (f"needs {fmt_bytes(total)} per device ({parts}; largest: "
                f"{self.largest_term(batch)}), {where} has {fmt_bytes(self.usable)}")
