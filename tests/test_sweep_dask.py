"""A sweep on Dask's local cluster equals the same sweep in this process, row for row.

The grid is the one in test_sweep (3 models x 2 devices x 2 precisions x 3 seq_lens x 6
batches) so every skip reason appears: fp8 on A100 (no fp8 peak), Llama-3-8B at 100,000
tokens (beyond its 8,192 context), ResNet-50 evaluated once (no sequence).
"""

import pickle

import numpy as np
import pytest

from mlsysim.errors import ValidationError
from mlsysim.optimize import sweep as sweep_module
from mlsysim.optimize.sweep import SweepResult, sweep

distributed = pytest.importorskip("distributed")

GRID = dict(models=["Llama3_8B", "ResNet50", "Mamba_2_8B"], hardware=["A100", "H100"],
            batch_sizes=[1, 3, 8, 64, 511, 4096], precisions=["fp16", "fp8"],
            seq_lens=[512, 4096, 100_000])


@pytest.fixture(scope="module")
def client():
    # Worker processes, not threads: specs, plans and results really cross pickling.
    with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True,
                                  dashboard_address=None) as cluster, \
            distributed.Client(cluster) as c:
        yield c


def test_dask_sweep_equals_local_sweep(client):
    local = sweep(**GRID, progress=False)
    remote = sweep(**GRID, progress=False, client=client)
    # 2 workers x 4 slices each over the 3*2*2*3 - 2*2*2 = 28 plans left after ResNet's
    # "no sequence" skips: slices of ceil(28/8) = 4 plans, so the table is joined from 7
    # parts, and a wrong join order or a lost skip count would show here.
    assert len(remote) == len(local) > 0
    for name, col in local.columns.items():
        assert remote[name].dtype.kind == col.dtype.kind
        np.testing.assert_array_equal(remote[name], col, err_msg=name)
    assert remote.skipped == local.skipped
    assert remote.skipped_plans == local.skipped_plans


def test_skip_counts_cover_the_grid(client):
    r = sweep(**GRID, progress=False, client=client)
    # Declared grid: 3*2*2*3 plans x 6 batches = 216 configs, each counted once.
    c = r.counts
    assert c["evaluated"] + sum(r.skipped.values()) == 216
    # ResNet: 2 devices x 2 precisions x 2 extra seq_lens x 6 batches = 48 "no sequence".
    assert r.skipped["no sequence"] == 48
    # fp8 on A100: (Llama 3 seqs + ResNet 1 + Mamba 3) x 6 batches = 42.
    assert r.skipped["unsupported precision"] == 42


def test_client_must_be_a_dask_client():
    with pytest.raises(ValidationError, match="client.*dask.distributed.Client"):
        sweep("ResNet50", "A100", [1], client="localhost:8786")


def test_concat_joins_rows_and_adds_skips():
    a = SweepResult({"x": np.array([1.0, 2.0])}, {"p": 6}, (("a", "why"),))
    b = SweepResult({"x": np.array([3.0])}, {"p": 1, "q": 2}, (("b", "why"),))
    c = SweepResult.concat([a, b])
    np.testing.assert_array_equal(c["x"], [1.0, 2.0, 3.0])
    assert c.skipped == {"p": 7, "q": 2}
    assert c.skipped_plans == (("a", "why"), ("b", "why"))
    assert len(SweepResult.concat([SweepResult({}, {"p": 1})])) == 0


def test_slices_pickle():
    # What a worker receives and returns: a slice of the grid and its SweepResult.
    from mlsysim.core.engine import resolve
    m, h = resolve("Llama3_8B", "H100")
    grid = pickle.loads(pickle.dumps([(m, h, "fp16", 512, 1, "Llama-3-8B on H100")]))
    part = sweep_module._evaluate_grid(grid, np.array([1.0, 8.0]), None)
    back = pickle.loads(pickle.dumps(part))
    assert len(back) == 2
    np.testing.assert_array_equal(back["latency_s"], part["latency_s"])


def test_installing_dask_does_not_slow_the_start():
    """pint imports dask.base whenever dask is installed (~0.1 s); mlsysim hides it from that
    probe, so a first solve leaves dask unimported, and dask still imports afterwards."""
    import subprocess
    import sys
    code = ("import sys, mlsysim; mlsysim.Engine.solve('ResNet50', 'A100'); "
            "assert 'dask' not in sys.modules, 'dask imported at start-up'; "
            "import dask.base; print('ok')")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         timeout=60)
    assert out.returncode == 0 and out.stdout.strip() == "ok", out.stderr


def test_dask_serving_sweep_equals_local(client):
    """serving_sweep over 3 prompts x 2 outputs x TP {1, 2, 3} x 4 batches: TP 3 does not
    divide Llama-3-8B's 32 heads (6 plans refused) and 8,000 + 512 - 1 passes its 8,192
    context (3 more); the Dask table equals the local one row for row."""
    from mlsysim.optimize.sweep import serving_sweep
    axes = dict(seq_lens=[512, 2048, 8000], output_lens=[128, 512], batch_sizes=[1, 4, 16, 64],
                tp_sizes=[1, 2, 3])
    local = serving_sweep("Llama3_8B", "DGX_H100", progress=False, **axes)
    remote = serving_sweep("Llama3_8B", "DGX_H100", progress=False, client=client, **axes)
    assert len(local) == len(remote) > 0
    for name, col in local.columns.items():
        np.testing.assert_array_equal(remote[name], col, err_msg=name)
    assert remote.skipped == local.skipped
    assert remote.skipped_plans == local.skipped_plans
