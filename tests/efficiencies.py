"""Efficiency terms for cost-model tests whose values are checked by hand."""

from mlsysim.core.calibration import Efficiency


def ideal(memory: float = 1.0) -> Efficiency:
    """Efficiencies of 1 (the memory's ``memory``), no launch floor, and a GEMM ramp that has
    faded for any row of at least one flop: F / (peak x tau) >= 1 / (peak x 1e-15), i.e. 1000
    at a 1 TFLOP/s peak and 500 at 2 TFLOP/s, so 1 - exp(-x) = 1.0 to double precision."""
    return Efficiency(gemm_max=1.0, gemm_tau_s=1e-15, gemm_alpha=1.0, attention_max=1.0,
                      memory=memory, kernel_overhead_s=0.0)
