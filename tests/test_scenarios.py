"""Declarative scenarios (``mlsys.yaml``): the examples audit clean, assertions are parsed at
validation time, bad files name their file and line and exit 2, failing assertions exit 3,
and the JSON Schema describes quantity fields instead of leaving them ``{}``."""

import json
import subprocess
import sys
from pathlib import Path

import pydantic
import pytest

import mlsysim
from mlsysim.cli import main
from mlsysim.errors import MLSysimError
from mlsysim.scenarios import _GETTERS, evaluate_scenario, load_scenario, parse_yaml
from mlsysim.specs.scenario import METRICS, Assertion, Scenario, ScenarioError

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"
EXAMPLE_FILES = sorted(EXAMPLES.glob("*.yaml"))

CHAT = """\
name: chat
workload: Llama3_8B
system: H100
serving:
  seq_len: 1024
  output_len: 256
assertions:
  - serving.itl < 30 ms
"""


def write(tmp_path, text, name="s.yaml"):
    p = tmp_path / name
    p.write_text(text)
    return p


def audit(*args, capsys):
    code = main(["audit", *map(str, args)])
    out = capsys.readouterr()
    return code, out.out, out.err


# ------------------------------------------------------------------------- the examples

def test_at_least_three_examples_cover_serving_training_and_edge():
    names = {p.name for p in EXAMPLE_FILES}
    assert {"llm_chat_serving.yaml", "llm_training_cluster.yaml", "edge_vision.yaml"} <= names


@pytest.mark.parametrize("path", EXAMPLE_FILES, ids=lambda p: p.stem)
def test_every_example_audits_clean(path, capsys):
    code, out, err = audit(path, "--json", capsys=capsys)
    assert code == 0, err + out
    d = json.loads(out)
    assert d["passed"] and d["assertions"]
    assert all(a["passed"] for a in d["assertions"])


def test_chat_example_values_are_the_solvers():
    s = load_scenario(EXAMPLES / "llm_chat_serving.yaml")
    r = evaluate_scenario(s)
    direct = mlsysim.ServingModel().solve("Llama3_8B", "H100", **s.serving.options())
    itl = next(c for c in r.checks if c.assertion.path == "serving.itl")
    assert itl.value == pytest.approx(direct.itl.to("ms").magnitude, rel=1e-12)
    assert {"serving.ttft", "serving.itl"} <= {c.assertion.path for c in r.checks}


def test_training_example_is_llama3_70b_on_64_dgx_h100():
    s = load_scenario(EXAMPLES / "llm_training_cluster.yaml")
    assert s.workload == "Llama3_70B"
    fleet = s.system_spec()
    assert fleet.count == 64 and fleet.node.key == "DGX_H100"
    r = evaluate_scenario(s)
    mfu = next(c for c in r.checks if c.assertion.path == "training.mfu")
    assert mfu.value == pytest.approx(r.runs["training"].mfu)
    assert "memory.feasible" in {c.assertion.path for c in r.checks}


def test_audit_prints_each_assertion_with_value_and_pass(capsys):
    code, out, _ = audit(EXAMPLES / "edge_vision.yaml", capsys=capsys)
    assert code == 0
    assert "single.latency < 33 ms" in out and "PASS" in out and " ms" in out


# ---------------------------------------------------------------------- assertions

@pytest.mark.parametrize("text, path, op, threshold, unit", [
    ("serving.itl < 30 ms", "serving.itl", "<", 30.0, "ms"),
    ("serving.itl<=0.03 s", "serving.itl", "<=", 30.0, "ms"),
    ("memory.feasible", "memory.feasible", "is", True, ""),
    ("serving.feasible == false", "serving.feasible", "is", False, ""),
    ("training.mfu > 0.4", "training.mfu", ">", 0.4, ""),
    ("training.mfu >= 40 %", "training.mfu", ">=", 0.4, ""),
    ("carbon.per_million_tokens < 200 g", "carbon.per_million_tokens", "<", 200.0, "g"),
    ("carbon.per_million_tokens < 0.2 kgCO2e", "carbon.per_million_tokens", "<", 200.0, "g"),
    ("training.memory_per_device < 80 GB", "training.memory_per_device", "<", 80.0, "GB"),
])
def test_assertions_parse_to_path_op_and_threshold_in_the_metric_unit(text, path, op,
                                                                      threshold, unit):
    a = Assertion.parse(text)
    assert (a.path, a.op, a.unit) == (path, op, unit)
    assert a.threshold == pytest.approx(threshold)


