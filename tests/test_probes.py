"""Held-out probes of bad input (issue #12 section 4): each is a typed error naming the file,
line or field -- never a bare traceback, a hang or a silent accept."""

from __future__ import annotations

import json
import time

import numpy as np
import pytest

import mlsysim
from mlsysim.core.device_calibration import calibrate_device
from mlsysim.core.engine import SingleNodeModel
from mlsysim.errors import DataFileError, SpecError, ValidationError
from mlsysim.specs.model import MAX_LAYERS, MAX_WIDTH
from mlsysim.zoo import load_hardware, load_model
from mlsysim.zoo.hf import _period, from_hf_config

LLAMA_YAML = """\
- key: MyLlama
  name: My Llama
  architecture: Transformer
  group: Language
  family: transformer
  kind: decoder
  layers: 32
  hidden: 4096
  heads: 32
  ffn: 11008
  ffn_gated: true
  activation: silu
  vocab: 32000
  max_context: 2048
  published_parameters: 6.738e9
  source: test
  as_of: "2023"
"""

HF = {"model_type": "llama", "num_hidden_layers": 32, "hidden_size": 4096,
      "num_attention_heads": 32, "intermediate_size": 11008, "vocab_size": 32000,
      "max_position_embeddings": 2048}

CSV_HEADER = "kind,precision,m,n,k,value,unit\n"


@pytest.fixture
def h100():
    return mlsysim.Hardware.H100


def _write(tmp_path, name, content):
    p = tmp_path / name
    if isinstance(content, bytes):
        p.write_bytes(content)
    else:
        p.write_text(content, encoding="utf-8")
    return p


def test_the_good_model_file_loads(tmp_path):
    spec = load_model(_write(tmp_path, "ok.yaml", LLAMA_YAML))
    assert spec.parameter_count == 6_738_415_616


# --- load_hardware / load_model / from_hf_config ------------------------------------------
@pytest.mark.parametrize("loader", [load_model, load_hardware])
def test_binary_yaml_is_a_data_file_error_naming_the_file(tmp_path, loader):
    p = _write(tmp_path, "bin.yaml", b"\xff\xfe\x00\x01\x89PNG")
    with pytest.raises(DataFileError, match=r"bin\.yaml, line 1: not UTF-8"):
        loader(p)


def test_binary_hf_config_is_a_data_file_error(tmp_path):
    p = _write(tmp_path, "config.json", b"\x89PNG\r\n\x1a\n\x00\x00")
    with pytest.raises(DataFileError, match=r"config\.json, line 1: not UTF-8"):
        from_hf_config(p)


def test_latin1_yaml_names_the_line_of_the_bad_byte(tmp_path):
    p = _write(tmp_path, "latin.yaml", LLAMA_YAML.replace("My Llama", "Mon Lléma")
               .encode("latin-1"))
    with pytest.raises(DataFileError, match=r"latin\.yaml, line 2: not UTF-8 .*0xe9"):
        load_model(p)


def test_nul_bytes_are_refused_as_binary(tmp_path):
    p = _write(tmp_path, "nul.yaml", LLAMA_YAML + "\x00\n")
    with pytest.raises(DataFileError, match=r"nul\.yaml, line 18: contains a NUL byte"):
        load_model(p)


def test_duplicate_yaml_key_names_the_key_and_both_lines(tmp_path):
    p = _write(tmp_path, "dup.yaml", LLAMA_YAML + "  layers: 40\n")
    with pytest.raises(DataFileError,
                       match=r"dup\.yaml, line 18: .*duplicate key 'layers' \(first at line 7\)"):
        load_model(p)


def test_duplicate_yaml_key_in_hardware(tmp_path):
    p = _write(tmp_path, "hw.yaml", "- key: A\n  name: x\n  key: B\n")
    with pytest.raises(DataFileError, match=r"hw\.yaml, line 3: .*duplicate key 'key'"):
        load_hardware(p)


def test_duplicate_keys_in_different_entries_are_fine(tmp_path):
    two = LLAMA_YAML + LLAMA_YAML.replace("MyLlama", "MyLlama2")
    assert len(load_model(_write(tmp_path, "two.yaml", two))) == 2


def test_parse_cache_key_changes_with_the_parse_version(monkeypatch):
    from mlsysim import zoo
    before = zoo._parsed_cache("a: 1\n")
    monkeypatch.setattr(zoo, "_PARSE_VERSION", zoo._PARSE_VERSION + "x")
    assert zoo._parsed_cache("a: 1\n") != before


def test_duplicate_json_key_names_the_key_and_lines(tmp_path):
    text = json.dumps(HF, indent=1)[:-2] + ',\n "num_hidden_layers": 40\n}'
    p = _write(tmp_path, "config.json", text)
    with pytest.raises(DataFileError,
                       match=r"config\.json, lines 3, 9: duplicate key 'num_hidden_layers'"):
        from_hf_config(p)


