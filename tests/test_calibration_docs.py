"""docs/calibration.md's example CSV calibrates, and its stated fits hold on it."""

import re
from pathlib import Path

import pytest

from mlsysim.core.device_calibration import calibrate_device
from mlsysim.zoo import Hardware

DOC = Path(__file__).resolve().parents[1] / "docs" / "calibration.md"


def test_docs_example_csv_calibrates(tmp_path):
    csv = re.search(r"```csv\n(.*?)```", DOC.read_text(), re.S).group(1)
    path = tmp_path / "runs.csv"
    path.write_text(csv)
    h100 = Hardware.get("H100")
    result = calibrate_device(path, h100)
    # Three GEMM shapes: the full ramp is fitted, and every kind has a row, so nothing is kept.
    assert result.fitted == ("gemm", "memory", "attention", "kernel overhead")
    assert result.kept == ()
    eff = result.hardware.efficiency
    # eta_mem = 2850 GB/s copied / the H100 SXM's 3.35 TB/s = 0.8507.
    assert eff.memory == pytest.approx(2850 / 3350, rel=1e-3)
    # launch: the one row, 4.5 us.
    assert eff.kernel_overhead.to("s").magnitude == pytest.approx(4.5e-6, rel=1e-9)
    assert len(result.residuals) == 3
    assert all(0.9 < r < 1.1 for r in result.residuals.values())
