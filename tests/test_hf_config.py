"""from_hf_config: real Hugging Face config.json files give the same structure as the zoo."""

import json
import socket
from pathlib import Path

import pytest

import mlsysim
from mlsysim import Engine
from mlsysim.errors import DataFileError, SpecError
from mlsysim.specs.model import SSMSpec, TransformerSpec
from mlsysim.zoo.hf import SUPPORTED_MODEL_TYPES, from_hf_config

CONFIGS = Path(__file__).parent / "data" / "hf_configs"

# fixture stem -> zoo key of the same checkpoint
ZOO = {
    "llama3_8b": "Llama3_8B",
    "mistral_7b": "Mistral_7B",
    "mixtral_8x7b": "Mixtral_8x7B",
    "qwen2_5_7b": "Qwen2_5_7B",
    "gemma2_9b": "Gemma2_9B",
    "gpt2": "GPT2",
    "deepseek_v3": "DeepSeek_V3",
    "whisper_large_v3": "Whisper_Large_v3",
}
# Provenance and identity differ by construction; everything else is structure.
NOT_STRUCTURE = {"key", "name", "aliases", "source", "as_of", "notes", "estimate",
                 "field_sources", "published_parameters", "published_macs"}


def load(stem: str, **kw) -> TransformerSpec:
    return from_hf_config(CONFIGS / f"{stem}.json", **kw)


def raw(stem: str) -> dict:
    return json.loads((CONFIGS / f"{stem}.json").read_text())


@pytest.fixture
def write(tmp_path):
    """Write a config dict to tmp_path/<name>.json and return the path."""
    def _write(cfg: dict, name: str = "config") -> Path:
        p = tmp_path / f"{name}.json"
        p.write_text(json.dumps(cfg))
        return p
    return _write


# ------------------------------------------------------------------ agreement with the zoo
@pytest.mark.parametrize("stem", ZOO)
def test_parameter_count_matches_zoo_within_half_percent(stem):
    spec, zoo = load(stem), mlsysim.Models.get(ZOO[stem])
    # Gemma-2 has four RMSNorms per layer and the schema counts two: the zoo entry carries the
    # other two as extra_parameters (42 x 2 x 3584 = 301,056). The importer knows Gemma-2's
    # layout and adds the same extra_parameters, so the totals are compared as they are. (Without
    # them the import would be 301,056 weights, 0.003 %, short: still inside 0.5 %.)
    assert spec.extra_parameters == zoo.extra_parameters
    assert spec.parameter_count == pytest.approx(zoo.parameter_count, rel=0.005)
    assert spec.active_parameter_count == pytest.approx(zoo.active_parameter_count, rel=0.005)
    assert spec.macs_per_sample == pytest.approx(zoo.macs_per_sample, rel=0.005)


@pytest.mark.parametrize("stem", ZOO)
def test_structure_identical_to_zoo(stem):
    """Stronger than the 0.5 % check: every structural field equals the hand-written entry."""
    spec, zoo = load(stem), mlsysim.Models.get(ZOO[stem])
    a, b = spec.model_dump(), zoo.model_dump()
    diff = {k: (a[k], b[k]) for k in a if k not in NOT_STRUCTURE and a[k] != b[k]}
    assert diff == {}
    assert spec.parameter_count == zoo.parameter_count


def test_gemma2_without_its_extra_norms_is_still_within_half_percent():
    spec, zoo = load("gemma2_9b"), mlsysim.Models.Gemma2_9B
    assert spec.extra_parameters == 42 * 2 * 3584 == 301_056
    core = spec.parameter_count - spec.extra_parameters
    assert core == pytest.approx(zoo.parameter_count - zoo.extra_parameters, rel=0)
    assert core == pytest.approx(zoo.parameter_count, rel=0.005)
    assert "post-attention" in spec.notes


# ------------------------------------------------------------------ field mapping
def test_llama3_gqa_and_defaults():
    s = load("llama3_8b")
    assert (s.layers, s.hidden, s.heads, s.kv_heads, s.d_head) == (32, 4096, 32, 8, 128)
    assert s.head_dim is None                     # not in the config: hidden / heads
    assert (s.ffn, s.ffn_gated, s.activation) == (14336, True, "silu")
    assert (s.vocab, s.max_context, s.tied_embeddings) == (128256, 8192, False)
    assert (s.position, s.norm, s.bias, s.qkv_bias) == ("rope", "rmsnorm", False, False)
    assert s.sliding_window is None and s.moe is None
    assert (s.kind, s.architecture, s.group) == ("decoder", "Transformer", "Language")


def test_mistral_sliding_window_on_every_layer():
    s = load("mistral_7b")
    assert s.sliding_window == 4096 and s.layer_pattern is None
    assert all(s.is_local(i) for i in range(s.layers))


def test_mistral_null_window_and_default_window(write):
    cfg = raw("mistral_7b")
    assert from_hf_config({**cfg, "sliding_window": None}).sliding_window is None   # v0.2+
    absent = {k: v for k, v in cfg.items() if k != "sliding_window"}
    assert from_hf_config(absent).sliding_window == 4096       # MistralConfig's default


def test_mixtral_moe():
    s = load("mixtral_8x7b")
    assert s.architecture == "MoE Transformer"
    assert (s.moe.experts, s.moe.active, s.moe.expert_ffn) == (8, 2, 14336)
    assert (s.moe.shared_experts, s.moe.dense_layers) == (0, 0)
    assert s.sliding_window is None                # "sliding_window": null
    assert s.active_parameter_count == 12_879_925_248


