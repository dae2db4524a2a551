"""WeightStreamingModel: the feasible example is the prefill its docstring describes."""

import mlsysim


def test_the_feasible_example_holds_sixteen_prompts_of_2048_tokens_of_kv():
    """Llama-3-70B prefill of 16 x 2,048 tokens: 80 layers x 2 (K, V) x 8 KV heads x 128 x 2 B
    = 327,680 B per token, x 32,768 tokens = 10,737,418,240 B of KV cache on the device."""
    model = mlsysim.WeightStreamingModel()
    r = model.solve(**model.example())
    assert r.state_bytes == 80 * 2 * 8 * 128 * 2 * 16 * 2048 == 10_737_418_240
    assert r.feasible