@pytest.mark.parametrize("text, words", [
    ("serving.itll < 30 ms", ["unknown path 'serving.itll'", "serving.itl"]),
    ("serving.itl < 30", ["bare number has no unit"]),
    ("serving.itl < 30 GB", ["dimension", "ms"]),
    ("training.mfu > 0.4 ms", ["pure number"]),
    ("serving.itl", ["is a number; compare it"]),
    ("memory.feasible < 3", ["true or false"]),
    ("serving.itl ~ 3 ms", ["not 'path op value'"]),
])
def test_bad_assertions_are_errors_naming_the_assertion(text, words):
    with pytest.raises(ValueError) as e:
        Assertion.parse(text)
    for w in words:
        assert w in str(e.value)


def test_every_metric_has_a_getter():
    assert set(_GETTERS) | {"memory.feasible", "memory.per_device"} == set(METRICS)


def test_assertion_on_an_undeclared_run_is_an_error():
    with pytest.raises(ScenarioError, match="needs a 'training' section"):
        Scenario(name="x", workload="Llama3_8B", system="H100", serving={"seq_len": 128},
                 assertions=["training.mfu > 0.4"])


def test_scenario_is_frozen_and_hashes_by_content():
    a = Scenario(name="x", workload="ResNet50", system="A100", single={"batch_size": 2})
    b = Scenario(name="x", workload="ResNet50", system="A100", single={"batch_size": 2})
    assert a == b and hash(a) == hash(b)
    with pytest.raises(pydantic.ValidationError, match="frozen"):
        a.name = "y"


def test_a_failing_assertion_fails_with_its_value():
    s = Scenario(name="x", workload="ResNet50", system="A100", single={"batch_size": 1},
                 assertions=["single.latency < 0.001 ms", "single.feasible"])
    r = evaluate_scenario(s)
    assert not r.passed and [c.assertion.text for c in r.failed] == ["single.latency < "
                                                                      "0.001 ms"]
    assert r.checks[0].value == pytest.approx(r.runs["single"].latency.to("ms").magnitude)


# ------------------------------------------------------------------- bad files, exit codes

def test_unknown_key_names_file_and_line(tmp_path, capsys):
    p = write(tmp_path, CHAT.replace("  output_len: 256\n", "  output_len: 256\n  tp_sise: 2\n"))
    with pytest.raises(ScenarioError, match=rf"{p}:7: serving.tp_sise"):
        load_scenario(p)
    code, _, err = audit(p, capsys=capsys)
    assert code == 2
    assert err.count("\n") == 1 and f"{p}:7" in err and "Traceback" not in err


def test_unknown_top_level_key_lists_the_allowed_ones(tmp_path):
    p = write(tmp_path, CHAT + "sytem: H100\n")
    with pytest.raises(ScenarioError, match=r":9: sytem: unknown key 'sytem'; allowed: name"):
        load_scenario(p)


def test_type_error_names_file_line_and_field(tmp_path, capsys):
    p = write(tmp_path, CHAT.replace("seq_len: 1024", "seq_len: many"))
    with pytest.raises(ScenarioError, match=rf"{p}:5: serving.seq_len: .*positive whole"):
        load_scenario(p)
    assert audit(p, capsys=capsys)[0] == 2


def test_unknown_assertion_path_names_its_line(tmp_path, capsys):
    p = write(tmp_path, CHAT + "  - serving.ttfb < 1 s\n")
    with pytest.raises(ScenarioError, match=rf"{p}:9: assertions.1: assertion 'serving.ttfb"):
        load_scenario(p)
    code, out, err = audit(p, "--json", capsys=capsys)
    assert code == 2 and json.loads(out)["error"] == "ScenarioError"


def test_unknown_zoo_names_suggest_and_name_the_line(tmp_path):
    p = write(tmp_path, CHAT.replace("workload: Llama3_8B", "workload: Llama3_8X"))
    with pytest.raises(ScenarioError, match=r":2: workload: Unknown model 'Llama3_8X'.*Llama3_8B"):
        load_scenario(p)
    p = write(tmp_path, CHAT.replace("system: H100", "system: {node: DGX_H101, count: 2}"))
    with pytest.raises(ScenarioError, match=r":3: system.node: Unknown node"):
        load_scenario(p)


