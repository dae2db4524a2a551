"""CLI coherence (issue #11 item 6): --version and -h, bare `mlsysim`, comma-list sweeps from
`eval`, case-insensitive choices, zoo tables with whole keys, the calibrate CSV format."""

import csv
import io
import json
import os
import subprocess
import sys

import pytest


def run(*args, env=None):
    return subprocess.run([sys.executable, "-m", "mlsysim", *args], capture_output=True,
                          text=True, timeout=120, env=None if env is None else
                          {**os.environ, **env})


def test_version_and_short_help():
    import mlsysim
    for flag in ("--version", "-V"):
        out = run(flag)
        assert out.returncode == 0, out.stderr
        assert out.stdout.strip() == f"mlsysim {mlsysim.__version__}"
    out = run("-h")
    assert out.returncode == 0 and "Usage: mlsysim" in out.stdout
    out = run("eval", "-h")
    assert out.returncode == 0 and "Usage: mlsysim eval" in out.stdout


def test_bare_mlsysim_prints_help_once():
    out = run()
    assert out.returncode == 0, out.stderr
    assert out.stdout.count("Usage: mlsysim") == 1 and "eval" in out.stdout
    assert "Traceback" not in out.stderr


SWEEP = ("eval", "ResNet50,Llama3_8B", "A100,H100", "-b", "1,8,64",
         "--precision", "fp16,bf16")


def test_comma_sweep_json_rows_equal_engine_solve():
    from mlsysim.core.engine import Engine

    out = run(*SWEEP, "--json")
    assert out.returncode == 0, out.stderr
    rows = json.loads(out.stdout)
    assert isinstance(rows, list) and len(rows) == 2 * 2 * 3 * 2
    assert {r["batch_size"] for r in rows} == {1, 8, 64}
    by_key = {(r["model"], r["hardware"], r["precision"], r["batch_size"]): r for r in rows}
    for model, hw, name_m, name_h, prec, b in (
            ("ResNet50", "H100", "ResNet-50", "NVIDIA H100 SXM5 80GB", "bf16", 8),
            ("Llama3_8B", "A100", "Llama-3-8B", "NVIDIA A100 80GB SXM", "fp16", 64)):
        row = by_key[(name_m, name_h, prec, b)]
        p = Engine.solve(model, hw, batch_size=b, precision=prec)
        assert row["latency_s"] == pytest.approx(p.latency_s, rel=1e-9)
        assert row["throughput"] == pytest.approx(b / p.latency_s, rel=1e-9)
        assert row["bottleneck"] == p.bottleneck
        assert row["memory_bytes"] == pytest.approx(p.memory_footprint.to("B").magnitude,
                                                    rel=1e-9)
        assert row["feasible"] is bool(p.feasible)


def test_comma_sweep_csv_and_table():
    out = run(*SWEEP, "--csv")
    assert out.returncode == 0, out.stderr
    table = list(csv.DictReader(io.StringIO(out.stdout)))
    assert len(table) == 24
    assert {"model", "hardware", "precision", "batch_size", "latency_s", "throughput",
            "bottleneck", "memory_bytes", "feasible"} <= set(table[0])
    out = run(*SWEEP, env={"COLUMNS": "80"})
    assert out.returncode == 0, out.stderr
    assert "24 configurations" in out.stdout
    assert "Llama3_8B" in out.stdout and "bound" in out.stdout


def test_sweep_skips_precisions_a_device_lacks():
    out = run("eval", "Llama3_8B", "A100,H100", "-p", "fp16,fp8", "--json")
    assert out.returncode == 0, out.stderr
    assert len(json.loads(out.stdout)) == 3      # A100 has no fp8 peak
    assert "skipped 1 config (" in out.stderr and "unsupported precision" in out.stderr
    out = run("eval", "Llama3_8B", "A100,H100", "-p", "fp16,fp8")
    assert out.returncode == 0 and "skipped 1 config (" in out.stdout