def test_qwen2_qkv_bias_and_disabled_window():
    s = load("qwen2_5_7b")
    assert s.qkv_bias and not s.bias
    assert (s.heads, s.kv_heads, s.ffn, s.vocab) == (28, 4, 18944, 152064)
    # The config says sliding_window 131072 but use_sliding_window false: ignored.
    assert raw("qwen2_5_7b")["sliding_window"] == 131072
    assert s.sliding_window is None and s.layer_pattern is None


def test_qwen2_enabled_window_follows_max_window_layers():
    cfg = {**raw("qwen2_5_7b"), "use_sliding_window": True, "sliding_window": 4096}
    every = from_hf_config({**cfg, "max_window_layers": 0})
    assert every.sliding_window == 4096 and every.layer_pattern is None
    assert from_hf_config({**cfg, "max_window_layers": 28}).sliding_window is None
    half = from_hf_config({**cfg, "max_window_layers": 14})
    assert half.layer_pattern == ["global"] * 14 + ["local"] * 14
    assert [half.is_local(i) for i in (0, 13, 14, 27)] == [False, False, True, True]


def test_gemma2_alternating_window_and_geglu():
    s = load("gemma2_9b")
    assert s.sliding_window == 4096 and s.layer_pattern == ["local", "global"]
    assert s.is_local(0) and not s.is_local(1)
    assert (s.head_dim, s.kv_heads, s.heads, s.hidden) == (256, 8, 16, 3584)
    # GeGLU is expressed as the zoo does: elementwise gelu_tanh + a gated MLP.
    assert (s.activation, s.ffn_gated) == ("gelu_tanh", True)
    assert s.tied_embeddings                       # not in the config: Gemma2Config ties


def test_layer_types_list_is_used_when_present():
    cfg = {**raw("gemma2_9b"), "num_hidden_layers": 4,
           "layer_types": ["sliding_attention", "sliding_attention", "sliding_attention",
                           "full_attention"]}
    s = from_hf_config(cfg)
    assert s.layer_pattern == ["local", "local", "local", "global"]


def test_gpt2():
    s = load("gpt2")
    assert (s.layers, s.hidden, s.heads, s.ffn) == (12, 768, 12, 3072)    # n_inner: 4 x n_embd
    assert (s.activation, s.ffn_gated) == ("gelu_tanh", False)             # gelu_new
    assert (s.position, s.norm, s.bias, s.tied_embeddings) == ("learned", "layernorm", True, True)
    assert (s.vocab, s.max_context) == (50257, 1024)
    assert from_hf_config({**raw("gpt2"), "n_inner": 1000}).ffn == 1000


def test_gemma1_defaults():
    cfg = {"model_type": "gemma", "num_hidden_layers": 28, "hidden_size": 3072,
           "num_attention_heads": 16, "num_key_value_heads": 16, "head_dim": 256,
           "intermediate_size": 24576, "vocab_size": 256000, "max_position_embeddings": 8192,
           "hidden_act": "gelu"}
    s = from_hf_config(cfg, name="Gemma-7B")
    assert s.tied_embeddings and s.ffn_gated and s.activation == "gelu_tanh"
    assert s.sliding_window is None and s.extra_parameters == 0
    assert s.parameter_count == 8_537_680_896     # google/gemma-7b safetensors count


def test_llama_attention_and_mlp_bias():
    cfg = raw("llama3_8b")
    base = from_hf_config(cfg).parameter_count
    attn = from_hf_config({**cfg, "attention_bias": True})
    assert attn.qkv_bias and attn.parameter_count - base == 32 * (4096 + 2 * 1024 + 4096)
    both = from_hf_config({**cfg, "attention_bias": True, "mlp_bias": True})
    assert both.bias
    assert both.parameter_count - base == 32 * (4096 + 2 * 1024 + 4096 + 2 * 14336 + 4096)


# ------------------------------------------------------------------ inputs and provenance
def test_dict_input_matches_file_input():
    cfg = raw("llama3_8b")
    from_dict, from_file = from_hf_config(cfg), load("llama3_8b")
    assert from_dict.parameter_count == from_file.parameter_count
    assert from_dict.source == "Hugging Face config.json: dict"
    assert from_file.source == f"Hugging Face config.json: {CONFIGS / 'llama3_8b.json'}"
    assert from_dict.name == "llama" and from_dict.key == "llama"     # nothing else to go by
    assert cfg == raw("llama3_8b")                                     # input left unchanged


def test_names_and_keys(write):
    s = from_hf_config({**raw("llama3_8b"), "_name_or_path": "meta-llama/Meta-Llama-3-8B"})
    assert (s.name, s.key) == ("meta-llama/Meta-Llama-3-8B", "Meta_Llama_3_8B")
    assert load("llama3_8b").name == "llama3_8b"
    assert load("mixtral_8x7b", name="Mixtral 8x7B").key == "Mixtral_8x7B"
    assert from_hf_config(raw("gpt2"), name="2-layer toy").key == "M_2_layer_toy"
    assert load("gpt2", key="MyGPT").key == "MyGPT"
    # A file called config.json is named after its folder; a folder finds its config.json.
    d = write(raw("gpt2")).parent
    assert from_hf_config(d).name == d.name == from_hf_config(d / "config.json").name


