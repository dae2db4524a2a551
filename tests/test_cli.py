"""The command line: one clear line and exit 2 on bad input, exit 3 when infeasible, JSON."""

import json
import subprocess
import sys

import pytest


def run(*args):
    return subprocess.run([sys.executable, "-m", "mlsysim", *args], capture_output=True,
                          text=True, timeout=120)


def test_eval_json_and_trace():
    out = run("eval", "ResNet50", "A100", "--json", "--trace")
    assert out.returncode == 0, out.stderr
    d = json.loads(out.stdout)
    assert d["bottleneck"] == "Memory"
    assert d["trace"]["constants"]["peak_flops"]["value"] == pytest.approx(312e12)
    assert d["trace"]["constants"]["eta_mem"]["rows"]  # the microbenchmark rows behind it


def test_unknown_name_exits_2_with_one_line():
    out = run("eval", "ResNet50", "A10O")
    assert out.returncode == 2
    assert "Did you mean" in out.stderr and "Traceback" not in out.stderr
    out = run("eval", "ResNet50", "A10O", "--json")
    assert out.returncode == 2 and json.loads(out.stdout)["error"] == "UnknownNameError"


def test_bad_batch_exits_2():
    out = run("eval", "ResNet50", "A100", "--batch-size", "0")
    assert out.returncode == 2 and "--batch-size must be a positive whole number" in out.stderr


def test_infeasible_exits_3():
    out = run("eval", "Llama3_70B", "A100")
    assert out.returncode == 3 and "needs" in out.stderr


def test_serve_json_and_infeasible_kv():
    out = run("serve", "Llama3_8B", "H100", "--prompt-len", "1024", "--output-len", "128",
              "--json")
    assert out.returncode == 0
    d = json.loads(out.stdout)
    assert d["kv_cache_per_token"]["value"] == 131072
    out = run("serve", "Llama3_70B", "H100", "--batch-size", "64", "--prompt-len", "4096",
              "--tp", "2")
    assert out.returncode == 3 and "needs" in out.stderr


def test_serve_slo_check_exits_3_when_missed():
    out = run("serve", "Llama3_8B", "H100", "--qps", "0.1", "--slo-p99-ms", "10")
    assert out.returncode == 3 and "SLO" in out.stderr


def test_zoo_listing():
    out = run("zoo", "hardware", "--json")
    assert out.returncode == 0 and len(json.loads(out.stdout)) >= 35
    out = run("zoo", "models", "Llama3_8B", "--json")
    assert json.loads(out.stdout)["derived_parameters"] == 8030261248


def test_usage_errors_are_one_line_exit_2():
    out = run("eval", "ResNet50", "A100", "--batch-size", "abc")
    assert out.returncode == 2 and "Traceback" not in out.stderr
    assert len(out.stderr.strip().splitlines()) == 1 and "--batch-size" in out.stderr
    out = run("eval", "ResNet50", "A100", "--batch-size", "abc", "--json")
    assert out.returncode == 2 and json.loads(out.stdout)["error"] == "UsageError"
    out = run("frobnicate")
    assert out.returncode == 2 and "No such command" in out.stderr


def test_calibrate_unwritable_output_exits_2(tmp_path):
    runs = tmp_path / "runs.csv"
    runs.write_text("kind,precision,m,n,k,value,unit\nmemcpy,,,,,3000,GB/s\n")
    out = run("calibrate", str(runs), "--hardware", "H100", "-o", "/nonexistent/dir/x.yaml")
    assert out.returncode == 2 and "cannot write" in out.stderr


def test_train_and_optimize_commands():
    out = run("train", "Llama3_8B", "DGX_H100", "-b", "64", "--seq-len", "2048", "--zero", "1",
              "--json")
    assert out.returncode == 0, out.stderr
    d = json.loads(out.stdout)
    assert d["parallelism"] == {"dp": 8, "tp": 1, "pp": 1, "cp": 1, "ep": 1}
    assert 0 < d["mfu"] < 1 and d["feasible"] is True
    out = run("train", "GPT3_175B", "DGX_H100", "-b", "8")
    assert out.returncode == 3 and "optimizer state" in out.stderr
    out = run("train", "Llama3_8B", "H100", "-b", "8", "--nodes", "2")
    assert out.returncode == 2 and "nodes" in out.stderr and "Traceback" not in out.stderr
    out = run("optimize", "Llama3_70B", "DGX_H100", "--nodes", "4", "-b", "64", "--json")
    assert out.returncode == 0, out.stderr
    d = json.loads(out.stdout)
    assert d["best_config"]["tp"] * d["best_config"]["pp"] * d["best_config"]["dp"] == 32
    out = run("zoo", "clusters", "--json")
    assert out.returncode == 0 and any(r["accelerators"] >= 100_000
                                       for r in json.loads(out.stdout))


def test_train_prices_the_attention_kernel_named():
    """--attention reaches DistributedModel: the Triton kernel of 2023 makes a long-sequence
    step slower by the same factor the API gives, and a kernel name not known is exit 2."""
    import mlsysim

    args = ("train", "Llama3_8B", "DGX_H100", "-b", "8", "--seq-len", "8192", "--zero", "1",
            "--json")
    flash, triton = (json.loads(run(*args, "--attention", k).stdout) for k in ("flash", "triton"))
    api = mlsysim.DistributedModel().solve("Llama3_8B", "DGX_H100", batch_size=8,
                                           seq_len=8192, zero_stage=1, attention_kernel="triton")
    step = {k: d["step_latency_total"] for k, d in (("flash", flash), ("triton", triton))}
    assert step["triton"]["unit"] == "ms"
    assert step["triton"]["value"] == pytest.approx(api.step_s * 1e3, rel=1e-9)
    assert step["triton"]["value"] > 1.05 * step["flash"]["value"]
    out = run(*args[:-1], "--attention", "flash3")
    assert out.returncode == 2 and "--attention must be" in out.stderr
    assert "'xformers'" in out.stderr and "Traceback" not in out.stderr
    out = run("optimize", "Llama3_8B", "DGX_H100", "-b", "64", "--seq-len", "8192",
              "--attention", "triton", "--json")
    assert out.returncode == 0, out.stderr
    assert json.loads(out.stdout)["best_config"]["attention_kernel"] == "triton"


