"""Speed benchmarks: per-call solve time, sweep rate, import time; ratios to the incumbent.

Run:  python benchmarks/bench.py [--incumbent /path/to/other/venv/bin/python]

The incumbent (PyPI ``mlsysim``) is run as a black box in its own interpreter with the same
tutorial-level calls (``Engine.solve(model=..., hardware=..., batch_size=..., precision=...)``).
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

# The same snippet runs in both interpreters; it prints JSON timings.
SNIPPET = r'''
import json, sys, time
t0 = time.perf_counter()
import mlsysim
t_import = time.perf_counter() - t0
from mlsysim import Engine
cases = {"ResNet50/A100": (mlsysim.Models.Vision.ResNet50, mlsysim.Hardware.Cloud.A100),
         "Llama3_8B/H100": (mlsysim.Models.Language.Llama3_8B, mlsysim.Hardware.Cloud.H100)}
out = {"import_s": t_import}
for name, (m, h) in cases.items():
    Engine.solve(model=m, hardware=h, batch_size=1, precision="fp16")  # warm caches
    n, best = N, float("inf")
    for _ in range(5):
        t = time.perf_counter()
        for i in range(n):
            Engine.solve(model=m, hardware=h, batch_size=(i % 64) + 1, precision="fp16")
        best = min(best, (time.perf_counter() - t) / n)
    out[name] = best
print(json.dumps(out))
'''


def run(python: str, n: int, cwd: Path | None = None) -> dict:
    code = SNIPPET.replace("N, float", f"{n}, float")
    out = subprocess.run([python, "-c", code], capture_output=True, text=True, cwd=cwd,
                         timeout=600)
    if out.returncode != 0:
        raise RuntimeError(out.stderr[-2000:])
    return json.loads(out.stdout.strip().splitlines()[-1])


def _wall(python: str, code: str, repeats: int, cwd: Path | None) -> float:
    """Median wall time of ``python -c code`` in fresh interpreters, startup subtracted."""
    def once(snippet: str) -> float:
        t = time.perf_counter()
        subprocess.run([python, "-c", snippet], check=True, cwd=cwd)
        return time.perf_counter() - t
    base = statistics.median(once("pass") for _ in range(repeats))
    return statistics.median(once(code) for _ in range(repeats)) - base


def import_time(python: str, repeats: int = 7, cwd: Path | None = None) -> float:
    """`import mlsysim` alone, timed inside fresh interpreters (ours loads lazily)."""
    code = "import time; t = time.perf_counter(); import mlsysim; print(time.perf_counter() - t)"
    runs = [float(subprocess.run([python, "-c", code], check=True, cwd=cwd, capture_output=True,
                                 text=True).stdout.strip().splitlines()[-1])
            for _ in range(repeats)]
    return statistics.median(runs)


COLD = ("import mlsysim; mlsysim.Engine.solve(model=mlsysim.Models.Vision.ResNet50, "
        "hardware=mlsysim.Hardware.Cloud.A100, batch_size=1, precision='fp16')")


def cold_start(python: str, repeats: int = 5, cwd: Path | None = None) -> float:
    """From a fresh interpreter to the first prediction: import, unit registry, zoo and
    calibration loading, one solve."""
    return _wall(python, COLD, repeats, cwd)


def sweep_rate(n: int = 1_000_000) -> float:
    import numpy as np

    import mlsysim
    batches = np.arange(1, n + 1) % 1024 + 1
    mlsysim.Engine.sweep("ResNet50", "A100", batches[:10])
    t = time.perf_counter()
    mlsysim.Engine.sweep("Llama3_8B", "H100", batches)
    return n / (time.perf_counter() - t)


def grid_sweep_rates(total: int = 1_000_000) -> dict[str, float]:
    """configs/s of full-grid sweeps (mlsysim.sweep, mlsysim.serving_sweep) of >= ``total``
    evaluated configs: cold (plans validated, lowered and prepared in the call) and warm
    (plans cached), plus the share of the warm time spent in the cost model's evaluate."""
    import cProfile
    import math
    import pstats

    import numpy as np

    import mlsysim
    models = ["Llama3_8B", "Llama3_70B", "Mistral_7B"]
    devices = ["A100", "H100", "H200", "MI300X"]
    # A100 has no fp8: 3 models x 7 (device, precision) pairs x 2 seq_lens = 42 plans.
    plans = 3 * 7 * 2
    grid = dict(precisions=["fp16", "fp8"], seq_lens=[1024, 4096])
    batches = np.arange(1, math.ceil(total / plans) + 1)
    out = {}
    t = time.perf_counter()
    r = mlsysim.sweep(models, devices, batches, progress=False, **grid)
    out["engine_cold"] = len(r) / (time.perf_counter() - t)
    best = float("inf")
    for _ in range(3):
        t = time.perf_counter()
        r = mlsysim.sweep(models, devices, batches, progress=False, **grid)
        best = min(best, time.perf_counter() - t)
    out["engine_warm"], out["engine_n"] = len(r) / best, len(r)
    prof = cProfile.Profile()
    prof.runcall(mlsysim.sweep, models, devices, batches, progress=False, **grid)
    st = pstats.Stats(prof).stats
    whole = max(v[3] for v in st.values())
    ev = sum(v[3] for k, v in st.items() if k[2] == "evaluate" and "costmodel" in k[0])
    out["engine_eval_share"] = ev / whole

    node = mlsysim.Systems.Nodes.DGX_H100
    axes = dict(seq_lens=[256, 512, 1024, 2048], output_lens=[64, 128, 256, 512],
                tp_sizes=(1, 2, 4, 8))
    sb = np.arange(1, math.ceil(total / 64) + 1)
    t = time.perf_counter()
    r = mlsysim.serving_sweep("Llama3_8B", node, batch_sizes=sb, progress=False, **axes)
    out["serving_cold"] = len(r) / (time.perf_counter() - t)
    best = float("inf")
    for _ in range(3):
        t = time.perf_counter()
        r = mlsysim.serving_sweep("Llama3_8B", node, batch_sizes=sb, progress=False, **axes)
        best = min(best, time.perf_counter() - t)
    out["serving_warm"], out["serving_n"] = len(r) / best, len(r)
    return out


