"""Targeted mutation testing of the core equations (a dev script).

Each mutation breaks one factor of an equation (a ring's 2(n-1)/n, the pipeline bubble's
1/v, Adam's bytes per parameter, the overlap rule, ...) in the source file, runs the tests
that guard it, and restores the file. A mutation the tests do not notice "survives": a
missing test. Run from the repository root:

    python scripts/mutation_check.py            # all mutations
    python scripts/mutation_check.py collectives  # only those whose name contains the word

Exit status 1 if any mutation survives or no longer applies (the source moved on: update the
list).
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

# (name, file, original text, mutated text, tests to run)
MUTATIONS = [
    ("collectives: ring all-reduce moves 2(n-1)/n", "mlsysim/core/collectives.py",
     '"nccl": (2 * (n - 1) * a, rf / (eff.eta_bus * bw)),',
     '"nccl": (2 * (n - 1) * a, rf / 2 / (eff.eta_bus * bw)),',
     ["tests/test_systems_collectives.py", "tests/test_collectives.py"]),
    ("collectives: tree latency 2 ceil(log2 n) steps", "mlsysim/core/collectives.py",
     '"tree": (2 * _log2(n) * a, 2.0 / (link * bw)),',
     '"tree": (_log2(n) * a, 2.0 / (link * bw)),', ["tests/test_systems_collectives.py"]),
    ("collectives: one-shot reads n-1 buffers", "mlsysim/core/collectives.py",
     '"one_shot": (a, (n - 1) / (link * bw)),', '"one_shot": (a, n / (link * bw)),',
     ["tests/test_systems_collectives.py"]),
    ("collectives: in-network moves S once", "mlsysim/core/collectives.py",
     '"in_network": (2 * a, 1.0 / (eta_inr * bw)),', '"in_network": (2 * a, 2.0 / (eta_inr * bw)),',
     ["tests/test_systems_collectives.py"]),
    ("collectives: hierarchical inter-node share S/L", "mlsysim/core/collectives.py",
     "hier_b += 2 * (N - 1) / N / L / (e_out * bw_out)",
     "hier_b += 2 * (N - 1) / N / (e_out * bw_out)", ["tests/test_systems_collectives.py"]),
    ("collectives: NIC bandwidth per accelerator", "mlsysim/core/collectives.py",
     "out_bw = out._base[\"device_bandwidth\"] * node.nics_per_node / node.accelerators_per_node\n"
     "        if fleet",
     "out_bw = out._base[\"device_bandwidth\"] * node.nics_per_node\n        if fleet",
     ["tests/test_systems_collectives.py"]),
    ("collectives: oversubscription divides scale-out", "mlsysim/core/collectives.py",
     "out_bw /= fleet.effective_oversubscription", "out_bw /= 1.0",
     ["tests/test_systems_collectives.py"]),
    ("collectives: latency read only from small-message rows", "mlsysim/core/collectives.py",
     "min(p[1] for p in pts) > LATENCY_ROW_MAX:", "min(p[1] for p in pts) > 2**40:",
     ["tests/test_collectives.py"]),
    ("calibration: best-of-search groups divided by the bias", "mlsysim/core/calibration.py",
     "gmax = {g: v / bias if g in only else v for g, v in gmax.items()}",
     "gmax = {g: v for g, v in gmax.items()}", ["tests/test_calibration.py"]),
    ("calibration: the bias is measured against the plateau", "mlsysim/core/calibration.py",
     "mixed = [residuals[rid] * gmax[g] / plateau.get(g, gmax[g])",
     "mixed = [residuals[rid]", ["tests/test_calibration.py"]),
    ("calibration: memory-bound shapes are not plateau rows", "mlsysim/core/calibration.py",
     "if bw is not None and intensity < peak / bw:",
     "if bw is not None and intensity < 0:", ["tests/test_calibration.py"]),
    ("calibration: ramp shapes are not plateau rows", "mlsysim/core/calibration.py",
     "BEST_OF_SEARCH_SOURCES or shape < PLATEAU_SHAPE:",
     "BEST_OF_SEARCH_SOURCES or shape < 0:", ["tests/test_calibration.py"]),
    ("reliability: a chained run lasts its work over goodput", "mlsysim/solvers/reliability.py",
     "t = useful / g if g > 0.0 and delta < tau else useful",
     "t = useful * g if g > 0.0 and delta < tau else useful", ["tests/test_reliability.py"]),
    ("serving: speculative ITL is (k draft steps + verify) / E", "mlsysim/solvers/serving.py",
     "itl = (plan.draft_len * t_draft + t_verify + o) / plan.accepted",
     "itl = (t_draft + t_verify + o) / plan.accepted", ["tests/test_serving.py"]),
    ("validation: MLPerf BERT throughput at the mean unpadded length",
     "mlsysim/validation/adapters.py",
     'BENCHMARK_MEAN_SEQ_LEN = {("mlperf", "BERT_Large"): 177}',
     'BENCHMARK_MEAN_SEQ_LEN = {("mlperf", "BERT_Large"): 384}',
     ["tests/test_validation_adapters.py"]),
    ("cost model: overlap rule hides behind compute", "mlsysim/core/costmodel.py",
     "return blocking + np.maximum(hidden - compute_total, 0.0)", "return blocking + hidden",
     ["tests/test_systems_collectives.py", "tests/test_distributed.py"]),
    ("memory: gradients count", "mlsysim/core/memory.py",
     "return self.weights + self.gradients + self.optimizer + self.activations",
     "return self.weights + self.optimizer + self.activations",
     ["tests/test_memory.py", "tests/test_distributed.py"]),
    ("memory: max batch from free bytes", "mlsysim/core/memory.py",
     "b = int(max(free, 0.0) // grow)", "b = int(max(free, 0.0) // grow) + 1",
     ["tests/test_memory.py"]),
    ("training: attention backward 2.5x", "mlsysim/workloads/training.py",
     "ATTENTION_BACKWARD = 2.5", "ATTENTION_BACKWARD = 2.0", ["tests/test_training_tables.py"]),
    ("training: weight gradient GEMM", "mlsysim/workloads/training.py",
     "parts.append(_take(cols, wg, weight=", "parts.append(_take(cols, wg[:0], weight=",
     ["tests/test_training_tables.py"]),
    ("distributed: bubble divided by v", "mlsysim/solvers/distributed.py",
     "bubble = (pp - 1) / v * t_slow", "bubble = (pp - 1) * t_slow",
     ["tests/test_distributed.py"]),
    ("distributed: fp32 master copy", "mlsysim/solvers/distributed.py",
     "+ (4.0 if e < 4 else 0.0)", "+ (0.0 if e < 4 else 0.0)", ["tests/test_distributed.py"]),
    ("distributed: ZeRO-1 shards the optimizer", "mlsysim/solvers/distributed.py",
     "o_per = state / np.where(zero >= 1, shard, 1)", "o_per = state",
     ["tests/test_distributed.py"]),
    ("distributed: attention flops in MFU", "mlsysim/solvers/distributed.py",
     "per_token = 6 * n_active + 12 * model.layers", "per_token = 6 * n_active + 6 * model.layers",
     ["tests/test_distributed.py"]),
    ("distributed: micro-batches per step", "mlsysim/solvers/distributed.py",
     "compute = m * t_slow", "compute = (m + 1) * t_slow", ["tests/test_distributed.py"]),
    ("distributed: full recomputation keeps 2 s b h", "mlsysim/solvers/distributed.py",
     "kept = 2 * h / (tp if sp else 1)", "kept = 4 * h / (tp if sp else 1)",
     ["tests/test_distributed.py"]),
    ("serving: PP hand-offs per stage boundary", "mlsysim/workloads/transformer.py",
     'count=pp - 1,\n                 span=span)', 'count=pp,\n                 span=span)',
     ["tests/test_serving.py", "tests/test_systems_collectives.py"]),
    ("serving: two TP all-reduces per layer", "mlsysim/workloads/transformer.py",
     "group=tp,\n                     count=2 * spec.layers)",
     "group=tp,\n                     count=spec.layers)",
     ["tests/test_serving.py", "tests/test_training_tables.py"]),
    ("serving: TP messages at least 16-bit", "mlsysim/workloads/transformer.py",
     "    return max(e, 2.0)", "    return e", ["tests/test_serving.py"]),
    ("serving: activations 16-bit under fp8", "mlsysim/workloads/transformer.py",
     "    e = ce = comm_bytes(e)", "    ce = comm_bytes(e)", ["tests/test_serving.py"]),
    ("engine: a pipeline stage holds 1/pp of the weights", "mlsysim/core/engine.py",
     "return MemoryBudget(weights=table.weight_total_bytes / pp,",
     "return MemoryBudget(weights=table.weight_total_bytes,", ["tests/test_engine.py"]),
    ("engine: pipeline throughput x pp", "mlsysim/core/engine.py",
     'return Rate(self.pp_size * self.batch_size / self.latency_s, "sample/s")',
     'return Rate(self.batch_size / self.latency_s, "sample/s")', ["tests/test_engine.py"]),
    ("engine: usable = capacity x memory_utilization", "mlsysim/core/engine.py",
     'usable=hardware._base["capacity"] * memory_utilization,',
     'usable=hardware._base["capacity"],', ["tests/test_engine.py"]),
    ("distributed: middle stages split the rest", "mlsysim/solvers/distributed.py",
     "even = rest // n + (j < rest % n)", "even = rest // n", ["tests/test_distributed.py"]),
    ("distributed: layout reaches the stage table", "mlsysim/solvers/distributed.py",
     "kinds = stage_kind_table(parts.layers, pp, layout)",
     "kinds = stage_kind_table(parts.layers, pp)",
     ["tests/test_distributed.py", "tests/test_validation_training.py"]),
    ("grid: collective terms per (pp, dp) pair", "mlsysim/solvers/distributed.py",
     "pairs, pair = factorize(pp_i * len(widths) + dp_i)", "pairs, pair = factorize(pp_i + dp_i)",
     ["tests/test_grid_evaluation.py"]),
    ("grid: stage tables per (depth, micro-batch) cell", "mlsysim/solvers/distributed.py",
     "cell = kind.depth * len(mbs_values) + mbs_idx", "cell = kind.depth + mbs_idx",
     ["tests/test_grid_evaluation.py"]),
    ("grid: the slowest stage kind sets the step", "mlsysim/solvers/distributed.py",
     "        later = t > t_slow", "        later = t < t_slow", ["tests/test_distributed.py"]),
    ("distributed: dropout masks h bytes each", "mlsysim/solvers/distributed.py",
     "mask = h if dropout else 0", "mask = h",
     ["tests/test_distributed.py", "tests/test_validation_training.py"]),
    ("placement: a partial last hour counts its fraction", "mlsysim/optimize/placement.py",
     "+ frac * np.tile(year, reps)[starts + whole]", "+ 0 * np.tile(year, reps)[starts + whole]",
     ["tests/test_footprint.py"]),
    ("placement: the job's hours from its start", "mlsysim/optimize/placement.py",
     "total = cs[starts + whole] - cs[starts]", "total = cs[starts + whole] - cs[starts * 0]",
     ["tests/test_footprint.py"]),
    ("serving: an engine's overhead once per decode step", "mlsysim/solvers/serving.py",
     "    itl = t_d + o\n", "    itl = t_d + 2 * o\n",
     ["tests/test_serving.py"]),
    ("serving: an engine's overhead in the prefill step", "mlsysim/solvers/serving.py",
     "return (t_p - comm_p + o, comm_p,", "return (t_p - comm_p, comm_p,",
     ["tests/test_serving.py"]),
    ("serving: a per-head decode kernel re-reads the cache per query head",
     "mlsysim/workloads/transformer.py",
     "    return spec.heads / tp / max(spec.n_kv_heads / tp, 1)",
     "    return spec.heads / tp / max(spec.n_kv_heads, 1)",
     ["tests/test_decode_attention.py"]),
    ("distributed: the first stage holds the embedding table", "mlsysim/solvers/distributed.py",
     '    params["pre"] += embedding', '    params["stack"] += embedding',
     ["tests/test_stage_embeddings.py"]),
    ("distributed: one tied table when the first stage is the last",
     "mlsysim/solvers/distributed.py",
     "            - tied * (kind.first_d & kind.last_d))[kind.depth]",
     "            - 0 * tied * (kind.first_d & kind.last_d))[kind.depth]",
     ["tests/test_stage_embeddings.py"]),
    ("serving: stacked passes sum their own rows", "mlsysim/core/costmodel.py",
     "        counts[row:row + len(p.count), j] = p.count",
     "        counts[row:row + len(p.count), 0] = p.count",
     ["tests/test_serving_stacked.py"]),
    ("cost model: attention at the 16-bit peak under fp8", "mlsysim/core/costmodel.py",
     "op_peak = np.where(gemm, gemm_peak, np.where(attn, attn_peak, vector))",
     "op_peak = np.where(gemm, gemm_peak, np.where(attn, peak, vector))",
     ["tests/test_engine.py"]),
    ("serving: group scales per weight", "mlsysim/solvers/serving.py",
     'we = we + GROUP_SCALE_BYTES / a["weight_group_size"]',
     'we = we + GROUP_SCALE_BYTES / a["weight_group_size"] / 2', ["tests/test_serving.py"]),
    ("importers: fuse only a sole use", "mlsysim/importers/graph.py",
     "if p is None or users[p] != 1:", "if p is None or users[p] < 1:",
     ["tests/test_onnx_import.py"]),
    ("importers: a fused op reads only its other operands", "mlsysim/importers/graph.py",
     "if not w and j != pos)", "if not w)", ["tests/test_onnx_import.py"]),
    ("distributed: ZeRO-3 re-gathers for a recomputed forward", "mlsysim/solvers/distributed.py",
     "(3 if parts.regather else 2) * one", "2 * one", ["tests/test_distributed.py"]),
    ("training: attention dropout pass over the scores", "mlsysim/workloads/transformer.py",
     "act_bytes=grid * (2 * e + 1), count=n)", "act_bytes=grid * 2 * e, count=n)",
     ["tests/test_training_tables.py"]),
    ("training: materialized attention computes the whole score rectangle",
     "mlsysim/workloads/transformer.py",
     "attn_flops += heads * per_pair * (s.pairs(window) if flash else s.score_elements())",
     "attn_flops += heads * per_pair * s.pairs(window)",
     ["tests/test_training_tables.py"]),
    ("distributed: compute slows beside an overlapped collective",
     "mlsysim/solvers/distributed.py",
     "return np.maximum(comm, compute + comm * (slowdown / (1.0 + slowdown)))",
     "return np.maximum(comm, compute)",
     ["tests/test_distributed.py"]),
    ("training: selective recomputation re-runs the attention core",
     "mlsysim/workloads/training.py",
     'core = attn | np.array([n.endswith(("attention_softmax", "attention_dropout"))',
     'core = attn | np.array([n.endswith(("attention_softmax",))',
     ["tests/test_training_tables.py"]),
    ("validation: TDP convention x devices x time", "mlsysim/validation/adapters.py",
     "kwh = self.devices * self.tdp_w * self.seconds / 3.6e6",
     "kwh = self.devices * self.tdp_w * self.seconds / 3.6e6 * 0.9",
     ["tests/test_validation_energy.py"]),
    ("eager: an unfused add reads two operands and writes one", "mlsysim/workloads/layered.py",
     'act = (3 if layer.op == "add" else 2) * layer.c * out * e',
     'act = (2 if layer.op == "add" else 2) * layer.c * out * e', ["tests/test_eager.py"]),
    ("eager: BatchNorm reads and writes the conv output", "mlsysim/workloads/layered.py",
     "weight_bytes=4 * layer.cout * e,\n                      act_bytes=2 * y * e",
     "weight_bytes=4 * layer.cout * e,\n                      act_bytes=y * e",
     ["tests/test_eager.py"]),
    ("eager: folded batch norms are kernels of an unfused pass", "mlsysim/importers/graph.py",
     "if fuse and i in self.folded:", "if i in self.folded:", ["tests/test_torch_import.py"]),
    ("eager: the plan cache keys on eager", "mlsysim/core/engine.py",
     "type(tp_size), type(pp_size), eager,", "type(tp_size), type(pp_size), None,",
     ["tests/test_eager.py"]),
    ("graphs: replay costs the smallest measured launch", "mlsysim/core/engine.py",
     "kernel_overhead_s=calibration().graph_kernel_s)", "kernel_overhead_s=calibration()"
     ".kernel_overhead_s)", ["tests/test_eager.py"]),
    ("training band: efficiencies at the spread's edge", "mlsysim/solvers/distributed.py",
     "eff = efficiency_for(hardware, precision).variant(variant)",
     "eff = efficiency_for(hardware, precision)", ["tests/test_distributed.py"]),
    ("training band: collectives at the fits' edge", "mlsysim/solvers/distributed.py",
     "    path = path.at(variant)\n", "", ["tests/test_distributed.py"]),
    ("training band: a rate's low edge is the slow step", "mlsysim/validation/adapters.py",
     "low, high = value * t / t_hi, value * t / t_lo",
     "low, high = value * t / t_lo, value * t / t_hi", ["tests/test_validation_training.py"]),
    ("ZeRO-3: forward + backward gather + reduce-scatter", "mlsysim/solvers/distributed.py",
     "z3_comm = m * (1 + (3 if parts.regather else 2)) * one",
     "z3_comm = m * (1 + (3 if parts.regather else 3)) * one", ["tests/test_distributed.py"]),
    ("ZeRO-3: the recompute gathers once more", "mlsysim/solvers/distributed.py",
     "z3_comm = m * (1 + (3 if parts.regather else 2)) * one",
     "z3_comm = m * (1 + (2 if parts.regather else 2)) * one", ["tests/test_distributed.py"]),
    ("ZeRO-3: exposed gathers count as communication", "mlsysim/solvers/distributed.py",
     "                + self.zero3_exposed_s)", ")", ["tests/test_distributed.py"]),
    ("DP overlap: the interleaved chunks' window", "mlsysim/solvers/distributed.py",
     "window = ((v - 1) * pp + 1) * t_b / v", "window = t_b", ["tests/test_distributed.py"]),
    ("DP overlap: the last chunk behind its own backward", "mlsysim/solvers/distributed.py",
     "overlapped(t_b / v, reduction / v, slowdown) - t_b / v", "0.0",
     ["tests/test_distributed.py"]),
    ("node: a scale-up domain needs a fabric", "mlsysim/specs/system.py",
     "if self.domain > 1 and fab is None:", "if self.domain > 1 and fab is None and n > 1:",
     ["tests/test_pipeline_solvers.py"]),
]


def main(argv: list[str]) -> int:
    pick = [m for m in MUTATIONS if not argv or any(a in m[0] for a in argv)]
    survived, stale = [], []
    for name, rel, old, new, tests in pick:
        path = ROOT / rel
        text = path.read_text()
        if text.count(old) != 1:
            stale.append(name)
            print(f"STALE     {name}: the original text is not found once in {rel}")
            continue
        path.write_text(text.replace(old, new))
        try:
            run = subprocess.run([sys.executable, "-m", "pytest", "-x", "-q", "-p",
                                  "no:cacheprovider", *tests], cwd=ROOT, capture_output=True,
                                 text=True)
        finally:
            path.write_text(text)
        killed = run.returncode != 0
        print(f"{'killed' if killed else 'SURVIVED':<9} {name}")
        if not killed:
            survived.append(name)
    print(f"\n{len(pick) - len(survived) - len(stale)} killed, {len(survived)} survived, "
          f"{len(stale)} stale, of {len(pick)}")
    return 1 if survived or stale else 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
