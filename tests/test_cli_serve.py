"""mlsysim serve under load: the continuous-batching model at --qps, one SLO verdict (table,
--json and exit code), and the flags that reach the solvers."""

import json
import subprocess
import sys

import pytest

README = ("serve", "Llama3_8B", "H100", "--prompt-len", "1024", "--output-len", "256",
          "--qps", "2")


def run(*args):
    return subprocess.run([sys.executable, "-m", "mlsysim", *args], capture_output=True,
                          text=True, timeout=120)


def load(*extra):
    out = run(*README, *extra, "--json")
    assert out.returncode == 0, out.stdout + out.stderr
    return json.loads(out.stdout)


def test_readme_example_passes_with_one_verdict():
    out = run(*README, "--slo-p99-ms", "3000")
    assert out.returncode == 0, out.stderr
    line = next(x for x in out.stdout.splitlines() if x.startswith("SLO p99 <= 3000 ms"))
    assert "PASS" in line
    d = load("--slo-p99-ms", "3000")
    slo = d["slo"]
    assert slo["target_ms"] == 3000 and slo["pass"] is True
    assert slo["value_ms"] == pytest.approx(d["load"]["p99"]["e2e_ms"])
    assert f"({slo['value_ms']:.4g} ms)" in line          # the table shows the same value
    # vLLM preset, one H100 carries 2 req/s: means and p99 from the same steady state.
    lo = d["load"]
    assert lo["replicas"] == 1 and lo["engine"].startswith("vLLM")
    assert lo["mean"]["itl_ms"] == lo["p99"]["itl_ms"]
    assert lo["p99"]["e2e_ms"] >= lo["p50"]["e2e_ms"]
    assert lo["mean"]["e2e_ms"] == pytest.approx(
        lo["mean"]["ttft_ms"] + 255 * lo["mean"]["itl_ms"])


def test_tight_slo_fails_with_exit_3():
    out = run(*README, "--slo-p99-ms", "100")
    assert out.returncode == 3
    assert "SLO p99 <= 100 ms: FAIL" in out.stdout and "SLO" in out.stderr
    out = run(*README, "--slo-p99-ms", "100", "--json")
    assert out.returncode == 3 and json.loads(out.stdout)["slo"]["pass"] is False


