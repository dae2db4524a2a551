"""SystemEvaluator scorecards, the shipped Scenarios, Pipeline and the scorecard plot."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

import mlsysim
from mlsysim.errors import MLSysimError, UnknownNameError, ValidationError
from mlsysim.evaluation import AXES, Pipeline, PipelineError, Scenarios, Scorecard, SystemEvaluator
from mlsysim.scenarios import load_scenario

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"
REL = 1e-12


def _approx(x):
    return pytest.approx(x, rel=REL)


@pytest.fixture(scope="module")
def cards():
    return {n: Scenarios.get(n).evaluate() for n in Scenarios.names()}


def test_public_names():
    assert mlsysim.SystemEvaluator is SystemEvaluator
    assert mlsysim.Scenarios is Scenarios
    assert mlsysim.Pipeline is Pipeline
    assert mlsysim.Scorecard is Scorecard
    from mlsysim.viz import plot_evaluation_scorecard
    assert callable(plot_evaluation_scorecard)


def test_shipped_copies_match_the_examples():
    for n in ("LLMChatServing", "LLMTrainingCluster", "EdgeVision"):
        s = Scenarios.get(n)
        assert s.path.read_text() == (EXAMPLES / s.file).read_text()
    assert set(Scenarios.names()) >= {"LLMChatServing", "LLMTrainingCluster", "EdgeVision",
                                      "VisionInference"}


@pytest.mark.parametrize("name", Scenarios.names())
def test_every_shipped_scenario_scores_every_axis(cards, name):
    card = cards[name]
    assert isinstance(card, Scorecard)
    assert card.axes == AXES
    assert card.feasible and card.reason is None
    assert card.evaluation.passed
    json.loads(card.to_json())
    text = card.explain()
    for axis in AXES:
        assert axis in text
    assert name and repr(card).startswith("Scorecard(")
    assert "<table>" in card._repr_html_()
    from dataclasses import FrozenInstanceError
    with pytest.raises(FrozenInstanceError):
        card.name = "x"


def test_chat_serving_equals_the_solvers(cards):
    from mlsysim.core.engine import Engine
    from mlsysim.solvers.economics import EconomicsModel
    from mlsysim.solvers.serving import ServingModel
    from mlsysim.solvers.sustainability import SECONDS_PER_DAY, SustainabilityModel
    card = cards["LLMChatServing"]
    h100 = mlsysim.Hardware.H100
    s = ServingModel().solve("Llama3_8B", h100, seq_len=1024, output_len=256, batch_size=8,
                             precision="fp16")
    assert card["performance"].value == _approx(s.itl.to("ms").magnitude)
    assert card["memory"].value == _approx(s.memory_per_device_bytes / 1e9)
    assert card["memory"].passed is True
    run = Engine.solve("Llama3_8B", h100, batch_size=8, precision="fp16", seq_len=1024,
                       phase="decode")
    tokens = s.tokens_per_s.to("token/s").magnitude * 30 * SECONDS_PER_DAY
    kw = dict(duration_days=30, datacenter="Hyperscale", grid="US_Avg", run=run)
    carbon = SustainabilityModel().solve(h100, tokens=tokens, **kw)
    assert card["carbon"].value == _approx(carbon.per_million_tokens["carbon_g"])
    assert card["carbon"].unit == "gCO2e/Mtoken"
    cost = EconomicsModel().solve(h100, tokens=tokens, **kw)
    assert card["cost"].value == _approx(cost.usd_per_million_tokens["owned"])
    assert card["cost"].unit == "USD/Mtoken"
    assert card["reliability"].value is None and card["reliability"].verdict == "n/a"


def test_training_cluster_equals_the_solvers(cards):
    from mlsysim.solvers.checkpoint import CheckpointModel
    from mlsysim.solvers.distributed import DistributedModel
    from mlsysim.solvers.economics import EconomicsModel
    from mlsysim.solvers.reliability import ReliabilityModel
    from mlsysim.solvers.sustainability import SustainabilityModel
    card = cards["LLMTrainingCluster"]
    fleet = load_scenario(EXAMPLES / "llm_training_cluster.yaml").system_spec()
    t = DistributedModel().solve("Llama3_70B", fleet, batch_size=1024, seq_len=4096,
                                 precision="bf16", tp_size=8, pp_size=4, zero_stage=1,
                                 activation_recomputation="selective", token_budget=1e12)
    assert card["performance"].value == _approx(t.step_latency_total.to("s").magnitude)
    assert card["memory"].value == _approx(t.memory_per_device.to("GB").magnitude)
    kw = dict(datacenter="Hyperscale", grid="US_Avg", run=t)
    carbon = SustainabilityModel().solve(fleet, **kw)
    assert card["carbon"].value == _approx(carbon.per_million_tokens["carbon_g"])
    cost = EconomicsModel().solve(fleet, **kw)
    assert card["cost"].value == _approx(cost.usd_per_million_tokens["owned"])
    ck = CheckpointModel().solve("Llama3_70B", fleet, precision="bf16")
    rel = ReliabilityModel().solve(fleet, job_duration_hours=t.time_to_train.to("hour").m,
                                   checkpoint_time_s=ck.blocking_s)
    assert card["reliability"].value == _approx(rel.goodput_ratio)
    assert card["reliability"].passed is True
    assert f"{rel.fleet_mtbf.to('hour').m:.4g} h" in card["reliability"].detail
    assert card.runs["reliability"].fleet_mtbf_s == _approx(rel.fleet_mtbf_s)


def test_edge_vision_equals_the_solver_and_has_no_footprint(cards):
    from mlsysim.core.engine import Engine
    card = cards["EdgeVision"]
    p = Engine.solve("ResNet50", mlsysim.Hardware.JetsonAGXOrin, batch_size=1,
                     precision="int8")
    assert card["performance"].value == _approx(p.latency.to("ms").magnitude)
    assert card["memory"].value == _approx(p.memory_footprint.to("GB").magnitude)
    for axis in ("cost", "carbon"):
        assert card[axis].value is None and "footprint" in card[axis].detail


def test_vision_inference_prices_the_run(cards):
    from mlsysim.core.engine import Engine
    from mlsysim.solvers.economics import EconomicsModel
    from mlsysim.solvers.sustainability import SustainabilityModel
    card = cards["VisionInference"]
    l4 = mlsysim.Hardware.L4
    p = Engine.solve("ResNet50", l4, batch_size=32, precision="fp16")
    assert card["performance"].value == _approx(p.latency.to("ms").magnitude)
    kw = dict(duration_days=30, datacenter="Hyperscale", grid="US_Avg", utilization=0.5,
              run=p)
    carbon = SustainabilityModel().solve(l4, **kw)
    assert card["carbon"].value == _approx(carbon.carbon_footprint_kg)
    assert card["carbon"].unit == "kgCO2e"
    cost = EconomicsModel().solve(l4, **kw)
    expect = cost.tco_usd if cost.tco_usd is not None else cost.cloud_usd
    assert card["cost"].value == _approx(expect) and card["cost"].unit == "USD"


def test_a_path_a_scenario_a_name_and_keywords_agree(cards):
    ref = cards["LLMChatServing"]
    path = EXAMPLES / "llm_chat_serving.yaml"
    for arg in (path, str(path), load_scenario(path), "LLMChatServing",
                Scenarios.LLMChatServing):
        assert SystemEvaluator().solve(arg).rows == ref.rows
    kw = SystemEvaluator().solve(
        workload="Llama3_8B", system="H100",
        serving=dict(seq_len=1024, output_len=256, batch_size=8, precision="fp16"),
        footprint=dict(datacenter="Hyperscale", grid="US_Avg", duration_days=30))
    for a, b in zip(kw.rows, ref.rows):
        assert (a.value, a.unit) == (b.value, b.unit)
    assert kw.name == "Llama3_8B on H100"


def test_failing_assertion_fails_its_axis():
    card = SystemEvaluator().solve(workload="ResNet50", system="A100",
                                   single={"batch_size": 1},
                                   assertions=["single.latency < 0.001 ms"])
    assert card["performance"].passed is False
    assert "single.latency < 0.001 ms" in card["performance"].verdict
    assert not card.feasible and card.binding == "performance"
    assert "performance" in card.reason
    assert card["memory"].passed is True


def test_not_fitting_fails_memory():
    card = SystemEvaluator().solve(workload="Llama3_70B", system="L4",
                                   serving=dict(seq_len=1024, output_len=128))
    assert card["memory"].passed is False and card["memory"].verdict == "does not fit"
    assert not card.feasible


def test_evaluator_input_errors():
    with pytest.raises(ValidationError, match="scenario"):
        SystemEvaluator().solve()
    with pytest.raises(ValidationError, match="combined"):
        SystemEvaluator().solve("LLMChatServing", workload="GPT2")
    with pytest.raises(ValidationError):
        SystemEvaluator().solve(42)


def test_unknown_scenario_suggests():
    with pytest.raises(UnknownNameError, match="LLMChatServing") as info:
        Scenarios.get("LLMChatServng")
    assert "LLMChatServing" in info.value.suggestions
    with pytest.raises(UnknownNameError):
        Scenarios.EdgeVison
    with pytest.raises(AttributeError):   # an UnknownNameError is an AttributeError too
        Scenarios.Nope  # noqa: B018
    with pytest.raises(UnknownNameError):
        SystemEvaluator().solve("EdgeVison")
    assert "EdgeVision" in dir(Scenarios) and "EdgeVision" in Scenarios
    assert len(list(Scenarios)) == len(Scenarios.names())


# ----------------------------------------------------------------------------- Pipeline
def test_pipeline_order_context_and_callbacks():
    order, seen = [], []

    def first(ctx):
        order.append("first")
        return ctx["x"] + 1

    p = Pipeline([first, ("second", lambda ctx: (order.append("second"), ctx["first"] * 10)[1]),
                  lambda ctx: sorted(ctx)],
                 callbacks=[lambda name, r: seen.append((name, r))])
    out = p.run(x=1)
    assert list(out) == ["first", "second", "stage3"] == list(p.names)
    assert out["first"] == 2 and out["second"] == 20
    assert out["stage3"] == ["first", "second", "x"]
    assert order == ["first", "second"]
    assert seen == [("first", 2), ("second", 20), ("stage3", ["first", "second", "x"])]
    assert repr(p) == "Pipeline(first -> second -> stage3)"


def test_pipeline_of_solvers():
    from mlsysim.solvers.distributed import DistributedModel
    from mlsysim.solvers.sustainability import SustainabilityModel
    fleet = load_scenario(EXAMPLES / "llm_training_cluster.yaml").system_spec()
    p = Pipeline({
        "training": lambda ctx: DistributedModel().solve(
            "Llama3_70B", ctx["fleet"], batch_size=1024, seq_len=4096, precision="bf16",
            tp_size=8, pp_size=4, token_budget=1e12),
        "carbon": lambda ctx: SustainabilityModel().solve(ctx["fleet"], run=ctx["training"],
                                                          datacenter="Hyperscale", grid="US_Avg"),
    })
    out = p.run({"fleet": fleet})
    direct = SustainabilityModel().solve(fleet, run=out["training"],
                                          datacenter="Hyperscale", grid="US_Avg")
    assert out["carbon"].carbon_footprint_kg == _approx(direct.carbon_footprint_kg)


def test_failing_stage_names_itself():
    def boom(ctx):
        raise ZeroDivisionError("no")

    calls = []
    p = Pipeline([("ok", lambda ctx: 1), ("boom", boom), ("never", lambda ctx: calls.append(1))],
                 callbacks=[lambda n, r: calls.append(n)])
    with pytest.raises(PipelineError, match=r"stage 'boom' \(2 of 3\) failed: "
                                            r"ZeroDivisionError: no") as info:
        p.run()
    assert isinstance(info.value, MLSysimError)
    assert info.value.stage == "boom" and info.value.results == {"ok": 1}
    assert isinstance(info.value.__cause__, ZeroDivisionError)
    assert calls == ["ok"]


def test_failing_callback_names_the_stage():
    def bad(name, result):
        raise RuntimeError("cb")

    with pytest.raises(PipelineError, match="callback bad after stage 'a'"):
        Pipeline([("a", lambda ctx: 1)], callbacks=[bad]).run()


def test_pipeline_construction_errors():
    with pytest.raises(ValidationError, match="at least one"):
        Pipeline([])
    with pytest.raises(ValidationError, match="callable"):
        Pipeline([("a", 3)])
    with pytest.raises(ValidationError, match="repeats"):
        Pipeline([("a", len), ("a", len)])
    with pytest.raises(ValidationError, match="callable"):
        Pipeline([len], callbacks=[1])
    with pytest.raises(ValidationError):
        Pipeline("abc")
    with pytest.raises(ValidationError, match="stage name"):
        Pipeline([("a", len)]).run(a=1)


# ----------------------------------------------------------------------------- the plot
def test_plot_has_one_row_per_axis(cards):
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from mlsysim.viz import plot_evaluation_scorecard
    from mlsysim.viz.scorecard import COLORS
    card = SystemEvaluator().solve(workload="ResNet50", system="A100",
                                   single={"batch_size": 1},
                                   assertions=["single.latency < 0.001 ms"])
    fig, ax = plot_evaluation_scorecard(card)
    try:
        table = ax.tables[0]
        rows = {r for r, _ in table.get_celld()}
        assert len(rows) == len(AXES) + 1          # the header and one row per axis
        texts = [table[i + 1, 0].get_text().get_text() for i in range(len(AXES))]
        assert texts == list(AXES)
        perf = table[1, 3].get_facecolor()
        assert matplotlib.colors.to_hex(perf) == COLORS[False]
        assert matplotlib.colors.to_hex(table[2, 3].get_facecolor()) == COLORS[True]
    finally:
        plt.close(fig)
    with pytest.raises(ValidationError):
        plot_evaluation_scorecard(object())