def test_solver_errors_name_the_line_of_the_option(tmp_path, capsys):
    p = write(tmp_path, CHAT.replace("  output_len: 256\n", "  output_len: 256\n  tp_size: 3\n"))
    s = load_scenario(p)
    with pytest.raises(ScenarioError, match=rf"{p}:7: serving.tp_size: .*attention heads"):
        evaluate_scenario(s)
    assert audit(p, capsys=capsys)[0] == 2


def test_duplicate_keys_and_broken_yaml_name_the_line(tmp_path):
    with pytest.raises(ScenarioError, match=r":2: duplicate key 'name' \(first on line 1\)"):
        parse_yaml("name: x\nname: y\n", "f.yaml")
    with pytest.raises(ScenarioError, match=r"f.yaml:2: not valid YAML"):
        parse_yaml("name: [x\n", "f.yaml")
    with pytest.raises(ScenarioError, match="empty"):
        parse_yaml("", "f.yaml")
    assert isinstance(ScenarioError("x"), MLSysimError)


def test_missing_file_exits_2(tmp_path, capsys):
    assert audit(tmp_path / "nope.yaml", capsys=capsys)[0] == 2


def test_failing_assertion_exits_3(tmp_path, capsys):
    p = write(tmp_path, CHAT.replace("serving.itl < 30 ms", "serving.itl < 0.01 ms"))
    code, out, err = audit(p, capsys=capsys)
    assert code == 3
    assert "FAIL" in out and "serving.itl < 0.01 ms" in err
    code, out, _ = audit(p, "--json", capsys=capsys)
    assert code == 3 and json.loads(out)["passed"] is False


def test_exit_codes_through_the_console_script(tmp_path):
    p = write(tmp_path, CHAT.replace("serving.itl < 30 ms", "serving.itl < 0.01 ms"))
    out = subprocess.run([sys.executable, "-m", "mlsysim", "audit", str(p)],
                         capture_output=True, text=True, timeout=120)
    assert out.returncode == 3, out.stderr
    assert "Traceback" not in out.stderr


# -------------------------------------------------------------------------- the schema

def test_schema_command_prints_the_json_schema(capsys):
    assert main(["schema"]) == 0
    schema = json.loads(capsys.readouterr().out)
    assert schema["additionalProperties"] is False
    assert {"workload", "system", "serving", "training", "single", "footprint",
            "assertions"} <= set(schema["properties"])
    assert schema["$defs"]["ServingConfig"]["additionalProperties"] is False


def test_quantity_fields_are_described_not_empty():
    schema = Scenario.model_json_schema()
    bw = schema["$defs"]["ServingConfig"]["properties"]["network_bandwidth"]
    assert bw["type"] == "string" and "pattern" in bw and "GB/s" in bw["description"]
    items = schema["properties"]["assertions"]["items"]
    assert items["type"] == "string" and "serving.itl < 30 ms" in items["examples"]

    def empties(node, where="#"):
        if isinstance(node, dict):
            props = node.get("properties", {})
            for k, v in props.items():
                if not ({"type", "anyOf", "$ref", "enum", "const", "allOf"} & set(v)):
                    yield f"{where}/{k}"
            for k, v in node.items():
                yield from empties(v, f"{where}/{k}")
        elif isinstance(node, list):
            for v in node:
                yield from empties(v, where)

    assert list(empties(schema)) == []


def test_quantityof_fields_get_a_string_schema_with_their_unit():
    from pydantic import BaseModel

    from mlsysim.specs.base import QuantityOf
    from mlsysim.specs.scenario import ScenarioSchema

    class M(BaseModel):
        bandwidth: QuantityOf("GB/s")

    prop = M.model_json_schema(schema_generator=ScenarioSchema)["properties"]["bandwidth"]
    assert prop["type"] == "string" and "GB/s" in prop["description"]


def test_examples_validate_against_the_schema_keys():
    """Every key an example uses is a property the schema declares (the schema is complete)."""
    schema = Scenario.model_json_schema()
    for path in EXAMPLE_FILES:
        data, _ = parse_yaml(path.read_text(), str(path))
        assert set(data) <= set(schema["properties"]), path