def serving_timings(n: int = 5000) -> tuple[float, float]:
    """(seconds per ServingModel.solve, seconds per BatchingOptimizer over 256 batches)."""
    import mlsysim
    s, m, h = mlsysim.ServingModel(), mlsysim.Models.Llama3_8B, mlsysim.Hardware.H100
    s.solve(m, h, seq_len=1024, output_len=256)
    best = float("inf")
    for _ in range(3):
        t = time.perf_counter()
        for i in range(n):
            s.solve(m, h, seq_len=1024, output_len=256, batch_size=(i % 32) + 1)
        best = min(best, (time.perf_counter() - t) / n)
    opt = mlsysim.BatchingOptimizer()
    kw = dict(seq_len=1024, output_len=256, sla_latency_ms=5000, arrival_rate_qps=5)
    opt.solve(m, h, **kw)
    t = time.perf_counter()
    for _ in range(20):
        opt.solve(m, h, **kw)
    return best, (time.perf_counter() - t) / 20


def training_timings() -> tuple[float, float, float, float, float, float, float]:
    """DistributedModel.solve (cached plan; a fresh config of a lowering already priced; a
    new lowering: TP, recomputation, sequence length...), the optimizer's grid rate
    (configs/s of the broadcast step-time equations: first call, and best of three once
    memory is warm) and a full 175B / 4,096-GPU search."""
    import numpy as np

    import mlsysim
    from mlsysim.solvers.distributed import _resolve, evaluate_grid, parts_for
    from mlsysim.specs.configs import DistributedConfig

    dm = mlsysim.DistributedModel()
    fleet = mlsysim.Fleet(name="512 x DGX H100", node=mlsysim.Systems.Nodes.DGX_H100, count=512)
    kw = dict(batch_size=1536, seq_len=2048, tp_size=8, pp_size=8, zero_stage=1)
    dm.solve("GPT3_175B", fleet, **kw)
    n = 2000
    t = time.perf_counter()
    for _ in range(n):
        dm.solve("GPT3_175B", fleet, **kw)
    cached = (time.perf_counter() - t) / n
    # An equal fleet built anew (a notebook cell run again): its cached plan is found by
    # content; the lookup compares each spec's JSON, serialized once per object.
    twin = mlsysim.Fleet(name="512 x DGX H100", node=mlsysim.Systems.Nodes.DGX_H100, count=512)
    dm.solve("GPT3_175B", twin, **kw)
    t = time.perf_counter()
    for _ in range(n):
        dm.solve("GPT3_175B", twin, **kw)
    twin_cached = (time.perf_counter() - t) / n
    times = []
    for batch in range(2048, 2048 + 512 * 200, 512):   # new configs, micro-batch 1 priced
        t = time.perf_counter()
        dm.solve("GPT3_175B", fleet, **{**kw, "batch_size": batch})
        times.append(time.perf_counter() - t)
    fresh = sorted(times)[len(times) // 2]    # the median: a garbage collection is not a solve
    t = time.perf_counter()
    for tp in (4, 2, 1):           # a new lowering: lowered, prepared and priced
        dm.solve("GPT3_175B", fleet, **{**kw, "tp_size": tp})
    new_lowering = (time.perf_counter() - t) / 3
    model, system, hw, path, prec, seq = _resolve("GPT3_175B", fleet, DistributedConfig(
        batch_size=1536, seq_len=2048))
    parts = parts_for(model, hw, path, prec, seq, 8, 1, 1, "selective", True, 1.0, 4096)
    size = 1_000_000
    rng = np.random.default_rng(0)
    pp = rng.choice([1, 2, 4, 8, 16], size)
    grid = dict(tp=np.full(size, 8), cp=np.ones(size, int), pp=pp, dp=4096 // (8 * pp),
                v=rng.choice([1, 2], size), mbs=rng.choice([1, 2, 4], size),
                zero=rng.choice([0, 1, 2, 3], size))
    grid["m"] = 1536 // grid["dp"] // grid["mbs"]
    args = dict(precision=prec, seq=seq, sp=True, recompute="selective", schedule="1f1b",
                overlap=True, optimizer="adam", capacity_factor=1.0, usable=76e9)
    evaluate_grid(parts, system, model, {k: v[:1000] for k, v in grid.items()}, **args)
    rates = []
    for _ in range(3):     # the first call also pays for its fresh memory pages
        t = time.perf_counter()
        evaluate_grid(parts, system, model, grid, **args)
        rates.append(size / (time.perf_counter() - t))
    t = time.perf_counter()
    mlsysim.ParallelismOptimizer().solve("GPT3_175B", fleet, batch_size=1536, seq_len=2048)
    search = time.perf_counter() - t
    return cached, twin_cached, fresh, new_lowering, rates[0], max(rates), search


def dask_sweep_rates(workers: int = 2) -> tuple[int, float, float]:
    """(configs, local configs/s, Dask configs/s) of one warm grid of 144 plans x 20,000
    batches, in this process and on a ``workers``-process LocalCluster (extra
    ``distributed``). The split pays when plans are many and machines are several: here the
    result columns travel back to this process."""
    import numpy as np
    from distributed import Client, LocalCluster

    import mlsysim
    grid = dict(models=["Llama3_8B", "Llama3_70B", "Mamba_2_8B", "GPT3_175B"],
                hardware=["A100", "H100", "H200", "MI300X"],
                precisions=["fp16", "fp8", "int8"], seq_lens=[512, 2048, 8192], progress=False)
    batches = np.arange(1, 20_001)
    mlsysim.sweep(batch_sizes=batches[:2], **grid)
    t = time.perf_counter()
    n = len(mlsysim.sweep(batch_sizes=batches, **grid))
    local = n / (time.perf_counter() - t)
    with LocalCluster(n_workers=workers, threads_per_worker=1, dashboard_address=None) as c, \
            Client(c) as client:
        mlsysim.sweep(batch_sizes=batches[:2], client=client, **grid)
        t = time.perf_counter()
        mlsysim.sweep(batch_sizes=batches, client=client, **grid)
        remote = n / (time.perf_counter() - t)
    return n, local, remote


def validation_time() -> float:
    """Seconds for one run of every reference row (`mlsysim validate`), warm caches aside."""
    from mlsysim.validation.harness import run_validation
    return run_validation().elapsed_s


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--incumbent", help="python of a venv with the PyPI mlsysim installed")
    ap.add_argument("-n", type=int, default=2000, help="solves per timing loop")
    ap.add_argument("--dask", action="store_true", help="also time a sweep on a 2-process "
                    "Dask LocalCluster (extra distributed)")
    ap.add_argument("--user-python", help="python of a venv with only `pip install -e .`: "
                    "times the cold start a user sees (the dev extras install dask, which pint "
                    "imports whenever it is present)")
    args = ap.parse_args()

    # The machine's own speed, so per-call times read across machines: a shared 2-core runner
    # swings by 2x between runs (sum(range(1000)) between 8 and 18 us).
    import timeit
    ref = min(timeit.repeat("sum(range(1000))", number=2000, repeat=7)) / 2000
    print(f"machine reference: sum(range(1000)) {ref * 1e6:.2f} us (per-call times scale "
          "with it)")
    ours = run(sys.executable, args.n, cwd=ROOT)
    ours_import = import_time(sys.executable, cwd=ROOT)
    ours_cold = cold_start(sys.executable, cwd=ROOT)
    print(f"import mlsysim                 {ours_import * 1e3:8.1f} ms   (target <= 150 ms)")
    print(f"cold start to first solve      {ours_cold * 1e3:8.1f} ms   (target <= 250 ms)")
    if args.user_python:
        user_cold = cold_start(args.user_python, cwd=ROOT)
        print(f"  the same without dev extras  {user_cold * 1e3:8.1f} ms")
    for case in ("ResNet50/A100", "Llama3_8B/H100"):
        print(f"Engine.solve {case:<17} {ours[case] * 1e6:8.1f} us   (target <= 15 us)")
    serve, optimize = serving_timings()
    print(f"ServingModel.solve Llama3_8B/H100 {serve * 1e6:6.1f} us   (target <= 30 us)")
    print(f"BatchingOptimizer, 256 batches {optimize * 1e3:8.2f} ms   (target <= 5 ms)")
    rate = sweep_rate()
    print(f"Engine.sweep (1M batch sizes)  {rate / 1e6:8.2f} M configs/s")
    g = grid_sweep_rates()
    print(f"mlsysim.sweep grid ({g['engine_n']:,} configs) {g['engine_warm'] / 1e6:6.2f} M "
          f"configs/s (target >= 10; first call {g['engine_cold'] / 1e6:.2f} M/s; "
          f"{g['engine_eval_share']:.0%} in evaluate)")
    print(f"mlsysim.serving_sweep ({g['serving_n']:,})  {g['serving_warm'] / 1e6:6.2f} M "
          f"configs/s (target >= 1; first call {g['serving_cold'] / 1e6:.2f} M/s)")
    cached, twin, fresh, new_lowering, grid_first, grid_rate, search = training_timings()
    print(f"DistributedModel.solve 175B/4096 {cached * 1e6:6.1f} us   (target <= 50 us; "
          f"an equal fleet built anew {twin * 1e6:.1f} us, a new config {fresh * 1e6:.0f} us, "
          f"a new lowering {new_lowering * 1e3:.0f} ms)")
    print(f"ParallelismOptimizer grid      {grid_rate / 1e6:8.2f} M configs/s (target >= 1; "
          f"first call {grid_first / 1e6:.2f} M/s)")
    print(f"ParallelismOptimizer 175B/4096 {search:8.2f} s    (target <= 1 s, full search)")
    print(f"mlsysim validate (all rows)    {validation_time():8.2f} s    (target <= 10 s)")
    if args.dask:
        n, local, remote = dask_sweep_rates()
        print(f"mlsysim.sweep {n:,} configs   {local / 1e6:6.2f} M configs/s here, "
              f"{remote / 1e6:.2f} M/s on 2 Dask workers (ratio {remote / local:.2f})")

    if args.incumbent:
        # Run the incumbent from a neutral folder so it cannot import our checkout.
        neutral = Path("/")
        theirs = run(args.incumbent, max(args.n // 20, 50), cwd=neutral)
        their_import = import_time(args.incumbent, cwd=neutral)
        their_cold = cold_start(args.incumbent, cwd=neutral)
        print("\nratio to the incumbent (theirs / ours: how many times faster we are)")
        print(f"import mlsysim                 {their_import * 1e3:8.1f} ms   "
              f"x{their_import / ours_import:6.1f}")
        print(f"cold start to first solve      {their_cold * 1e3:8.1f} ms   "
              f"x{their_cold / ours_cold:6.1f}")
        for case in ("ResNet50/A100", "Llama3_8B/H100"):
            print(f"Engine.solve {case:<17} {theirs[case] * 1e6:8.1f} us   "
                  f"x{theirs[case] / ours[case]:6.1f}")


if __name__ == "__main__":
    main()