@pytest.mark.parametrize("args, flag, value", [
    (("ResNet50", "A100", "-b", "1,x"), "--batch-size", "'x'"),
    (("ResNet50", "A100", "-b", "1,0"), "--batch-size", " 0 "),
    (("ResNet50", "A100,H100", "-p", "fp17"), "--precision", "'fp17'"),
    (("ResNet50", "A100", "-b", "1,,8"), "--batch-size", "'1,,8'"),
    (("ResNet50,Resnet5O", "A100"), "MODEL", "'Resnet5O'"),
    (("ResNet50", "A100,A10O"), "HARDWARE", "'A10O'"),
])
def test_sweep_bad_items_name_flag_and_value(args, flag, value):
    out = run("eval", *args)
    assert out.returncode == 2 and "Traceback" not in out.stderr
    assert len(out.stderr.strip().splitlines()) == 1
    assert flag in out.stderr and value in out.stderr
    out = run("eval", *args, "--json")
    assert out.returncode == 2 and flag in json.loads(out.stdout)["message"]


def test_choices_are_case_insensitive():
    lower = run("eval", "Llama3_8B", "H100", "--precision", "fp16", "--phase", "decode",
                "--json")
    upper = run("eval", "Llama3_8B", "H100", "--precision", "FP16", "--phase", "Decode",
                "--json")
    assert upper.returncode == 0, upper.stderr
    assert json.loads(upper.stdout) == json.loads(lower.stdout)
    out = run("eval", "ResNet50", "A100,H100", "-p", "FP16,Bf16", "--json")
    assert out.returncode == 0 and {r["precision"] for r in json.loads(out.stdout)} == \
        {"fp16", "bf16"}
    out = run("serve", "Llama3_8B", "H100", "--precision", "FP16", "--engine", "VLLM",
              "--qps", "1", "--json")
    assert out.returncode == 0, out.stderr
    d = json.loads(out.stdout)
    assert d["precision"] == "fp16" and d["load"]["engine"].lower().startswith("vllm")


def test_single_config_output_unchanged():
    out = run("eval", "ResNet50", "A100", "--json")
    assert out.returncode == 0
    d = json.loads(out.stdout)
    assert isinstance(d, dict) and d["bottleneck"] == "Memory"
    out = run("eval", "ResNet50", "A100")
    assert out.returncode == 0 and "PerformanceProfile" in out.stdout


def test_zoo_hardware_json_unchanged_and_table_keeps_keys():
    from mlsysim.zoo import Hardware

    out = run("zoo", "hardware", "--json")
    assert out.returncode == 0
    rows = json.loads(out.stdout)
    a100 = next(r for r in rows if r["key"] == "A100")
    spec = Hardware.get("A100")
    assert a100["peak"] == (f"{spec.compute.peak_flops.to('TFLOP/s').magnitude:.4g} TFLOP/s "
                            f"({spec.compute.default_precision})")
    assert a100["memory"] == f"{spec.memory.capacity.to('GB').magnitude:.4g} GB"
    assert a100["bandwidth"] == f"{spec.memory.bandwidth.to('GB/s').magnitude:.4g} GB/s"
    out = run("zoo", "hardware", env={"COLUMNS": "80"})
    assert out.returncode == 0, out.stderr
    assert "JetsonOrinNano" in out.stdout
    for r in rows:
        assert r["key"] in out.stdout
    assert "TB/s" in out.stdout and "TFLOP/s" in out.stdout
    for kind in ("models", "nodes", "clusters", "fabrics"):
        listed = json.loads(run("zoo", kind, "--json").stdout)
        out = run("zoo", kind, env={"COLUMNS": "80"})
        assert out.returncode == 0, out.stderr
        assert all(r["key"] in out.stdout for r in listed), kind


def test_calibrate_help_documents_the_csv():
    out = run("calibrate", "--help", env={"COLUMNS": "100"})
    assert out.returncode == 0
    for word in ("kind,precision,m,n,k,value,unit", "gemm", "memcpy", "attention", "launch",
                 "TFLOP/s", "GB/s", "us"):
        assert word in out.stdout, word


