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

from ..errors import ValidationError, closest
from ..specs.model import ModelSpec, SSMSpec, TransformerSpec

__all__ = ["MemoryBudget", "fmt_bytes", "OPTIMIZERS", "canonical_optimizer",
           "optimizer_state_bytes_per_param"]

FP32 = 4.0
# Dettmers et al. 2022 quantize each state in blocks of 2,048 values with one fp32 absmax each.
ADAM8BIT_BLOCK = 2048
# Canonical optimizer names, and what users also write for them.
OPTIMIZERS = ("adam", "sgd", "adafactor", "adam8bit")
_ALIASES = {"adam": "adam", "adamw": "adam", "adam_w": "adam",
            "sgd": "sgd", "sgd_momentum": "sgd", "momentum": "sgd",
            "adafactor": "adafactor",
            "adam8bit": "adam8bit", "adam_8bit": "adam8bit", "8bit_adam": "adam8bit",
            "adamw8bit": "adam8bit", "adamw_8bit": "adam8bit", "8bit_adamw": "adam8bit"}



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
        b = int(max(free, 0.0) // grow)
        # Floor division can land one short of the sum fits() compares (1.0 // 0.1 is 9.0, yet
        # ten 0.1-byte samples total exactly 1.0); never over (a property test checks both).
        return b + 1 if self.fits(b + 1) else b

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


# --- optimizer state: one table for training memory and checkpoints --------------------------
# Adam/AdamW: two fp32 moments [Kingma & Ba 2015]; with mixed precision's fp32 master and 16-bit
# weights and gradients, 2 + 2 + 4 + 8 = 16 B/param [Rajbhandari et al. 2020, ZeRO, sec. 3.1].
# SGD with momentum: one fp32 buffer. 8-bit Adam: two 1-byte states plus an fp32 absmax per
# block of 2,048 [Dettmers et al. 2022]. Adafactor: factored second moment, rows + columns of
# each weight matrix, 2 x 4 B / hidden per parameter [Shazeer & Stern 2018].

def canonical_optimizer(optimizer, owner: str | None = None) -> str:
    """'AdamW' -> 'adam'; unknown names raise ValidationError listing the allowed ones."""
    if isinstance(optimizer, str):
        key = optimizer.strip().lower().replace("-", "_")
        if key in _ALIASES:
            return _ALIASES[key]
    near = closest(str(optimizer), list(_ALIASES))
    hint = f" Did you mean: {', '.join(near)}?" if near else ""
    raise ValidationError("optimizer", f"must be one of: {', '.join(OPTIMIZERS)} (aliases "
                          f"adamw, adamw8bit, sgd_momentum). Got {optimizer!r} instead.{hint}",
                          owner=owner)


def _hidden(model: ModelSpec | None) -> int | None:
    if isinstance(model, TransformerSpec):
        return model.hidden
    if isinstance(model, SSMSpec):
        return model.d_model
    return None


def optimizer_state_bytes_per_param(optimizer: str, model: ModelSpec | None = None,
                                    owner: str | None = None) -> float:
    """Optimizer state per parameter in bytes (see the module docstring for the sources).

    >>> optimizer_state_bytes_per_param("adamw"), optimizer_state_bytes_per_param("sgd")
    (8.0, 4.0)
    >>> optimizer_state_bytes_per_param("adam8bit")      # 2 x (1 B + 4 B / 2048)
    2.00390625
    """
    opt = canonical_optimizer(optimizer, owner)
    if opt == "adam":
        return 2 * FP32
    if opt == "sgd":
        return FP32
    if opt == "adam8bit":
        return 2 * (1.0 + FP32 / ADAM8BIT_BLOCK)
    h = _hidden(model)
    if h is None:
        raise ValidationError("optimizer", "'adafactor' needs a model with a hidden size (a "
                              "transformer or SSM) to size its factored state; choose one of: "
                              f"{', '.join(o for o in OPTIMIZERS if o != 'adafactor')} for "
                              f"{getattr(model, 'name', model)!r}.", owner=owner)
    return 2 * FP32 / h


