"""Every zoo entry loads, carries provenance, and its derived size matches the published one."""

import math

import pytest

import mlsysim
from mlsysim.errors import UnknownNameError
from mlsysim.specs.model import LayeredSpec

MODELS = list(mlsysim.Models)
HARDWARE = list(mlsysim.Hardware)


def test_zoo_sizes():
    assert len(HARDWARE) >= 35
    assert len(MODELS) >= 30


@pytest.mark.parametrize("spec", MODELS + HARDWARE, ids=lambda s: s.key)
def test_entry_has_provenance(spec):
    assert spec.source.strip() and spec.as_of.strip()
    if spec.estimate:
        assert spec.notes


@pytest.mark.parametrize("model", MODELS, ids=lambda m: m.key)
def test_derived_parameters_match_published_within_2_percent(model):
    assert model.parameter_count == pytest.approx(model.published_parameters, rel=0.02)


@pytest.mark.parametrize("model", [m for m in MODELS if m.published_macs], ids=lambda m: m.key)
def test_derived_macs_match_published_within_6_percent(model):
    assert model.macs_per_sample == pytest.approx(model.published_macs, rel=0.06)


def test_resnet50_tutorial_figures():
    m = mlsysim.Models.ResNet50
    assert (m.name, m.architecture) == ("ResNet-50", "CNN")
    # torchvision resnet50: 25,557,032 parameters; 4.09 GMAC per 224x224 image.
    assert m.parameters.to("Mparam").magnitude == pytest.approx(25.557, rel=1e-3)
    assert m.inference_flops.to("GMAC").magnitude == pytest.approx(4.1, rel=0.01)


def test_a100_tutorial_figures():
    hw = mlsysim.Hardware.Cloud.A100
    assert hw.compute.peak_flops.to("TFLOPs/s").magnitude == pytest.approx(312)
    assert hw.memory.bandwidth.to("TB/s").magnitude == pytest.approx(2.039)
    # "80 GB" is 80 GiB: nvidia-smi reports 81920 MiB = 80 x 2^30 B (85.9 GB decimal).
    assert hw.memory.capacity.to("GiB").magnitude == pytest.approx(80)


def test_h100_ridge_right_of_a100():
    a, h = mlsysim.Hardware.Cloud.A100, mlsysim.Hardware.Cloud.H100
    # 312/2.039 = 153 flop/byte; 989.5/3.35 = 295 flop/byte.
    assert a.ridge_point().magnitude == pytest.approx(153.0, rel=1e-3)
    assert h.ridge_point().magnitude == pytest.approx(295.4, rel=1e-3)


@pytest.mark.parametrize("group", ["Cloud", "Edge", "Mobile", "Tiny"])
def test_hardware_groups_populated(group):
    assert len(getattr(mlsysim.Hardware, group)) >= 3


@pytest.mark.parametrize("group", ["Vision", "Language", "StateSpace", "Recommendation",
                                   "GenerativeVision", "Tiny"])
def test_model_groups_populated(group):
    assert len(getattr(mlsysim.Models, group)) >= 1


@pytest.mark.parametrize("key", ["GPTJ_6B", "BERT_Large", "RetinaNet", "UNet3D", "SDXL",
                                 "DLRM_v2", "Llama2_70B", "Mixtral_8x7B", "GPT3_175B",
                                 "Llama3_405B", "StableDiffusion_2"])
def test_mlperf_models_present(key):
    assert mlsysim.Models.get(key).key == key


def test_lookup_is_forgiving_and_unknown_names_suggest():
    assert mlsysim.Hardware.get("a100-80gb-sxm") is mlsysim.Hardware.A100
    assert mlsysim.Models["llama3-8b"] is mlsysim.Models.Llama3_8B
    with pytest.raises(UnknownNameError) as err:
        mlsysim.Models.Llama3_8b_typo
    assert "Llama3_8B" in str(err.value)
    with pytest.raises(UnknownNameError, match="A100"):
        mlsysim.Hardware.Cloud.get("A10O")


def test_group_rejects_members_of_other_groups():
    with pytest.raises(UnknownNameError):
        mlsysim.Hardware.Tiny.A100


def test_every_precision_peak_is_finite_and_positive():
    for hw in HARDWARE:
        for p, q in hw.compute.dense.items():
            v = q.to("flop/s").magnitude
            assert math.isfinite(v) and v > 0, (hw.key, p)


def test_layered_models_have_layers():
    for m in MODELS:
        if isinstance(m, LayeredSpec):
            assert m.all_blocks and m.macs_per_sample > 0


def test_first_solve_validates_only_what_it_uses():
    """Start-up: the zoo keeps entries as parsed data until asked for, and a parse cached from
    an earlier process never imports yaml. A fresh interpreter's first solve builds the one
    model it names, and of the ~50 devices only the one it names and the ones the shipped
    microbenchmarks measure (the calibration reads their peaks); `in` finds names without
    building; iterating builds them all, so every entry is still validated where listed."""
    import subprocess
    import sys
    code = (
        "import sys, mlsysim\n"
        "from mlsysim.zoo import Hardware, Models, _Pending\n"
        "mlsysim.Engine.solve('ResNet50', 'A100')\n"
        "from mlsysim.core.calibration import load_microbench\n"
        "pending = lambda r: sum(isinstance(e, _Pending) for e in r._entries.values())\n"
        "built = {k for k, e in Hardware._entries.items() if not isinstance(e, _Pending)}\n"
        "measured = {r['hardware'] for r in load_microbench()}\n"
        "assert built == ({'A100'} | measured) & set(Hardware.names()), built\n"
        "assert pending(Hardware) >= 20, pending(Hardware)\n"
        "assert pending(Models) == len(Models._entries) - 1, pending(Models)\n"
        "before = pending(Hardware)\n"
        "assert 'L40S' in Hardware and 'l40-s' in Hardware and 'L4OS' not in Hardware\n"
        "assert pending(Hardware) == before\n"
        "print('yaml' in sys.modules, len(list(Hardware)), pending(Hardware))\n")
    runs = [subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                           timeout=60) for _ in range(2)]   # the first may fill the cache
    for out in runs:
        assert out.returncode == 0, out.stderr
    yaml_loaded, listed, left = runs[1].stdout.split()
    assert yaml_loaded == "False" and int(listed) >= 40 and left == "0"
