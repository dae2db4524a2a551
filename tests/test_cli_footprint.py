"""``mlsysim carbon`` and ``mlsysim cost``: JSON that agrees with the solvers, one line and exit
2 on bad input, exit 3 when infeasible, and a chained training run setting the duration."""

import json
import subprocess
import sys

import pytest

import mlsysim

BASE = ["--datacenter", "Hyperscale"]


def run(*args):
    return subprocess.run([sys.executable, "-m", "mlsysim", *args], capture_output=True,
                          text=True, timeout=120)


def test_carbon_json_matches_the_solver_and_region_is_grid():
    out = run("carbon", "DGX_H100", "--days", "30", "--mfu", "0.4", *BASE, "--grid", "Quebec",
              "--json")
    assert out.returncode == 0, out.stderr
    d = json.loads(out.stdout)
    r = mlsysim.SustainabilityModel().solve("DGX_H100", duration_days=30, mfu=0.4,
                                            datacenter="Hyperscale", grid="Quebec")
    assert d["total_energy_kwh"] == pytest.approx(r.total_energy_kwh, rel=1e-12)
    assert d["carbon_footprint_kg"] == pytest.approx(r.carbon_footprint_kg, rel=1e-12)
    assert d["total_energy_kwh"] == pytest.approx(d["it_energy_kwh"] * d["pue"], rel=1e-12)
    alias = run("carbon", "DGX_H100", "--days", "30", "--mfu", "0.4", *BASE, "--region",
                "Quebec", "--json")
    assert alias.returncode == 0 and json.loads(alias.stdout) == d


def test_cost_with_given_prices_by_hand():
    """8 accelerators x 30 days x 24 h x $2.50 = $14,400 to rent; energy = facility kWh x
    $0.10; capex share = 8 x $25,000 x (30 / 365.25) / 6 years."""
    out = run("cost", "DGX_H100", "--days", "30", "--mfu", "0.4", *BASE, "--grid", "PJM",
              "--purchase-price", "25000", "--cloud-price", "2.5", "--kwh-price", "0.10",
              "--json")
    assert out.returncode == 0, out.stderr
    d = json.loads(out.stdout)
    assert d["cloud_usd"] == pytest.approx(8 * 30 * 24 * 2.5)
    assert d["opex_energy_usd"] == pytest.approx(d["total_energy_kwh"] * 0.10)
    assert d["capex_usd"] == pytest.approx(8 * 25_000 * (30 / 365.25) / 6)
    assert d["tco_usd"] == pytest.approx(d["capex_usd"] + d["opex_energy_usd"])


def test_a_chained_training_run_sets_activity_and_duration():
    out = run("carbon", "DGX_H100", "--train", "Llama3_8B", "--batch-size", "64", "--seq-len",
              "2048", "--tokens", "1e9", "--zero", "1", *BASE, "--grid", "Quebec", "--json")
    assert out.returncode == 0, out.stderr
    d = json.loads(out.stdout)
    hours = d["training"]["time_to_train"]["value"]
    assert d["training"]["time_to_train"]["unit"] == "h"
    assert d["duration"]["value"] * 24 == pytest.approx(hours, rel=1e-9)
    run_ = mlsysim.DistributedModel().solve("Llama3_8B", "DGX_H100", batch_size=64,
                                            seq_len=2048, zero_stage=1, token_budget=1e9)
    r = mlsysim.SustainabilityModel().solve("DGX_H100", datacenter="Hyperscale",
                                            grid="Quebec", run=run_)
    assert d["total_energy_kwh"] == pytest.approx(r.total_energy_kwh, rel=1e-12)


@pytest.mark.parametrize("args, needle", [
    (["carbon", "DGX_H100", "--days", "30", "--mfu", "1.4", *BASE, "--grid", "Quebec"], "mfu"),
    (["carbon", "DGX_H100", "--days", "30", "--mfu", "0.4", *BASE, "--grid", "Quebek"],
     "Did you mean"),
    (["carbon", "DGX_H100", "--days", "30", "--mfu", "0.4", *BASE, "--grid", "Quebec",
      "--batch-size", "8"], "--train"),
    (["cost", "DGX_H100", "--days", "30", *BASE, "--grid", "PJM", "--mfu", "0.4", "--train",
      "Llama3_8B"], "--batch-size"),
    (["cost", "DGX_H100", "--days", "30", *BASE, "--grid", "PJM", "--mfu", "0.4",
      "--kwh-price", "-1"], "--kwh-price"),
    (["carbon", "DGX_H100", "--days", "30", "--grid", "Quebec"], "mfu"),
])
def test_bad_input_exits_2_with_one_line(args, needle):
    out = run(*args)
    assert out.returncode == 2, out.stdout + out.stderr
    assert needle in out.stderr and "Traceback" not in out.stderr
    assert len(out.stderr.strip().splitlines()) == 1