@pytest.mark.parametrize("args, line", [
    (("eval", "Llama3_8B", "H100", "--seq-len", "99999"),
     "error: --seq-len must not exceed Llama-3-8B's context of 8192 tokens"),
    (("train", "Llama3_70B", "DGX_H100", "-b", "8", "--tp", "3"),
     "error: --tp must divide the number of attention heads (=64). Got 3 instead."),
    (("train", "Llama3_70B", "DGX_H100", "-b", "8", "--zero", "5"), "error: --zero "),
    (("eval", "Llama3_70B", "H100", "--tp", "3"),
     "error: --tp must divide the number of attention heads (=64). Got 3 instead."),
    (("eval", "Llama3_8B", "H100", "--memory-utilization", "1.5"),
     "error: --memory-utilization must be a number between 0 and 1. Got 1.5 instead."),
    (("eval", "Llama3_8B", "H100,A100", "--pp", "2"), "error: --pp: give one configuration"),
    (("carbon", "DGX_H100", "--days", "-1", "--mfu", "0.4"),
     "error: --days must be a finite positive number. Got -1.0 instead."),
    (("cost", "DGX_H100", "--days", "3", "--mfu", "1.4"),
     "error: --mfu must be a number between 0 and 1. Got 1.4 instead."),
    (("optimize", "Llama3_70B", "DGX_H100", "-b", "8", "--top", "0"),
     "error: --top must be a positive whole number. Got 0 instead."),
])
def test_errors_name_the_flag_not_the_api_parameter(args, line):
    """Every command's ValidationError names the option the user typed (tp_size -> --tp,
    duration_days -> --days, top_k -> --top), exit 2, one line."""
    out = run(*args)
    assert out.returncode == 2, out.stdout + out.stderr
    err = out.stderr.strip().splitlines()
    assert len(err) == 1 and err[0].startswith(line), err
    assert "parameter of" not in err[0]


def test_eval_splits_a_pass_and_shares_the_memory_rule():
    """`eval --tp/--pp` is Engine.solve's split pass; `--memory-utilization` is the usable
    fraction, as in `serve` (whose default is 0.9). Llama-3-70B fp16: 141 GB of weights do
    not fit one 85.5 GB H100, fit at tp=8 (17.6 GB per device); a comma list of --tp sweeps."""
    from mlsysim.core.engine import Engine

    out = run("eval", "Llama3_70B", "H100", "-b", "8", "--seq-len", "1024", "--tp", "4",
              "--pp", "2", "--memory-utilization", "0.9", "--json")
    assert out.returncode == 0, out.stderr
    d = json.loads(out.stdout)
    p = Engine.solve("Llama3_70B", "H100", batch_size=8, seq_len=1024, tp_size=4, pp_size=2,
                     memory_utilization=0.9)
    assert (d["tp_size"], d["pp_size"], d["memory_utilization"]) == (4, 2, 0.9)
    assert d["latency"]["value"] == pytest.approx(p.latency.to("ms").magnitude, rel=1e-9)
    assert d["feasible"] is True
    out = run("eval", "Llama3_70B", "H100", "--seq-len", "1024", "--tp", "1,8", "--json")
    rows = json.loads(out.stdout)
    assert [(r["tp_size"], r["feasible"]) for r in rows] == [(1, False), (8, True)]
    out = run("eval", "Llama3_70B", "H100", "--seq-len", "1024")
    assert out.returncode == 3 and "weights" in out.stderr


def test_process_entry_keeps_exit_codes_and_survives_an_early_reader():
    """`mlsysim` exits through cli.run (no interpreter teardown): the exit codes are main()'s
    (0, 2 for a usage error, 3 infeasible), and a reader that closes the pipe early (`| head
    -1`) leaves no traceback."""
    assert run("eval", "ResNet50", "A100").returncode == 0
    assert run("eval", "ResNet50", "A10O").returncode == 2
    assert run("eval", "Llama3_70B", "A100").returncode == 3
    p = subprocess.Popen([sys.executable, "-m", "mlsysim", "zoo", "models"],
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    p.stdout.readline()
    p.stdout.close()
    err = p.stderr.read()
    p.wait(timeout=60)
    assert "Traceback" not in err