@pytest.mark.parametrize("value", ["true", '"32"', "32.0"])
def test_a_non_integer_count_is_a_spec_error_naming_the_field(tmp_path, value):
    p = _write(tmp_path, "bool.yaml", LLAMA_YAML.replace("layers: 32", f"layers: {value}"))
    with pytest.raises(SpecError, match=r"bool\.yaml entry MyLlama.*\n  layers: must be a "
                                        r"valid integer"):
        load_model(p)


def test_true_as_a_nested_count_is_refused(tmp_path):
    text = LLAMA_YAML + "  moe: {experts: 8, active: true, expert_ffn: 11008}\n"
    with pytest.raises(SpecError, match=r"moe\.active: must be a valid integer"):
        load_model(_write(tmp_path, "moe.yaml", text))


def test_true_as_an_hf_count_is_refused(tmp_path):
    p = _write(tmp_path, "config.json", json.dumps({**HF, "num_hidden_layers": True}))
    with pytest.raises(SpecError, match="'num_hidden_layers' must be a positive integer"):
        from_hf_config(p)


@pytest.mark.parametrize("loader, field", [(load_model, "path"), (load_hardware, "path"),
                                           (from_hf_config, "config")])
@pytest.mark.parametrize("bad", [None, 3, b"model.yaml"])
def test_a_non_path_is_a_validation_error_naming_the_argument(loader, field, bad):
    with pytest.raises(ValidationError, match=rf"'{field}' parameter of {loader.__name__}"):
        loader(bad)


def test_deeply_nested_json_is_a_data_file_error(tmp_path):
    p = _write(tmp_path, "config.json", '{"a":' * 100_000 + "1" + "}" * 100_000)
    with pytest.raises(DataFileError, match=r"config\.json: .*nested too deeply"):
        from_hf_config(p)


def test_deeply_nested_yaml_is_a_data_file_error(tmp_path):
    p = _write(tmp_path, "deep.yaml", "[" * 100_000 + "]" * 100_000)
    with pytest.raises(DataFileError, match=r"deep\.yaml"):
        load_model(p)


def test_a_billion_layers_is_refused_at_once(tmp_path):
    p = _write(tmp_path, "huge.yaml", LLAMA_YAML.replace("layers: 32", "layers: 1000000000"))
    t = time.perf_counter()
    with pytest.raises(SpecError, match=rf"layers: must be less than or equal to "
                                        rf"{MAX_LAYERS}"):
        load_model(p)
    assert time.perf_counter() - t < 1


@pytest.mark.parametrize("model_type", ["llama", "gemma2", "qwen2"])
def test_a_billion_hf_layers_is_refused_before_any_per_layer_list(model_type):
    cfg = {**HF, "model_type": model_type, "num_hidden_layers": 10**9,
           "use_sliding_window": True, "sliding_window": 4096}
    t = time.perf_counter()
    with pytest.raises(SpecError, match=r"'num_hidden_layers' = 1,000,000,000 exceeds .* "
                                        r"10,000 layers"):
        from_hf_config(cfg)
    assert time.perf_counter() - t < 1


def test_an_absurd_width_is_refused(tmp_path):
    p = _write(tmp_path, "wide.yaml", LLAMA_YAML.replace("hidden: 4096", "hidden: 4096000000"))
    with pytest.raises(SpecError, match=rf"hidden: must be less than or equal to {MAX_WIDTH}"):
        load_model(p)


def test_the_largest_allowed_depth_stays_fast():
    kinds = ["sliding_attention"] * (MAX_LAYERS - 1) + ["full_attention"]
    cfg = {**HF, "model_type": "gemma2", "num_hidden_layers": MAX_LAYERS, "layer_types": kinds}
    t = time.perf_counter()
    spec = from_hf_config(cfg)
    assert spec.parameter_count > 0 and len(spec.layer_pattern) == MAX_LAYERS
    assert time.perf_counter() - t < 2          # was quadratic in the layer count


@pytest.mark.parametrize("seq, period", [([], 0), (["a"], 1), (["a", "b"] * 5, 2),
                                         (["a", "b", "a"], 2), (["a", "a", "b"], 3),
                                         (["l", "l", "g"] * 4 + ["l"], 3)])
def test_period_is_the_shortest_repeating_prefix(seq, period):
    assert _period(seq) == period
    assert all(seq[i] == seq[i % period] for i in range(len(seq)))


def test_published_parameters_far_from_the_structure_is_a_spec_error(tmp_path):
    p = _write(tmp_path, "pub.yaml", LLAMA_YAML.replace("6.738e9", "70e9"))
    with pytest.raises(SpecError, match=r"published_parameters \(70,000,000,000\) .* "
                                        r"\(6,738,415,616\) differ by 90\.4%, more than 10%"):
        load_model(p)