def test_train_backward_prefetch_reaches_the_solver():
    """--backward-prefetch post is DistributedModel's backward_prefetch="post" (the same step
    to the last digit); with ZeRO below 3 it is exit 2 naming the flag, not a traceback."""
    import mlsysim

    args = ("train", "Llama3_8B", "DGX_H100", "-b", "64", "--seq-len", "2048", "--json")
    out = run(*args, "--zero", "3", "--backward-prefetch", "post")
    assert out.returncode == 0, out.stderr
    api = mlsysim.DistributedModel().solve("Llama3_8B", "DGX_H100", batch_size=64,
                                           seq_len=2048, zero_stage=3, backward_prefetch="post")
    step = json.loads(out.stdout)["step_latency_total"]
    assert step["value"] == pytest.approx(api.step_s * 1e3, rel=1e-9)
    out = run(*args[:-1], "--zero", "1", "--backward-prefetch", "post")
    assert out.returncode == 2 and "--backward-prefetch" in out.stderr
    assert "needs --zero=3" in out.stderr
    assert "Traceback" not in out.stderr


def test_sharding_runtime_reaches_the_solver_and_the_zoo():
    """--sharding-runtime deepspeed_2021 is DistributedModel's sharding_runtime (the same step
    to the last digit), slower than at NVLink bandwidth since 19.5 GB/s per GPU is far below
    it; an unknown runtime is exit 2 naming the flag and the known key; `zoo
    sharding_runtimes` lists the entry with its stated throughput (19.53 GB/s)."""
    import mlsysim

    args = ("train", "Llama3_8B", "DGX_H100", "-b", "64", "--seq-len", "2048", "--zero", "3",
            "--json")
    out = run(*args, "--sharding-runtime", "deepspeed_0_3")
    assert out.returncode == 0, out.stderr
    api = mlsysim.DistributedModel().solve("Llama3_8B", "DGX_H100", batch_size=64,
                                           seq_len=2048, zero_stage=3,
                                           sharding_runtime="deepspeed_2021")
    d = json.loads(out.stdout)
    assert d["step_latency_total"]["value"] == pytest.approx(api.step_s * 1e3, rel=1e-9)
    plain = json.loads(run(*args).stdout)["step_latency_total"]["value"]
    assert d["step_latency_total"]["value"] > 1.2 * plain
    out = run(*args[:-1], "--sharding-runtime", "deepspeed_2031")
    assert out.returncode == 2 and "Traceback" not in out.stderr
    assert "deepspeed_2021" in out.stderr
    out = run("optimize", "Llama3_8B", "DGX_H100", "-b", "64", "--sharding-runtime",
              "deepspeed_2021", "--json")
    assert out.returncode == 0, out.stderr
    out = run("zoo", "sharding_runtimes", "--json")
    assert out.returncode == 0, out.stderr
    (row,) = json.loads(out.stdout)
    assert row["key"] == "deepspeed_2021" and row["throughput / device"].startswith("19.53 GB/s")


def test_train_adds_the_wall_time_with_failures():
    """--checkpoint-s chains ReliabilityModel onto the run: one DGX H100 (8 GPUs) has a fleet
    MTBF of 50,677 / 8 = 6,335 h (reliability.yaml's per-GPU rate), so with 60 s checkpoints
    Young's interval is sqrt(2 x 60 s x 22.8e6 s) = 52,312 s and goodput 52,312 / 52,372 x
    (1 - (300 + 26,186) / 22.8e6) = 0.99769; the wall time is the time to train over that."""
    args = ("train", "Llama3_8B", "DGX_H100", "-b", "64", "--seq-len", "2048", "--zero", "1",
            "--tokens", "1e11", "--checkpoint-s", "60")
    out = run(*args, "--json")
    assert out.returncode == 0, out.stderr
    d = json.loads(out.stdout)
    f = d["with_failures"]
    assert f["goodput_ratio"] == pytest.approx(0.99769, abs=2e-5)
    assert f["fleet_mtbf"]["value"] == pytest.approx(6334.6, abs=0.1)
    assert f["wall_time_to_train"]["value"] == pytest.approx(
        d["time_to_train"]["value"] / f["goodput_ratio"], rel=1e-9)
    out = run(*args)
    assert out.returncode == 0 and "with failures:" in out.stdout and "goodput 0.998" in \
        out.stdout
    out = run(*args[:-4], "--checkpoint-s", "60")
    assert out.returncode == 2 and "--checkpoint-s needs --tokens" in out.stderr


def test_eval_takes_paths(tmp_path):
    # A Hugging Face config.json from the tests' fixtures and a missing ONNX file.
    cfg = __import__("pathlib").Path(__file__).parent / "data" / "hf_configs" / "llama3_8b.json"
    out = run("eval", str(cfg), "H100", "--json")
    assert out.returncode == 0, out.stderr
    assert json.loads(out.stdout)["bottleneck"] == "Memory"
    out = run("eval", str(tmp_path / "missing.onnx"), "H100")
    assert out.returncode == 2 and "Traceback" not in out.stderr
