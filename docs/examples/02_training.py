# Training on a cluster: how long will a step take on N GPUs, at what MFU, which TP/PP/DP,
# will it fit, how often will it fail and how often should it checkpoint?
# Run: MPLBACKEND=Agg python docs/examples/02_training.py
import mlsysim
from mlsysim import (CheckpointModel, DistributedModel, Fleet, ParallelismOptimizer,
                     ReliabilityModel, ScalingModel, Systems)
from mlsysim.show import info, table

# 1. The system: 64 DGX H100 nodes (512 GPUs) on 400G InfiniBand; count is nodes.
fleet = Fleet(name="64 x DGX H100", node=Systems.Nodes.DGX_H100, count=64)
info("Fleet", GPUs=fleet.total_accelerators, Scale_up_domain=fleet.scale_up_domain,
     Fabric=fleet.fabric.name)

# 2. One layout of Llama-3-70B: TP inside the node, PP across four nodes, ZeRO-1.
r = DistributedModel().solve("Llama3_70B", fleet, batch_size=512, seq_len=8192, tp_size=8,
                             pp_size=4, zero_stage=1, activation_recomputation="selective",
                             token_budget=15e12)
print(r.explain())

# 3. Let the optimizer search TP x PP x DP x micro-batch x interleaving x recomputation x ZeRO.
best = ParallelismOptimizer().solve("Llama3_70B", fleet, batch_size=512, seq_len=8192)
print(best.explain().splitlines()[0])
table(["tp", "pp", "dp", "v", "mbs", "zero", "recompute", "step ms", "MFU"],
      [[c["config"][k] for k in ("tp", "pp", "dp", "v_stages", "microbatch_size",
                                  "zero_stage", "activation_recomputation")]
       + [f"{c['step_ms']:.5g}", f"{c['mfu']:.3f}"] for c in best.top_candidates])

# 4. Compute-optimal size for a budget (Chinchilla), checkpoints and failures on this fleet.
s = ScalingModel().solve("1e24 flop")
info("Chinchilla-optimal for 1e24 flop", Parameters=s.optimal_parameters,
     Tokens=s.optimal_tokens)
ck = CheckpointModel().solve("Llama3_70B", fleet, optimizer="adam", n_writers=64)
# Chained onto step 2's run: its time to train is failure-free work; the job lasts that / goodput.
rel = ReliabilityModel().solve(run=r, checkpoint_time_s=ck.write_time_seconds.to("s").magnitude)
info("Checkpoints and failures", Checkpoint=ck.checkpoint_size, Write=ck.write_time_seconds,
     Fleet_MTBF=rel.fleet_mtbf, Young_Daly_interval=rel.optimal_checkpoint_interval,
     Goodput=f"{rel.goodput_ratio:.3f}", Time_to_train=r.time_to_train.to("day"),
     With_failures=rel.wall_time_to_train.to("day"))
print(mlsysim.Systems.Clusters.names())