def test_bad_input_with_json_is_an_error_object():
    out = run("carbon", "DGX_H100", "--days", "30", "--mfu", "0.4", *BASE, "--grid",
              "Quebek", "--json")
    assert out.returncode == 2 and json.loads(out.stdout)["error"] == "UnknownNameError"


def test_infeasible_exits_3():
    # MI300X has neither a published purchase nor cloud price in the zoo.
    out = run("cost", "MI300X", "--days", "30", "--mfu", "0.4", *BASE, "--grid", "PJM")
    assert out.returncode == 3 and "purchase price" in out.stderr
    # GPT-3 175B unsharded does not fit on a DGX H100: the job cannot run.
    out = run("carbon", "DGX_H100", "--train", "GPT3_175B", "--batch-size", "8", "--seq-len",
              "2048", "--days", "3", *BASE, "--grid", "Quebec", "--json")
    assert out.returncode == 3 and json.loads(out.stdout)["feasible"] is False


def test_place_ranks_regions_like_the_optimizer():
    """`mlsysim place`: the JSON is PlacementOptimizer's; the text is its ranking, unpriced
    grids listed with the reason; an unknown region exits 2 suggesting the name."""
    args = ("place", "DGX_H100", "--days", "30", "--mfu", "0.4", "--regions",
            "US_Avg,CAISO,PJM", "--carbon-tax", "100")
    out = run(*args, "--json")
    assert out.returncode == 0, out.stderr
    d = json.loads(out.stdout)
    r = mlsysim.PlacementOptimizer().solve("DGX_H100", duration_days=30, mfu=0.4,
                                           regions=["US_Avg", "CAISO", "PJM"],
                                           carbon_tax_per_ton=100)
    assert d["best_region"] == r.best_region
    assert [c["carbon_kg"] for c in d["top_candidates"]] == pytest.approx(
        [c["carbon_kg"] for c in r.candidates], rel=1e-12)
    text = run(*args[:-3], "US_Avg,Quebec", "--objective", "cost")
    assert text.returncode == 0 and "regions by cost" in text.stdout
    assert "Quebec (no published electricity price)" in text.stdout
    bad = run("place", "DGX_H100", "--days", "30", "--mfu", "0.4", "--regions", "Quebek")
    assert bad.returncode == 2 and "Quebec" in bad.stderr


def test_carbon_month_uses_the_grids_monthly_profile():
    """France's 2023 shape puts May at 0.625 of the annual intensity: `--month 5` gives the
    annual-average carbon x 0.625; a grid without a profile refuses the month (exit 2)."""
    args = ("carbon", "DGX_H100", "--days", "30", "--mfu", "0.4", *BASE, "--grid", "France")
    year = json.loads(run(*args, "--json").stdout)["carbon_footprint_kg"]
    may = json.loads(run(*args, "--month", "5", "--json").stdout)["carbon_footprint_kg"]
    factor = mlsysim.Infra.Grids.get("France").monthly_profile[4]
    assert factor == 0.625 and may == pytest.approx(year * factor, rel=1e-12)
    out = run("carbon", "DGX_H100", "--days", "30", "--mfu", "0.4", *BASE, "--grid", "India",
              "--month", "5")
    assert out.returncode == 2 and "--month" in out.stderr and "India" in out.stderr


def test_model_then_system_in_train_order_says_the_command_that_means_it():
    """``carbon MODEL SYSTEM`` (``train``'s order) is a usage error whose one line is the
    command to type: the system first, the model as --train, the other options kept; names
    that are not a zoo model and system get click's plain message."""
    from mlsysim.cli import main
    out = run("carbon", "Llama3_8B", "DGX_H100", "--grid", "Quebec")
    assert out.returncode == 2
    assert out.stderr.strip().endswith("(the model goes in --train: mlsysim carbon DGX_H100 "
                                       "--train Llama3_8B --batch-size N --grid Quebec)")
    out = run("cost", "Llama3_8B", "DGX_H100", "-b", "64", "--json")
    assert "mlsysim cost DGX_H100 --train Llama3_8B -b 64 --json" in \
        json.loads(out.stdout)["message"]
    out = run("place", "foo", "DGX_H100")
    assert out.returncode == 2 and "see: mlsysim place --help" in out.stderr
    assert main(["carbon", "DGX_H100", "Llama3_8B"]) == 2     # system first: no hint to give
