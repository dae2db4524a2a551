"""Refit each QuantizedKernels entry's speed from its measurements and write it back.

    python scripts/fit_quantized_kernels.py          # rewrite speed / speed_range in the YAML
    python scripts/fit_quantized_kernels.py --check  # exit 1 if a stored value is stale

The fit is mlsysim.validation.quantized_fit (the model's FP8-over-FP16 speed-up against each
published one); values are stored to three decimals.
"""

from __future__ import annotations

import re
import sys

from mlsysim.validation.quantized_fit import fit_speed
from mlsysim.zoo import DATA, QuantizedKernels

PATH = DATA / "quantized_kernels.yaml"


def fitted() -> dict[str, tuple[float, tuple[float, float]]]:
    out = {}
    for key in QuantizedKernels.names():
        speed, (lo, hi), fits = fit_speed(QuantizedKernels.get(key))
        for f in fits:
            m = f.measurement
            print(f"{key}: {m['model']} batch {m['batch']} {m['prompt_len']}/{m['output_len']} "
                  f"measured {m['speedup']:.2f}x, model {f.model_speedup_at_1:.2f}x at today's "
                  f"kernels -> speed {f.speed:.3f}")
        out[key] = (round(speed, 3), (round(lo, 3), round(hi, 3)))
    return out


def main(argv: list[str]) -> int:
    values = fitted()
    text = PATH.read_text()
    new = text
    for key, (speed, (lo, hi)) in values.items():
        entry = re.search(rf"^- key: {key}\n(?:(?!^- key:).*\n)*", new, re.M)
        block = entry.group(0)
        block2 = re.sub(r"^  speed: .*$", f"  speed: {speed}", block, flags=re.M)
        block2 = re.sub(r"^  speed_range: .*$", f"  speed_range: [{lo}, {hi}]", block2,
                        flags=re.M)
        new = new.replace(block, block2)
        print(f"{key}: speed {speed}, range [{lo}, {hi}]")
    if "--check" in argv:
        if new != text:
            print(f"{PATH} is stale: run python scripts/fit_quantized_kernels.py")
            return 1
        return 0
    PATH.write_text(new)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