def test_as_of_and_published_parameters():
    s = load("llama3_8b")
    assert s.as_of == "transformers 4.40.0.dev0"
    assert load("gpt2").as_of == "unspecified"                       # no transformers_version
    assert load("gpt2", as_of="2019-02").as_of == "2019-02"
    assert s.published_parameters == s.parameter_count
    assert "published_parameters not given; set to the derived count" in s.notes
    given = load("llama3_8b", published_parameters=8.03e9)
    assert given.published_parameters == 8.03e9 and "not given" not in given.notes


def test_no_network(monkeypatch):
    def refuse(*a, **k):
        raise AssertionError("from_hf_config touched the network")
    monkeypatch.setattr(socket, "socket", refuse)
    monkeypatch.setattr(socket, "create_connection", refuse)
    assert load("mixtral_8x7b").moe.experts == 8


# ------------------------------------------------------------------ errors
def test_unsupported_model_type_lists_supported():
    with pytest.raises(SpecError) as e:
        from_hf_config({**raw("gpt2"), "model_type": "t5"})
    msg = str(e.value)
    assert "'t5' is not supported" in msg
    assert all(t in msg for t in SUPPORTED_MODEL_TYPES)
    with pytest.raises(SpecError, match="missing required field 'model_type'"):
        from_hf_config({"hidden_size": 8})


def test_missing_field_names_key_and_file(write):
    cfg = {k: v for k, v in raw("llama3_8b").items() if k != "num_hidden_layers"}
    path = write(cfg, "broken")
    with pytest.raises(SpecError) as e:
        from_hf_config(path)
    assert "'num_hidden_layers'" in str(e.value) and str(path) in str(e.value)
    gpt = {k: v for k, v in raw("gpt2").items() if k != "n_embd"}
    with pytest.raises(SpecError, match="'hidden_size'.*also accepted: n_embd"):
        from_hf_config(gpt)
    moe = {k: v for k, v in raw("mixtral_8x7b").items() if k != "num_local_experts"}
    with pytest.raises(SpecError, match="'num_local_experts'"):
        from_hf_config(moe)


@pytest.mark.parametrize("field, value", [
    ("hidden_size", "4096"), ("num_key_value_heads", 0), ("num_hidden_layers", 3.5),
    ("vocab_size", True), ("tie_word_embeddings", "yes"), ("sliding_window", -1),
])
def test_wrong_types_name_the_field(write, field, value):
    path = write({**raw("mistral_7b"), field: value}, "bad")
    with pytest.raises(SpecError) as e:
        from_hf_config(path)
    assert f"'{field}'" in str(e.value) and str(path) in str(e.value)


def test_inconsistent_structure_is_a_spec_error_naming_the_file(write):
    path = write({**raw("llama3_8b"), "num_key_value_heads": 5}, "gqa")
    with pytest.raises(SpecError) as e:
        from_hf_config(path)
    msg = str(e.value)
    assert str(path) in msg and "kv_heads (=5) must divide heads (=32)" in msg
    assert "kv_heads <- num_key_value_heads" in msg and "heads <- num_attention_heads" in msg


def test_unreadable_inputs(tmp_path):
    with pytest.raises(DataFileError, match="cannot read"):
        from_hf_config(tmp_path / "nope.json")
    bad = tmp_path / "bad.json"
    bad.write_text('{"model_type": "llama",\n  oops}')
    with pytest.raises(DataFileError, match=r"bad\.json, line 2: not valid JSON"):
        from_hf_config(bad)
    with pytest.raises(SpecError, match="path to a config.json or a parsed dict"):
        from_hf_config(42)
    with pytest.raises(SpecError, match="unsupported activation|not a supported activation"):
        from_hf_config({**raw("llama3_8b"), "hidden_act": "quick_gelu"})


# ------------------------------------------------------------------ end to end
@pytest.mark.parametrize("stem", ZOO)
def test_engine_solves_imported_spec(stem):
    spec = load(stem)
    p = Engine.solve(spec, "H100")
    assert p.latency_s > 0 and p.bottleneck in ("Compute", "Memory")
    # Same structure as the zoo entry, so the same prediction.
    z = Engine.solve(mlsysim.Models.get(ZOO[stem]), "H100")
    assert p.latency_s == pytest.approx(z.latency_s, rel=1e-12)
    assert (p.weights_bytes, p.state_bytes) == (z.weights_bytes, z.state_bytes)


# ------------------------------------------------------------------ more families (issue #13)
# Fixtures are the checkpoints' published config.json files; ``_name_or_path`` (which
# transformers writes when it saves a config it loaded from the Hub) is set to the Hub repo so the
# imported name comes from the config itself. Families without a zoo entry are checked against
# the checkpoint's published count, derived by hand in each test.

def test_qwen3_8b_gqa_qk_norm_and_published_count():
    # Qwen/Qwen3-8B config.json. Per layer: q 4096x4096 + k, v 2 x 4096x1024 + o 4096x4096
    # = 41,943,040; SwiGLU 3 x 4096x12288 = 150,994,944; two RMSNorms 2 x 4096; q_norm, k_norm
    # 2 x 128. 36 layers + final norm 4,096 + untied embeddings 2 x 151936x4096.
    s = load("qwen3_8b")
    assert (s.name, s.key) == ("Qwen/Qwen3-8B", "Qwen3_8B")          # from _name_or_path
    assert (s.layers, s.hidden, s.heads, s.kv_heads, s.head_dim) == (36, 4096, 32, 8, 128)
    assert (s.ffn, s.ffn_gated, s.activation, s.tied_embeddings) == (12288, True, "silu", False)
    assert s.sliding_window is None and not s.qkv_bias and not s.bias     # use_sliding_window false
    assert s.extra_parameters == 36 * 2 * 128 == 9216
    per_layer = 41_943_040 + 150_994_944 + 2 * 4096 + 2 * 128
    assert s.parameter_count == 36 * per_layer + 4096 + 2 * 151936 * 4096 == 8_190_735_360
    # Hugging Face page: 8.19B; Qwen3 technical report (arXiv:2505.09388, Table 1): 8.2B,
    # 6.95B without embeddings.
    assert s.parameter_count == pytest.approx(8.19e9, rel=0.001)
    assert s.parameter_count - 2 * 151936 * 4096 == pytest.approx(6.95e9, rel=0.001)
    with pytest.raises(SpecError) as e:
        from_hf_config({**raw("qwen3_8b"), "num_attention_heads": 31})
    assert "kv_heads (=8) must divide heads (=31)" in str(e.value)


