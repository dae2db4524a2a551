"""The memory a serving engine takes by its own default (issue 12, section 1.6): vLLM's
gpu_memory_utilization (a fraction of the device), SGLang's mem_fraction_static (weights and
the KV pool; activation buffers outside it; lower as TP grows) and TensorRT-LLM's
free_gpu_memory_fraction (a fraction of what weights and activations leave).

Llama-3-8B (8,030,261,248 parameters, bf16: W = 16,060,522,496 B) on one H100 (81,559 MiB =
C = 85,520,809,984 B), a 1,024-token prompt (activation buffers A = 67,108,864 B):

    vLLM          0.9 C                         = 76,968,728,985.6
    SGLang tp 1   0.88 C + A                    = 75,325,421,649.9
    TensorRT-LLM  W + A + 0.9 (C - W - A)       = 78,581,492,121.6   (0.1 W + 0.1 A + 0.9 C)
"""

import pytest

from mlsysim import ServingModel
from mlsysim.errors import ValidationError
from mlsysim.zoo import ServingEngines

C = 81_559 * 2**20
W = 8_030_261_248 * 2
A = 67_108_864
SM = ServingModel()


def _usable(engine=None, **kw):
    return SM.solve("Llama3_8B", "H100", seq_len=1024, output_len=512, batch_size=1,
                    engine=engine, **kw).usable_bytes


@pytest.mark.parametrize("engine, expected", [
    (None, 0.9 * C),
    ("vllm", 0.9 * C),
    ("sglang", 0.88 * C + A),
    ("tensorrt_llm", W + A + 0.9 * (C - W - A)),
    ("static", 0.9 * C),
])
def test_each_engine_takes_the_memory_its_own_default_gives(engine, expected):
    assert _usable(engine) == pytest.approx(expected, rel=1e-12)


def test_the_hand_values_in_the_docstring():
    assert 0.9 * C == pytest.approx(76_968_728_985.6, rel=1e-12)
    assert 0.88 * C + A == pytest.approx(75_325_421_649.9, rel=1e-12)
    assert W + A + 0.9 * (C - W - A) == pytest.approx(78_581_492_121.6, rel=1e-12)


def test_an_explicit_fraction_wins_over_the_engines_rule():
    """memory_utilization=0.8 is 0.8 of the device whatever the engine's own rule."""
    for engine in (None, "sglang", "tensorrt_llm"):
        assert _usable(engine, memory_utilization=0.8) == pytest.approx(0.8 * C, rel=1e-12)


@pytest.mark.parametrize("tp, fraction", [(1, 0.88), (2, 0.87), (3, 0.87), (4, 0.85),
                                           (8, 0.81), (16, 0.79), (32, 0.79)])
def test_sglang_lowers_its_static_fraction_as_tp_grows(tp, fraction):
    """server_args.py (v0.4): 0.88 at tp 1, 0.87 from 2, 0.85 from 4, 0.81 from 8, 0.79 from
    16; a tp between the steps takes the step below it."""
    assert ServingEngines.get("sglang").fraction(tp) == fraction


def test_the_free_rule_keeps_the_resident_bytes_when_they_alone_overflow():
    """Weights larger than the device: the engine cannot hand the KV cache a negative
    share; the usable bytes are the resident ones and the model reports it does not fit."""
    spec = ServingEngines.get("tensorrt_llm")
    assert spec.usable_bytes(80e9, 90e9, 1e9) == 91e9
    assert spec.usable_bytes(80e9, 40e9, 0.0) == pytest.approx(40e9 + 0.9 * 40e9, rel=1e-12)


def test_more_usable_memory_holds_more_sequences():
    """Batch 'max' under TensorRT-LLM's free rule (78.58 GB) holds more sequences than under
    vLLM's 0.9 (76.97 GB): the KV cache per sequence is the same, 1,536 tokens x 128 KiB."""
    kw = dict(seq_len=1024, output_len=512, batch_size="max")
    v = SM.solve("Llama3_8B", "H100", engine="vllm", **kw)
    t = SM.solve("Llama3_8B", "H100", engine="tensorrt_llm", **kw)
    per_seq = 1536 * 32 * 8 * 128 * 2 * 2
    assert v.batch_size == int((0.9 * C - W - A) // per_seq)
    assert t.batch_size == int((W + A + 0.9 * (C - W - A) - W - A) // per_seq)
    assert t.batch_size > v.batch_size


def test_a_bad_fraction_in_a_preset_is_refused():
    from mlsysim.specs.serving import ServingEngineSpec

    data = ServingEngines.get("sglang").model_dump(mode="json")
    data["memory_fraction_by_tp"] = {"1": 1.5}
    with pytest.raises((ValidationError, ValueError), match="memory_fraction_by_tp"):
        ServingEngineSpec.model_validate(data)
