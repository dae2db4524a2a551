"""The one cache: content keys (spec hash agrees with equality), LRU eviction, pickling."""

import pickle

import pytest

import mlsysim
from mlsysim.cache import ContentCache, cache_info, clear_caches


def test_spec_hash_agrees_with_equality():
    h = mlsysim.Hardware.H100
    twin = h.model_copy()                       # a separate object with the same content
    assert twin is not h and twin == h and hash(twin) == hash(h)
    faster = h.model_copy(update={"tdp": "800 W"})
    assert faster != h                          # different content, different key
    fleet = mlsysim.Fleet(name="f", node="DGX_H100", count=4)
    assert fleet == mlsysim.Fleet(name="f", node="DGX_H100", count=4)
    assert hash(fleet) == hash(mlsysim.Fleet(name="f", node="DGX_H100", count=4))
    assert {h: 1}[twin] == 1


def test_equal_specs_share_a_plan():
    clear_caches()
    model = mlsysim.Models.Llama3_8B
    a = mlsysim.ServingModel().solve(model, mlsysim.Hardware.H100, seq_len=512)
    before = cache_info()["serving plans"]
    b = mlsysim.ServingModel().solve(model.model_copy(), mlsysim.Hardware.H100.model_copy(),
                                     seq_len=512)
    after = cache_info()["serving plans"]
    assert after["entries"] == before["entries"] and after["hits"] == before["hits"] + 1
    assert a.itl_s == b.itl_s


def test_lru_evicts_the_least_recently_used():
    c = ContentCache("test lru", maxsize=2)
    c.put("a", 1)
    c.put("b", 2)
    assert c.get("a") == 1                      # "a" is now the most recent
    c.put("c", 3)
    assert "b" not in c and c.get("a") == 1 and c.get("c") == 3 and len(c) == 2
    assert c.get(["unhashable"]) is None        # never cached, never an error
    assert c.put(["unhashable"], 5) == 5 and len(c) == 2
    assert c.get_or_build("d", lambda: 4) == 4 and "a" not in c


def test_caches_and_results_pickle():
    c = ContentCache("test pickle", maxsize=8)
    c.put(("H100", mlsysim.Hardware.H100), 1.5)
    back = pickle.loads(pickle.dumps(c))
    assert back.get(("H100", mlsysim.Hardware.H100)) == 1.5 and back.maxsize == 8
    r = mlsysim.ServingModel().solve("Llama3_8B", "H100", seq_len=512, tp_size=2)
    r2 = pickle.loads(pickle.dumps(r))
    assert r2.itl_s == r.itl_s and r2.band["itl"] == r.band["itl"]
    p = mlsysim.Engine.solve("ResNet50", "A100")
    assert pickle.loads(pickle.dumps(p)).latency_s == p.latency_s


def test_bounded():
    for name, info in cache_info().items():
        assert info["entries"] <= info["maxsize"], name


@pytest.mark.parametrize("seq_len", [1024, 1024.0])
def test_types_are_part_of_the_key(seq_len):
    # 1024.0 is accepted as a whole number; it must not reuse (or poison) the int plan.
    r = mlsysim.Engine.solve("Llama3_8B", "H100", seq_len=seq_len)
    assert r.seq_len == 1024


def test_equal_specs_compare_by_their_content_serialized_once(monkeypatch):
    """Two equal fleets built separately compare equal on the content each serialized once
    for its hash: a cache lookup with the second (the first is the stored key) costs a string
    comparison, not two fresh serializations of a fleet and its node (~1 ms each call)."""
    a = mlsysim.Fleet(name="f", node="DGX_H100", count=4)
    b = mlsysim.Fleet(name="f", node="DGX_H100", count=4)
    c = mlsysim.Fleet(name="f", node="DGX_H100", count=8)
    hash(a), hash(b), hash(c)

    def serialize_again(*_, **__):
        raise AssertionError("equality serialized a spec again")

    monkeypatch.setattr(mlsysim.Fleet, "model_dump", serialize_again)
    monkeypatch.setattr(mlsysim.Fleet, "model_dump_json", serialize_again)
    assert a == b and a != c
    assert {a: 1}[b] == 1


def test_a_pickled_spec_keys_caches_in_a_process_with_another_hash_seed(tmp_path):
    """String hashes are salted per process, so a spec's cached hash must not travel in its
    pickle: a fleet pickled where PYTHONHASHSEED=1 and loaded where PYTHONHASHSEED=2 equals
    and finds a freshly built equal fleet there (a worker receiving warm plans)."""
    import os
    import subprocess
    import sys

    path = tmp_path / "fleet.pkl"
    build = "import mlsysim; f = mlsysim.Fleet(name='f', node='DGX_H100', count=4); hash(f)"
    env = {**os.environ, "PYTHONHASHSEED": "1"}
    subprocess.run([sys.executable, "-c", f"{build}; import pickle, pathlib; "
                    f"pathlib.Path({str(path)!r}).write_bytes(pickle.dumps(f))"],
                   check=True, env=env)
    env["PYTHONHASHSEED"] = "2"
    out = subprocess.run([sys.executable, "-c", f"{build}; import pickle, pathlib; "
                          f"g = pickle.loads(pathlib.Path({str(path)!r}).read_bytes()); "
                          "print(g == f, {f: 'found'}.get(g))"],
                         check=True, env=env, capture_output=True, text=True)
    assert out.stdout.split() == ["True", "found"]