def test_qwen3_attention_bias_adds_qkvo_biases():
    cfg = raw("qwen3_8b")
    s = from_hf_config({**cfg, "attention_bias": True})
    assert s.qkv_bias
    assert s.parameter_count - load("qwen3_8b").parameter_count == 36 * (4096 + 2 * 1024 + 4096)


def test_phi3_mini_fused_qkv_counts_as_llama():
    # microsoft/Phi-3-mini-4k-instruct config.json. Fused qkv_proj (3 x 3072 rows) and
    # gate_up_proj hold the same weights as separate projections: per layer 4 x 3072^2 +
    # 3 x 3072x8192 + 2 x 3072; 32 layers + final norm + untied 2 x 32064x3072.
    s = load("phi3_mini_4k")
    assert (s.name, s.key) == ("microsoft/Phi-3-mini-4k-instruct", "Phi_3_mini_4k_instruct")
    assert (s.layers, s.hidden, s.heads, s.kv_heads, s.ffn) == (32, 3072, 32, 32, 8192)
    assert s.sliding_window == 2047 and s.layer_pattern is None         # every layer
    assert not s.bias and not s.qkv_bias and s.extra_parameters == 0
    per_layer = 4 * 3072**2 + 3 * 3072 * 8192 + 2 * 3072
    assert s.parameter_count == 32 * per_layer + 3072 + 2 * 32064 * 3072 == 3_821_079_552
    assert s.parameter_count == pytest.approx(3.82e9, rel=0.001)      # HF page: 3.82B
    # The same structure written as llama gives the same count (no window there).
    llama = from_hf_config({**raw("phi3_mini_4k"), "model_type": "llama"})
    assert llama.parameter_count == s.parameter_count
    assert from_hf_config({**raw("phi3_mini_4k"), "sliding_window": None}).sliding_window is None


def test_deepseek_v3_mla_moe_matches_zoo_and_paper():
    # deepseek-ai/DeepSeek-V3 config.json; structure identical to the zoo entry (see
    # test_structure_identical_to_zoo), so the counts agree exactly.
    s, zoo = load("deepseek_v3"), mlsysim.Models.DeepSeek_V3
    assert (s.name, s.key) == ("deepseek-ai/DeepSeek-V3", "DeepSeek_V3")
    assert s.architecture == "MoE Transformer" and s.kv_heads is None
    assert (s.mla.q_lora_rank, s.mla.kv_lora_rank, s.mla.qk_nope_head_dim,
            s.mla.qk_rope_head_dim, s.mla.v_head_dim) == (1536, 512, 128, 64, 128)
    assert (s.moe.experts, s.moe.active, s.moe.shared_experts, s.moe.expert_ffn,
            s.moe.dense_layers) == (256, 8, 1, 2048, 3)
    assert s.extra_parameters == 58 * 256 == 14_848     # e_score_correction_bias
    assert s.parameter_count == zoo.parameter_count == 671_026_419_200
    assert s.active_parameter_count == zoo.active_parameter_count
    # arXiv:2412.19437 (abstract): 671B total, 37B activated per token.
    assert s.parameter_count == pytest.approx(671e9, rel=0.001)
    assert s.active_parameter_count == pytest.approx(37e9, rel=0.02)
    assert "multi-token-prediction" in s.notes


DEEPSEEK_V2 = {
    # deepseek-ai/DeepSeek-V2 config.json (structural fields)
    "_name_or_path": "deepseek-ai/DeepSeek-V2", "model_type": "deepseek_v2",
    "architectures": ["DeepseekV2ForCausalLM"], "attention_bias": False, "hidden_act": "silu",
    "hidden_size": 5120, "intermediate_size": 12288, "num_hidden_layers": 60,
    "num_attention_heads": 128, "num_key_value_heads": 128, "q_lora_rank": 1536,
    "kv_lora_rank": 512, "qk_nope_head_dim": 128, "qk_rope_head_dim": 64, "v_head_dim": 128,
    "n_routed_experts": 160, "n_shared_experts": 2, "num_experts_per_tok": 6,
    "moe_intermediate_size": 1536, "first_k_dense_replace": 1, "moe_layer_freq": 1,
    "max_position_embeddings": 163840, "vocab_size": 102400, "tie_word_embeddings": False,
}