def test_published_parameters_within_ten_percent_is_accepted(tmp_path):
    p = _write(tmp_path, "pub.yaml", LLAMA_YAML.replace("6.738e9", "7.2e9"))   # 6.4 % off
    assert load_model(p).published_parameters == 7.2e9


def test_published_parameters_checked_in_from_hf_config():
    with pytest.raises(SpecError, match=r"published_parameters \(70,000,000,000\)"):
        from_hf_config(HF, published_parameters=70e9)
    assert from_hf_config(HF, published_parameters=6.74e9).published_parameters == 6.74e9


# --- mlsysim calibrate --------------------------------------------------------------------
def test_calibrate_good_file(tmp_path, h100):
    p = _write(tmp_path, "m.csv", CSV_HEADER + "gemm,bf16,4096,4096,4096,612.3,TFLOP/s\n")
    assert 0 < calibrate_device(p, h100).hardware.efficiency.gemm_max < 1


def test_calibrate_binary_file(tmp_path, h100):
    p = _write(tmp_path, "m.csv", b"\xff\xfe\x00k\x00i\x00n\x00d")
    with pytest.raises(DataFileError, match=r"m\.csv, line 1: not UTF-8"):
        calibrate_device(p, h100)


def test_calibrate_non_utf8_file_names_the_line(tmp_path, h100):
    p = _write(tmp_path, "m.csv", (CSV_HEADER + "gemm,bf16,4096,4096,4096,612.3,TFLOP/s\n"
                                   + "launch,,,,,4.5,\xb5s\n").encode("latin-1"))
    with pytest.raises(DataFileError, match=r"m\.csv, line 3: not UTF-8"):
        calibrate_device(p, h100)


@pytest.mark.parametrize("size", ["-4096", "0", "4096.5", "nan", "inf"])
def test_calibrate_bad_gemm_size(tmp_path, h100, size):
    p = _write(tmp_path, "m.csv", CSV_HEADER + "gemm,bf16,4096,4096,4096,600,TFLOP/s\n"
               + f"gemm,bf16,4096,{size},4096,600,TFLOP/s\n")
    with pytest.raises(DataFileError, match=r"m\.csv, line 3: GEMM size n must be a positive "
                                            r"whole number"):
        calibrate_device(p, h100)


def test_calibrate_partial_gemm_shape(tmp_path, h100):
    p = _write(tmp_path, "m.csv", CSV_HEADER + "gemm,bf16,4096,,4096,600,TFLOP/s\n")
    with pytest.raises(DataFileError, match=r"m\.csv, line 2: give all of m, n and k"):
        calibrate_device(p, h100)


@pytest.mark.parametrize("row, peak", [
    ("gemm,bf16,4096,4096,4096,612300,TFLOP/s", "peak of 989.5 TFLOP/s"),
    ("attention,bf16,,,,410000,TFLOP/s", "peak of 989.5 TFLOP/s"),
    ("memcpy,,,,,2850000,GB/s", "bandwidth of 3350 GB/s"),
])
def test_calibrate_above_the_datasheet_peak_is_refused(tmp_path, h100, row, peak):
    p = _write(tmp_path, "m.csv", CSV_HEADER + row + "\n")
    with pytest.raises(DataFileError, match=rf"m\.csv, line 2: .*exceeds .*{peak}"):
        calibrate_device(p, h100)


def test_calibrate_non_path(h100):
    with pytest.raises(ValidationError, match="'measurements' parameter"):
        calibrate_device(None, h100)


# --- Engine.sweep -------------------------------------------------------------------------
@pytest.fixture(scope="module")
def sweep_args():
    return mlsysim.Models.Llama3_8B, mlsysim.Hardware.H100


@pytest.mark.parametrize("bad", [["8"], "8", [True], True, [True, 8], np.array([True]),
                                 [10**400], 10**400, [2**60], [b"8"], [1.5], [0], []])
def test_sweep_refuses_non_numbers_and_overflowing_ints(sweep_args, bad):
    with pytest.raises(ValidationError, match=r"'batch_sizes' parameter of Engine\.sweep"):
        SingleNodeModel().sweep(*sweep_args, batch_sizes=bad)


@pytest.mark.parametrize("good", [[1, 8], (1, 8), np.array([1, 8], dtype=np.int32),
                                  np.array([1.0, 8.0]), [np.int64(1), 8]])
def test_sweep_accepts_numbers(sweep_args, good):
    out = SingleNodeModel().sweep(*sweep_args, batch_sizes=good)
    assert out["batch_size"].tolist() == [1.0, 8.0]
