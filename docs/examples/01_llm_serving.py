# Serving an LLM: what TTFT, inter-token latency and tokens/s do you get, what fits, and
# what batch meets a p99 SLA? Run: MPLBACKEND=Agg python docs/examples/01_llm_serving.py
import mlsysim
from mlsysim import (BatchingOptimizer, CompressionModel, ContinuousBatchingModel,
                     ServingModel)
from mlsysim.show import info, table

serve = ServingModel()

# 1. One request on one H100: decode streams the weights, so ITL ~ weights / bandwidth.
r = serve.solve("Llama3_8B", "H100", seq_len=1024, output_len=256)
info("Llama-3-8B on one H100", TTFT=r.ttft, ITL=r.itl, Tokens_per_s=r.tokens_per_s,
     KV_per_token=r.kv_cache_per_token, Fits=r.feasible)

# 2. A 70B model needs tensor parallelism: memory and speed across 1, 2, 4, 8 GPUs.
rows = []
for tp in (1, 2, 4, 8):
    r = serve.solve("Llama3_70B", "H100", seq_len=2048, output_len=256, tp_size=tp)
    rows.append([tp, r.feasible, r.memory_footprint, r.ttft, r.itl,
                 r.max_concurrent_sequences])
table(["TP", "fits", "memory/GPU", "TTFT", "ITL", "max sequences"], rows)

# 3. Compression: what int4 weights or an fp8 KV cache buy.
for method in ("int4_weight_only", "w8a8_fp8", "fp8_kv"):
    c = CompressionModel().solve("Llama3_8B", "H100", method, seq_len=4096, output_len=512)
    print(f"{method:>18}: weights x{c.weight_memory_ratio:.2f}, ITL {c.itl_speedup:.2f}x "
          f"faster, {c.concurrency_gain:.2f}x the sequences")

# 4. Speculative decoding pays off only when the draft is accepted often.
for rate in (0.2, 0.6, 0.9):
    s = serve.solve("Llama3_8B", "H100", seq_len=1024, output_len=256,
                    draft_model="Llama3_2_1B", draft_acceptance_rate=rate)
    print(f"acceptance {rate:.1f}: ITL {s.itl.magnitude:.2f} ms "
          f"(no draft: {serve.solve('Llama3_8B', 'H100', seq_len=1024).itl.magnitude:.2f} ms)")

# 5. A vLLM-style server under load, and the static batch that meets an 8 s p99 at 5 req/s.
cb = ContinuousBatchingModel().solve("Llama3_8B", "H100", prompt_len=1024, output_len=256,
                                     arrival_rate_qps=5, engine="vllm")
print(cb.explain())
best = BatchingOptimizer().solve("Llama3_8B", "H100", seq_len=1024, output_len=128,
                                 sla_latency_ms=8000, arrival_rate_qps=5)
print(best.explain())
print(mlsysim.ServingEngines.names())