def test_deepseek_v2_and_lite():
    s = from_hf_config(DEEPSEEK_V2)
    assert (s.name, s.moe.dense_layers, s.moe.shared_experts) == ("deepseek-ai/DeepSeek-V2", 1, 2)
    assert s.extra_parameters == 0                # V2's router has no correction bias
    # arXiv:2405.04434 (abstract): 236B total, 21B activated (rounded).
    assert s.parameter_count == pytest.approx(236e9, rel=0.01)       # 235.74B
    assert s.active_parameter_count == pytest.approx(21e9, rel=0.02)  # 21.38B
    # deepseek-ai/DeepSeek-V2-Lite config.json: no query latent (q_lora_rank null). 15.7B.
    lite = from_hf_config({**DEEPSEEK_V2, "_name_or_path": "deepseek-ai/DeepSeek-V2-Lite",
                           "hidden_size": 2048, "intermediate_size": 10944,
                           "num_hidden_layers": 27, "num_attention_heads": 16,
                           "num_key_value_heads": 16, "q_lora_rank": None,
                           "n_routed_experts": 64, "moe_intermediate_size": 1408})
    assert lite.mla.q_lora_rank is None
    assert lite.parameter_count == pytest.approx(15.7e9, rel=0.01)   # 15.71B


def test_qwen2_moe_shared_expert():
    # Qwen/Qwen1.5-MoE-A2.7B config.json: 60 routed experts (top-4) of 1408 and a shared expert
    # of 5632 = 4 x 1408, written as 4 shared experts of the routed width (same weights).
    s = load("qwen1_5_moe_a2_7b")
    assert s.name == "Qwen/Qwen1.5-MoE-A2.7B" and s.qkv_bias
    assert (s.moe.experts, s.moe.active, s.moe.expert_ffn, s.moe.shared_experts,
            s.moe.dense_layers) == (60, 4, 1408, 4, 0)
    assert s.extra_parameters == 24 * 2048                     # shared_expert_gate per layer
    expert = 3 * 2048 * 1408
    attn = 4 * 2048**2 + 3 * 2048                              # q/k/v biases
    per_layer = attn + (60 + 4) * expert + 2048 * 60 + 2048 + 2 * 2048
    emb = 2 * 151936 * 2048
    assert s.parameter_count == 24 * per_layer + 2048 + emb == 14_315_784_192
    active = 24 * (attn + (4 + 4) * expert + 2048 * 60 + 2048 + 2 * 2048) + 2048 + emb
    assert s.active_parameter_count == active == 2_689_173_504
    # HF page 14.3B; the name's A2.7B is the activated count.
    assert s.parameter_count == pytest.approx(14.3e9, rel=0.01)
    assert s.active_parameter_count == pytest.approx(2.7e9, rel=0.01)
    with pytest.raises(SpecError, match="'shared_expert_intermediate_size'.*multiple"):
        from_hf_config({**raw("qwen1_5_moe_a2_7b"), "shared_expert_intermediate_size": 5000})
    with pytest.raises(SpecError, match="'mlp_only_layers'"):
        from_hf_config({**raw("qwen1_5_moe_a2_7b"), "mlp_only_layers": [3]})
    lead = from_hf_config({**raw("qwen1_5_moe_a2_7b"), "mlp_only_layers": [0, 1]})
    assert lead.moe.dense_layers == 2 and lead.extra_parameters == 22 * 2048


def test_qwen3_moe():
    # Qwen/Qwen3-30B-A3B config.json (structural fields): 128 experts of 768, top-8, no shared
    # expert; q_norm/k_norm as Qwen3. Model card: 30.5B total, 3.3B activated.
    cfg = {"_name_or_path": "Qwen/Qwen3-30B-A3B", "model_type": "qwen3_moe",
           "hidden_size": 2048, "intermediate_size": 6144, "num_hidden_layers": 48,
           "num_attention_heads": 32, "num_key_value_heads": 4, "head_dim": 128,
           "moe_intermediate_size": 768, "num_experts": 128, "num_experts_per_tok": 8,
           "decoder_sparse_step": 1, "mlp_only_layers": [], "max_position_embeddings": 40960,
           "vocab_size": 151936, "tie_word_embeddings": False, "use_sliding_window": False,
           "hidden_act": "silu"}
    s = from_hf_config(cfg)
    assert (s.moe.experts, s.moe.active, s.moe.shared_experts) == (128, 8, 0)
    assert not s.qkv_bias and s.extra_parameters == 48 * 2 * 128
    assert s.parameter_count == pytest.approx(30.5e9, rel=0.01)      # 30.53B
    assert s.active_parameter_count == pytest.approx(3.3e9, rel=0.02)  # 3.35B


def test_bert_encoder_matches_zoo():
    # google-bert/bert-base-uncased config.json, counted as BertModel (encoder + pooler) like
    # the zoo entry: 109,482,240 weights.
    s, zoo = load("bert_base_uncased"), mlsysim.Models.BERT_Base
    assert s.name == "google-bert/bert-base-uncased" and s.kind == "encoder"
    assert (s.position, s.norm, s.bias, s.ffn_gated, s.activation) == \
        ("learned", "layernorm", True, False, "gelu")
    assert s.extra_parameters == zoo.extra_parameters == 2 * 768 + 768 * 768 + 768
    assert s.parameter_count == zoo.parameter_count == 109_482_240
    assert s.macs_per_sample == zoo.macs_per_sample
    a, b = s.model_dump(), zoo.model_dump()
    # BertConfig ties the MLM decoder to the embeddings; the zoo leaves the default. An encoder
    # has no LM head in the count either way.
    assert {k: (a[k], b[k]) for k in a if k not in NOT_STRUCTURE and a[k] != b[k]} == \
        {"tied_embeddings": (True, False)}
    # google-bert/bert-large-uncased config.json differs only in these fields.
    large = from_hf_config({**raw("bert_base_uncased"), "hidden_size": 1024,
                            "intermediate_size": 4096, "num_attention_heads": 16,
                            "num_hidden_layers": 24,
                            "_name_or_path": "google-bert/bert-large-uncased"})
    assert large.parameter_count == mlsysim.Models.BERT_Large.parameter_count == 335_141_888
    with pytest.raises(SpecError, match="'position_embedding_type'"):
        from_hf_config({**raw("bert_base_uncased"), "position_embedding_type": "relative_key"})