def test_replicas_when_one_group_cannot_carry_the_load():
    d = load()["load"]
    out = run("serve", "Llama3_8B", "H100", "--qps", "200", "--json")
    assert out.returncode == 0, out.stderr
    lo = json.loads(out.stdout)["load"]
    assert lo["replicas"] >= -(-200 // d["max_qps_per_replica"])
    assert lo["qps_per_replica"] * lo["replicas"] == pytest.approx(200)


@pytest.mark.parametrize("args, flag", [
    (("--slo-p99-ms", "100"), "--slo-p99-ms"),                   # without --qps
    (("--qps", "2", "--slo-p99-ms", "nan"), "--slo-p99-ms"),
    (("--qps", "2", "--slo-p99-ms", "0"), "--slo-p99-ms"),
    (("--qps", "2", "--slo-p99-ms", "-5"), "--slo-p99-ms"),
    (("--prompt-len", "-3"), "--prompt-len"),                     # not seq_len
    (("--qps", "2", "--draft-model", "Llama3_2_1B"), "--draft-acceptance"),
    (("--memory-utilization", "2"), "--memory-utilization"),
])
def test_bad_input_exits_2_naming_the_flag(args, flag):
    out = run("serve", "Llama3_8B", "H100", *args)
    assert out.returncode == 2, out.stdout + out.stderr
    lines = out.stderr.strip().splitlines()
    assert len(lines) == 1 and flag in lines[0] and "Traceback" not in out.stderr
    assert "seq_len" not in lines[0] and "_rate" not in lines[0]


def test_draft_prefix_and_compression_reach_the_result():
    plain = load()
    draft = load("--draft-model", "Llama3_2_1B", "--draft-acceptance", "0.8")
    assert draft["itl"]["value"] < plain["itl"]["value"]
    assert draft["load"]["mean"]["itl_ms"] < plain["load"]["mean"]["itl_ms"]
    prefix = load("--prefix-len", "768")
    assert prefix["ttft"]["value"] < plain["ttft"]["value"]
    assert prefix["load"]["mean"]["ttft_ms"] < plain["load"]["mean"]["ttft_ms"]
    comp = load("--compression", "int4_weight_only")
    assert comp["weight_precision"] == "int4" and comp["compression"]["weight_memory_ratio"] < 0.3
    assert comp["load"]["mean"]["itl_ms"] < plain["load"]["mean"]["itl_ms"]


def test_engine_choice_changes_the_loaded_numbers():
    vllm, static = load()["load"], load("--engine", "static")["load"]
    assert static["engine"].startswith("Static")
    assert static["max_qps_per_replica"] < vllm["max_qps_per_replica"]
    assert static["mean"]["itl_ms"] > vllm["mean"]["itl_ms"]


def test_serve_table_names_its_bottleneck():
    """The table shows the same binding resource as --json: Llama-3-8B decode at batch 1 on
    an H100 streams 16 GB of weights per token (memory bandwidth); 70B in fp16 needs 141 GB
    of weights on an 80 GB device (memory capacity)."""
    for args, binding in [(("Llama3_8B", "H100"), "memory bandwidth"),
                          (("Llama3_70B", "H100"), "memory capacity")]:
        table = run("serve", *args)
        row = next(x for x in table.stdout.splitlines() if x.startswith("binding"))
        assert row.split(None, 1)[1].strip() == binding
        assert json.loads(run("serve", *args, "--json").stdout)["binding"] == binding


def test_comma_lists_sweep_into_one_table():
    """-b 1,8 --tp 1,2 --prompt-len 512,2048: 2 x 2 x 2 = 8 rows, each equal to
    ServingModel().solve for the same configuration (the sweep's one code path)."""
    from mlsysim import ServingModel
    out = run("serve", "Llama3_8B", "H100", "-b", "1,8", "--tp", "1,2", "--prompt-len",
              "512,2048", "--json")
    assert out.returncode == 0, out.stderr
    rows = json.loads(out.stdout)
    assert len(rows) == 8
    assert {(r["seq_len"], r["tp_size"], r["batch_size"]) for r in rows} == {
        (s, t, b) for s in (512, 2048) for t in (1, 2) for b in (1, 8)}
    for r in (rows[0], rows[-1]):
        p = ServingModel().solve("Llama3_8B", "H100", seq_len=r["seq_len"], output_len=256,
                                 batch_size=r["batch_size"], tp_size=r["tp_size"])
        assert r["ttft_s"] == pytest.approx(p.ttft.to("s").magnitude, rel=1e-9)
        assert r["itl_s"] == pytest.approx(p.itl.to("s").magnitude, rel=1e-9)
        assert r["feasible"] == p.feasible
    csv_out = run("serve", "Llama3_8B", "H100", "-b", "1,8", "--csv")
    lines = csv_out.stdout.strip().splitlines()
    assert lines[0].startswith("seq_len,output_len,tp_size,batch_size,ttft_s") and \
        len(lines) == 3


@pytest.mark.parametrize("extra, flag", [(("--qps", "2"), "--qps"),
                                         (("--pp", "2"), "--pp"),
                                         (("--draft-model", "Llama3_2_1B"), "--draft-model")])
def test_load_options_refuse_comma_lists(extra, flag):
    out = run("serve", "Llama3_8B", "H100", "-b", "1,8", *extra)
    assert out.returncode == 2
    assert out.stderr.strip().startswith(f"error: {flag}: not with comma lists")


def test_sweep_footer_names_refused_tp_by_flag():
    """Llama-3-8B has 32 heads: --tp 3 does not divide them, so that plan is refused and
    the footer (stderr under --json) names it by serve's flags."""
    out = run("serve", "Llama3_8B", "H100", "--tp", "1,3", "--json")
    assert out.returncode == 0, out.stderr
    assert len(json.loads(out.stdout)) == 1
    assert out.stderr.strip() == ("skipped 1 config (1 --tp not applicable): "
                                  "--prompt-len 1024, --output-len 256, --tp 3")


def test_serve_engine_sets_the_per_step_overhead_of_the_table():
    """`serve --engine tensorrt_llm` without --qps: the table is ServingModel(engine=...), the
    ITL 0.3 ms (the preset's step overhead) above the engine-free table; a comma-list sweep
    refuses --engine rather than ignoring it."""
    import json as _json

    from mlsysim import ServingModel
    args = ("serve", "Llama3_8B", "H100", "--prompt-len", "1024", "--output-len", "256")
    plain = _json.loads(run(*args, "--json").stdout)
    trt = run(*args, "--engine", "TensorRT_LLM", "--json")
    assert trt.returncode == 0, trt.stderr
    d = _json.loads(trt.stdout)
    r = ServingModel().solve("Llama3_8B", "H100", seq_len=1024, output_len=256,
                             engine="tensorrt_llm")
    assert d["itl"]["value"] == pytest.approx(r.itl.to("ms").magnitude, rel=1e-9)
    assert d["itl"]["value"] - plain["itl"]["value"] == pytest.approx(0.3, rel=1e-6)
    assert d["step_overhead_s"] == pytest.approx(3e-4) and plain["engine"] is None
    swept = run(*args[:-1], "256,512", "--engine", "vllm")
    assert swept.returncode == 2 and "--engine" in swept.stderr