@pytest.mark.parametrize("stem, field", [
    ("qwen3_8b", "intermediate_size"), ("phi3_mini_4k", "num_attention_heads"),
    ("deepseek_v3", "kv_lora_rank"), ("deepseek_v3", "n_routed_experts"),
    ("deepseek_v3", "q_lora_rank"), ("deepseek_v3", "n_shared_experts"),
    ("qwen1_5_moe_a2_7b", "num_experts"), ("qwen1_5_moe_a2_7b", "moe_intermediate_size"),
    ("bert_base_uncased", "vocab_size"),
    ("whisper_large_v3", "d_model"), ("whisper_large_v3", "encoder_layers"),
    ("whisper_large_v3", "decoder_layers"), ("whisper_large_v3", "encoder_attention_heads"),
    ("whisper_large_v3", "decoder_ffn_dim"), ("whisper_large_v3", "max_source_positions"),
    ("whisper_large_v3", "max_target_positions"), ("whisper_large_v3", "num_mel_bins"),
    ("whisper_large_v3", "vocab_size"),
    ("mamba_2_8b_hf", "hidden_size"), ("mamba_2_8b_hf", "num_hidden_layers"),
    ("mamba_2_8b_hf", "state_size"), ("mamba_2_8b_hf", "expand"),
    ("mamba_2_8b_hf", "conv_kernel"), ("mamba_2_8b_hf", "vocab_size"),
])
def test_new_families_missing_field_names_field_and_model_type(stem, field):
    cfg = {k: v for k, v in raw(stem).items() if k != field}
    with pytest.raises(SpecError) as e:
        from_hf_config(cfg)
    msg = str(e.value)
    assert f"missing required field '{field}'" in msg and f"'{cfg['model_type']}'" in msg


def test_deepseek_unexpressible_fields_are_errors():
    with pytest.raises(SpecError, match="'moe_layer_freq'"):
        from_hf_config({**raw("deepseek_v3"), "moe_layer_freq": 2})
    with pytest.raises(SpecError, match="'attention_bias'"):
        from_hf_config({**raw("deepseek_v3"), "attention_bias": True})


def test_supported_model_types_listed_in_docstring():
    import mlsysim.zoo.hf as hf
    assert set(SUPPORTED_MODEL_TYPES) >= {"qwen3", "qwen3_moe", "phi3", "deepseek_v2",
                                          "deepseek_v3", "qwen2_moe", "bert", "whisper",
                                          "mamba"}
    assert all(t in hf.__doc__ for t in SUPPORTED_MODEL_TYPES)


@pytest.mark.parametrize("stem", ["qwen3_8b", "phi3_mini_4k", "qwen1_5_moe_a2_7b",
                                  "bert_base_uncased", "whisper_large_v3", "mamba_2_8b_hf"])
def test_engine_solves_new_families(stem, write):
    spec = load(stem)
    p = Engine.solve(spec, "H100")
    assert p.latency_s > 0 and p.bottleneck in ("Compute", "Memory")
    # A config.json in a folder of another name is still named from the config's own field.
    d = write(raw(stem)).parent
    assert from_hf_config(d).name == raw(stem)["_name_or_path"] != d.name


def test_bert_solves_as_the_zoo_entry():
    p, z = Engine.solve(load("bert_base_uncased"), "H100"), Engine.solve(
        mlsysim.Models.BERT_Base, "H100")
    assert p.latency_s == pytest.approx(z.latency_s, rel=1e-12)
    assert p.weights_bytes == z.weights_bytes


# ------------------------------------------------------------------ encoder-decoder and SSM
# whisper_large_v3.json: https://huggingface.co/openai/whisper-large-v3/blob/main/config.json,
# its fields as printed by WhisperConfig.from_pretrained("openai/whisper-large-v3") (snapshot
# 06f233fe06e710322aca913c1bc4249a0d71fce1) in a public training script; the layout agrees with
# the file (num_mel_bins is its line 42). transformers_version is left out: that copy shows the
# printing environment's version, not the file's.
# mamba_2_8b_hf.json: https://huggingface.co/state-spaces/mamba-2.8b-hf/blob/main/config.json,
# as reproduced in a public fork of state-spaces/mamba (README, "models/mamba_2.8b_hf_config.json"),
# with _name_or_path added as for the other fixtures.

def test_whisper_large_v3_matches_zoo_exactly():
    """openai/whisper-large-v3 (https://huggingface.co/openai/whisper-large-v3/blob/main/
    config.json) imports to the zoo's Whisper_Large_v3 field for field.

    Hand count, d = 1280, ffn = 5120, all linear layers with bias (as the zoo entry):
    attention 4 d^2 + 4 d = 6,558,720; MLP 2 x d x ffn + ffn + d = 13,113,600; LayerNorm 2 d.
    Encoder: 32 x (attn + MLP + 2 LN) + final LN + 1500 x d positions = 631,600,640.
    Decoder: 32 x (2 attn + MLP + 3 LN) + final LN = 839,641,600.
    Embeddings 51866 x d + 448 x d positions (proj_out tied) = 66,961,920.
    Conv stem: 128 x d x 3 + d and d x d x 3 + d = 5,409,280."""
    s, zoo = load("whisper_large_v3"), mlsysim.Models.Whisper_Large_v3
    assert (s.name, s.key) == ("openai/whisper-large-v3", "whisper_large_v3")
    assert (s.kind, s.architecture, s.group) == ("encoder_decoder", "Transformer", "Speech")
    assert (s.layers, s.encoder_layers, s.encoder_tokens) == (32, 32, 1500)
    assert (s.hidden, s.heads, s.kv_heads, s.ffn, s.ffn_gated, s.activation) == \
        (1280, 20, None, 5120, False, "gelu")
    assert (s.vocab, s.max_context, s.tied_embeddings) == (51866, 448, True)
    assert (s.position, s.norm, s.bias) == ("learned", "layernorm", True)
    conv1, _, conv2, _ = s.prefix_layers
    assert (conv1.cin, conv1.cout, conv1.k, conv1.out, conv1.stride) == (128, 1280, [3], [3000], 1)
    assert (conv2.cin, conv2.cout, conv2.k, conv2.out, conv2.stride) == (1280, 1280, [3], [1500], 2)
    a, b = s.model_dump(), zoo.model_dump()
    assert {k: (a[k], b[k]) for k in a if k not in NOT_STRUCTURE and a[k] != b[k]} == {}
    enc = 32 * (6_558_720 + 13_113_600 + 2 * 2560) + 2560 + 1500 * 1280
    dec = 32 * (2 * 6_558_720 + 13_113_600 + 3 * 2560) + 2560
    emb = 51866 * 1280 + 448 * 1280
    stem = 128 * 1280 * 3 + 1280 + 1280 * 1280 * 3 + 1280
    assert (enc, dec, emb, stem) == (631_600_640, 839_641_600, 66_961_920, 5_409_280)
    assert s.parameter_count == zoo.parameter_count == enc + dec + emb + stem == 1_543_613_440
    assert s.macs_per_sample == zoo.macs_per_sample
    # The checkpoint has 1,543,490,560: k_proj has no bias, 96 attention blocks x 1280 = 122,880
    # fewer than `bias: true` counts (0.008 %). The zoo entry counts them too; so does the import.
    assert s.parameter_count - 96 * 1280 == 1_543_490_560
    assert "k_proj has no bias" in s.notes
    # arXiv:2212.04356 Table 1: large, 1550M (rounded).
    assert s.parameter_count == pytest.approx(1.55e9, rel=0.005)
    assert load("whisper_large_v3", published_parameters=1.55e9).published_parameters == 1.55e9


def test_whisper_decoder_depth_turbo_and_distil():
    # openai/whisper-large-v3-turbo is large-v3 with 4 decoder layers (809M published);
    # distil-whisper/distil-large-v3 keeps 2 (756M published, arXiv:2311.00430). The encoder
    # and decoder depths are separate fields.
    dec_layer = 2 * 6_558_720 + 13_113_600 + 3 * 2560        # 26,238,720 (see above)
    turbo = from_hf_config({**raw("whisper_large_v3"), "decoder_layers": 4,
                            "_name_or_path": "openai/whisper-large-v3-turbo"})
    assert (turbo.layers, turbo.encoder_layers) == (4, 32)
    assert turbo.parameter_count == 1_543_613_440 - 28 * dec_layer == 808_929_280
    assert turbo.parameter_count == pytest.approx(809e6, rel=0.001)
    distil = from_hf_config({**raw("whisper_large_v3"), "decoder_layers": 2})
    assert distil.parameter_count == 1_543_613_440 - 30 * dec_layer == 756_451_840
    assert distil.parameter_count == pytest.approx(756e6, rel=0.001)
    # large-v2 layout: 80 mel bins into conv1, a 51,865-token vocabulary.
    v2 = from_hf_config({**raw("whisper_large_v3"), "num_mel_bins": 80, "vocab_size": 51865})
    assert v2.prefix_layers[0].cin == 80
    assert load("whisper_large_v3").parameter_count - v2.parameter_count == \
        48 * 1280 * 3 + 1280 == 185_600
    # An untied proj_out adds vocab x d.
    untied = from_hf_config({**raw("whisper_large_v3"), "tie_word_embeddings": False})
    assert untied.parameter_count - 1_543_613_440 == 51866 * 1280


@pytest.mark.parametrize("enc, dec, value", [
    ("encoder_ffn_dim", "decoder_ffn_dim", 4096),
    ("encoder_attention_heads", "decoder_attention_heads", 16),
])
def test_whisper_mismatched_encoder_decoder_is_refused(write, enc, dec, value):
    # The schema has one attention shape and one MLP width for the encoder and the decoder.
    path = write({**raw("whisper_large_v3"), dec: value}, "mismatch")
    with pytest.raises(SpecError) as e:
        from_hf_config(path)
    msg = str(e.value)
    assert f"'{enc}' (=" in msg and f"'{dec}' (={value})" in msg and str(path) in msg
    assert "not supported for model_type 'whisper'" in msg


def test_whisper_bad_values_name_the_config_key():
    with pytest.raises(SpecError, match="'d_model' must be a positive integer"):
        from_hf_config({**raw("whisper_large_v3"), "d_model": "1280"})
    with pytest.raises(SpecError, match="'activation_function'"):
        from_hf_config({**raw("whisper_large_v3"), "activation_function": "swiglu"})
    with pytest.raises(SpecError, match="'encoder_layers' = 20,000 exceeds"):
        from_hf_config({**raw("whisper_large_v3"), "encoder_layers": 20_000})
    with pytest.raises(SpecError) as e:      # the schema's check, in the config's names
        from_hf_config({**raw("whisper_large_v3"), "d_model": 1290})
    msg = str(e.value)
    assert "heads (=20) must divide hidden (=1290)" in msg
    assert "hidden <- d_model" in msg and "heads <- decoder_attention_heads" in msg


def test_mamba_2_8b_matches_zoo_exactly():
    """state-spaces/mamba-2.8b-hf (https://huggingface.co/state-spaces/mamba-2.8b-hf/blob/main/
    config.json) imports to the zoo's Mamba_2_8B field for field.

    Hand count, d = 2560, d_inner = expand x d = 5120, N = 16, R = time_step_rank = 160, conv 4:
    in_proj d x 2 d_inner = 26,214,400; conv1d 4 x d_inner + d_inner = 25,600; x_proj
    d_inner x (R + 2N) = 983,040; dt_proj R x d_inner + d_inner = 824,320; A_log d_inner x N =
    81,920; D 5,120; out_proj d_inner x d = 13,107,200; RMSNorm 2,560: 41,244,160 a layer.
    64 layers + final norm 2,560 + embedding 50280 x d (lm_head tied) = 2,768,345,600."""
    s, zoo = load("mamba_2_8b_hf"), mlsysim.Models.Mamba_2_8B
    assert isinstance(s, SSMSpec)
    assert (s.name, s.key) == ("state-spaces/mamba-2.8b-hf", "mamba_2_8b_hf")
    assert (s.architecture, s.group) == ("SSM (Mamba)", "StateSpace")
    assert (s.layers, s.d_model, s.d_state, s.expand, s.d_conv) == (64, 2560, 16, 2, 4)
    assert (s.d_inner, s.rank, s.dt_rank) == (5120, 160, None)     # 160 = ceil(2560 / 16)
    assert (s.vocab, s.tied_embeddings, s.extra_parameters) == (50280, True, 0)
    a, b = s.model_dump(), zoo.model_dump()
    assert {k: (a[k], b[k]) for k in a if k not in NOT_STRUCTURE and a[k] != b[k]} == {}
    per_layer = (26_214_400 + 25_600 + 983_040 + 824_320 + 81_920 + 5_120 + 13_107_200
                 + 2_560)
    assert s.layer_params == per_layer == 41_244_160
    assert s.parameter_count == zoo.parameter_count == \
        64 * per_layer + 2560 + 50280 * 2560 == 2_768_345_600
    assert s.macs_per_sample == zoo.macs_per_sample
    # arXiv:2312.00752: 2.8B (rounded; the derived count is 1.1 % under).
    assert s.parameter_count == pytest.approx(2.8e9, rel=0.012)
    assert s.as_of == "transformers 4.39.0.dev0"


def test_mamba_time_step_rank_biases_and_refusals():
    cfg = raw("mamba_2_8b_hf")
    base = load("mamba_2_8b_hf").parameter_count
    assert from_hf_config({**cfg, "time_step_rank": "auto"}).dt_rank is None
    narrow = from_hf_config({**cfg, "time_step_rank": 128})
    assert narrow.dt_rank == 128
    assert base - narrow.parameter_count == 64 * 32 * (5120 + 5120)     # x_proj and dt_proj
    biased = from_hf_config({**cfg, "use_bias": True})
    assert biased.extra_parameters == 64 * (2 * 5120 + 2560)            # in_proj, out_proj
    assert biased.parameter_count - base == 64 * (2 * 5120 + 2560)
    with pytest.raises(SpecError, match="'use_conv_bias' = false is not supported"):
        from_hf_config({**cfg, "use_conv_bias": False})
    with pytest.raises(SpecError, match=r"'intermediate_size' \(=4096\) must equal 'expand'"):
        from_hf_config({**cfg, "intermediate_size": 4096})
    with pytest.raises(SpecError, match="'expand' must be a positive integer"):
        from_hf_config({**cfg, "expand": 1.5})
    with pytest.raises(SpecError, match="'time_step_rank' must be a positive integer"):
        from_hf_config({**cfg, "time_step_rank": "wide"})
    # n_layer is a leftover key transformers ignores: num_hidden_layers is required.
    with pytest.raises(SpecError, match="missing required field 'num_hidden_layers'"):
        from_hf_config({k: v for k, v in cfg.items() if k != "num_hidden_layers"})


@pytest.mark.parametrize("stem", ["whisper_large_v3", "mamba_2_8b_hf"])
@pytest.mark.parametrize("phase", ["decode", "prefill"])
def test_encoder_decoder_and_ssm_solve_as_the_zoo_entries(stem, phase):
    # Decode is the natural (default) phase of both; prefill runs the prompt (and for Whisper
    # the encoder's fixed 1,500 frames) too.
    zoo = {"whisper_large_v3": "Whisper_Large_v3", "mamba_2_8b_hf": "Mamba_2_8B"}[stem]
    p = Engine.solve(load(stem), "H100", phase=phase)
    z = Engine.solve(mlsysim.Models.get(zoo), "H100", phase=phase)
    assert p.latency_s > 0
    assert p.latency_s == pytest.approx(z.latency_s, rel=1e-9)
    assert (p.weights_bytes, p.state_bytes, p.bottleneck) == \
        (z.weights_bytes, z.state_bytes, z.bottleneck)
