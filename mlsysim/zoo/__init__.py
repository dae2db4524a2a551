"""The MLSys Zoo: vetted specs loaded from the YAML files under ``zoo/data``.

``Hardware.Cloud.A100``, ``Hardware.A100``, ``Hardware["A100"]`` and ``Hardware.get("a100")``
all give the same spec; unknown names raise :class:`~mlsysim.errors.UnknownNameError` with the
closest matches. Files are read on first access, once.
"""

from __future__ import annotations

import hashlib
import os
import pickle
from pathlib import Path
from typing import TYPE_CHECKING, Any, Iterator

from ..core.datafile import as_path, read_text
from ..errors import DataFileError, SpecError, UnknownNameError
from ..specs.hardware import HardwareSpec
from ..specs.model import FAMILIES, ModelSpec

if TYPE_CHECKING:  # imported where used: a first Engine.solve needs neither (start-up time)
    from ..specs.infra import CloudPrice, PurchasePrice

__all__ = ["Registry", "Hardware", "Models", "ServingEngines", "QuantizedKernels",
           "ShardingRuntimes", "Systems", "Fabrics", "Nodes", "Clusters", "load_hardware",
           "load_model", "DATA"]

DATA = Path(__file__).with_name("data")


_LOADER = None


def _yaml_loader():
    """The safe loader (libyaml when available: 10x faster), refusing a mapping that repeats a
    key (YAML's "last one wins" would silently drop the first value). libyaml still parses;
    only construction, which is Python in either loader, does the check: a set per mapping,
    within noise of the plain loader (~65 ms for the whole zoo either way). Built on first
    need: a zoo served from the parse cache never imports yaml (~20 ms of start-up)."""
    global _LOADER
    if _LOADER is not None:
        return _LOADER
    import yaml

    class _Loader(getattr(yaml, "CSafeLoader", yaml.SafeLoader)):
        def construct_mapping(self, node, deep=False):
            if isinstance(node, yaml.MappingNode):
                seen: dict = {}
                for key_node, _ in node.value:
                    if not isinstance(key_node, yaml.ScalarNode) or \
                            key_node.tag == "tag:yaml.org,2002:merge":
                        continue          # "<<" merges may override; complex keys are rare
                    ident = (key_node.tag, key_node.value)
                    if ident in seen:
                        raise yaml.constructor.ConstructorError(
                            "while constructing a mapping", node.start_mark,
                            f"duplicate key '{key_node.value}' (first at line "
                            f"{seen[ident] + 1})", key_node.start_mark)
                    seen[ident] = key_node.start_mark.line
            return super().construct_mapping(node, deep=deep)

    _LOADER = _Loader
    return _LOADER


# Bump when the parse of a given text changes (v2: duplicate keys refused), so a cached parse
# made by an older loader is never returned for a text it would now reject. The key holds no
# yaml version (reading it would import yaml): a safe load of plain mappings, lists and
# scalars, pickled as builtins, is fixed by the YAML spec, not by the library release.
_PARSE_VERSION = "3"


def _parsed_cache(text: str) -> Path | None:
    """Where the parsed form of a data file's text is kept: YAML construction costs ~10 ms a
    file, unpickling well under 1 ms, so the zoo's first use pays it once per content."""
    base = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "mlsysim"
    digest = hashlib.sha1(f"{_PARSE_VERSION}\n{text}".encode()).hexdigest()[:20]
    return base / "zoo" / f"{digest}.pickle"


def _read_yaml(path: Path) -> list[Any]:
    text = read_text(path)
    cache = _parsed_cache(text)
    try:
        with open(cache, "rb") as fh:
            return pickle.load(fh)
    except (OSError, pickle.PickleError, EOFError, AttributeError):
        pass
    import yaml
    try:
        data = yaml.load(text, Loader=_yaml_loader())
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        line = f", line {mark.line + 1}" if mark else ""
        problem = getattr(exc, "problem", exc)
        raise DataFileError(f"{path}{line}: not valid YAML ({problem})") from None
    except RecursionError:
        raise DataFileError(f"{path}: nested too deeply to read") from None
    if isinstance(data, dict):
        data = [data]
    if not isinstance(data, list):
        raise DataFileError(f"{path}: expected a list of entries, got {type(data).__name__}")
    tmp = cache.with_suffix(f".{os.getpid()}.tmp")
    try:                          # content-addressed, written atomically; optional
        cache.parent.mkdir(parents=True, exist_ok=True)
        with open(tmp, "wb") as fh:
            pickle.dump(data, fh, protocol=pickle.HIGHEST_PROTOCOL)
        tmp.replace(cache)
    except (OSError, RecursionError, pickle.PickleError):
        try:
            tmp.unlink(missing_ok=True)
        except OSError:
            pass
    return data


def _entry_name(raw: Any, i: int) -> str:
    return raw.get("key", f"#{i + 1}") if isinstance(raw, dict) else f"#{i + 1}"


def _hardware_from(raw: Any, where: str) -> HardwareSpec:
    return HardwareSpec.from_dict(raw, where)


def _model_from(raw: Any, where: str) -> ModelSpec:
    family = raw.get("family") if isinstance(raw, dict) else None
    if family not in FAMILIES:
        raise SpecError(f"{where}: 'family' must be one of {', '.join(FAMILIES)}; got {family!r}")
    return FAMILIES[family].from_dict(raw, where)


def load_hardware(path: str | Path) -> HardwareSpec | list[HardwareSpec]:
    """Load your own hardware from a YAML file written like the zoo's (one entry or a list).

    Errors are typed and name the file: ValidationError for a non-path argument,
    DataFileError for an unreadable, non-UTF-8 or malformed file (duplicate keys included),
    SpecError for a bad field."""
    path = as_path(path, "load_hardware")
    specs = [_hardware_from(r, f"{path} entry {_entry_name(r, i)}")
             for i, r in enumerate(_read_yaml(path))]
    return specs[0] if len(specs) == 1 else specs


# A user file's published_parameters must agree with the count derived from its structure to
# this fraction. The zoo's own entries are held to 2 % by the tests; 10 % leaves room for
# weights the schema cannot express (put them in extra_parameters) while catching a wrong
# layer count or width, which moves the count by far more (one layer of 32: 3 %, a width
# slip of 2x: 4x).
PUBLISHED_PARAMETERS_TOLERANCE = 0.10


def check_published_parameters(spec: ModelSpec, where: str,
                               tolerance: float = PUBLISHED_PARAMETERS_TOLERANCE) -> None:
    """SpecError naming both numbers when published_parameters and the structure disagree."""
    derived = spec.parameter_count
    published = spec.published_parameters
    if abs(derived - published) > tolerance * published:
        raise SpecError(
            f"{where}: published_parameters ({published:,.0f}) and the count derived from the "
            f"structure ({derived:,}) differ by {abs(derived / published - 1):.1%}, more than "
            f"{tolerance:.0%}: check layers and widths, or put weights the schema cannot "
            "express in extra_parameters")


def load_model(path: str | Path) -> ModelSpec | list[ModelSpec]:
    """Load your own model(s) from a YAML file written like the zoo's.

    Errors as for :func:`load_hardware`; in addition each entry's ``published_parameters``
    must agree with the derived count to within ``PUBLISHED_PARAMETERS_TOLERANCE`` (10 %)."""
    path = as_path(path, "load_model")
    specs = []
    for i, r in enumerate(_read_yaml(path)):
        where = f"{path} entry {_entry_name(r, i)}"
        spec = _model_from(r, where)
        check_published_parameters(spec, where)
        specs.append(spec)
    return specs[0] if len(specs) == 1 else specs


def _norm(name: str) -> str:
    return name.lower().replace("-", "").replace("_", "").replace(".", "").replace(" ", "")


class _Pending:
    """A zoo entry read but not yet validated: its key, name and aliases are enough to find
    it; the spec is built (pydantic validation, ~0.4 ms an entry) when first asked for, so a
    first solve validates the two entries it uses, not all ~90."""

    __slots__ = ("raw", "where", "build")

    def __init__(self, raw: dict, where: str, build):
        self.raw, self.where, self.build = raw, where, build

    def names(self) -> tuple[str, ...]:
        aliases = self.raw.get("aliases") or ()
        return (self.raw["key"], *([self.raw["name"]] if isinstance(self.raw.get("name"), str)
                                   else ()),
                *(a for a in aliases if isinstance(a, str)))


class Registry:
    """A named collection of specs, possibly with groups (``Hardware.Cloud``). A loader may
    return :class:`_Pending` entries (built on first use) as well as specs."""

    def __init__(self, kind: str, loader, group_names: tuple[str, ...] = ()):
        self._kind = kind
        self._loader = loader
        self._group_names = group_names
        self._entries: dict[str, Any] | None = None
        self._index: dict[str, Any] = {}

    def _load(self) -> dict[str, Any]:
        """Key -> spec or :class:`_Pending` (use :meth:`_built` for specs only)."""
        if self._entries is None:
            entries: dict[str, Any] = {}
            for spec in self._loader():
                key = spec.raw["key"] if isinstance(spec, _Pending) else spec.key
                if key in entries:
                    raise DataFileError(f"duplicate {self._kind} key '{key}' in the zoo")
                entries[key] = spec
            index = {}
            for spec in entries.values():
                names = spec.names() if isinstance(spec, _Pending) else \
                    (spec.key, spec.name, *spec.aliases)
                for n in names:
                    index.setdefault(_norm(n), spec)
            self._index = index
            self._entries = entries
        return self._entries

    def _build(self, entry):
        """The spec of an entry, validating a pending one once (every index name then points
        at the spec)."""
        if not isinstance(entry, _Pending):
            return entry
        spec = entry.build(entry.raw, entry.where)
        self._entries[entry.raw["key"]] = spec
        for n, e in self._index.items():
            if e is entry:
                self._index[n] = spec
        return spec

    def _built(self) -> dict[str, Any]:
        """Key -> spec for every entry (validates the pending ones)."""
        entries = self._load()
        for entry in list(entries.values()):
            if isinstance(entry, _Pending):
                self._build(entry)
        return entries

    def get(self, name: str):
        """Look up by key, display name or alias, ignoring case, '-', '_', '.' and spaces."""
        if not isinstance(name, str):
            if hasattr(name, "key"):
                return name
            raise UnknownNameError(self._kind, repr(name), self.names())
        entries = self._load()
        if name in entries:
            return self._build(entries[name])
        hit = self._index.get(_norm(name))
        if hit is None:
            raise UnknownNameError(self._kind, name, self.names())
        return self._build(hit)

    __getitem__ = get

    def __getattr__(self, name: str):
        if name.startswith("_"):
            raise AttributeError(name)
        if name in self._group_names:
            return Group(self, name)
        return self.get(name)

    def names(self) -> list[str]:
        return list(self._load())

    list = names  # the incumbent's spelling, so users' habits carry over

    def __iter__(self) -> Iterator[Any]:
        return iter(self._built().values())

    def __len__(self) -> int:
        return len(self._load())

    def __contains__(self, name: str) -> bool:
        """Whether ``name`` finds an entry (without validating it)."""
        if not isinstance(name, str):
            return False
        entries = self._load()
        return name in entries or _norm(name) in self._index

    def __dir__(self):
        return [*self._group_names, *self.names(), "get", "names", "list"]

    def __repr__(self) -> str:
        return f"<{self._kind} registry: {len(self)} entries>"


class Group:
    """One group of a registry (``Hardware.Cloud``, ``Models.Language``)."""

    def __init__(self, registry: Registry, group: str):
        self._registry, self._group = registry, group

    def _members(self) -> dict[str, Any]:
        return {k: s for k, s in self._registry._built().items() if s.group == self._group}

    def get(self, name: str):
        spec = self._registry.get(name)
        if spec.group != self._group:
            raise UnknownNameError(f"{self._group} {self._registry._kind}", name,
                                   list(self._members()))
        return spec

    __getitem__ = get

    def __getattr__(self, name: str):
        if name.startswith("_"):
            raise AttributeError(name)
        return self.get(name)

    def names(self) -> list[str]:
        return list(self._members())

    list = names

    def __iter__(self):
        return iter(self._members().values())

    def __len__(self) -> int:
        return len(self._members())

    def __dir__(self):
        return [*self.names(), "get", "names", "list"]

    def __repr__(self) -> str:
        return f"<{self._registry._kind} group {self._group}: {len(self)} entries>"


class ModelRegistry(Registry):
    """The model zoo, plus import of Hugging Face ``config.json`` files (no network)."""

    @staticmethod
    def from_hf_config(config, **kwargs) -> ModelSpec:
        """Build a spec from a Hugging Face ``config.json`` path, folder or dict: every zoo
        family (dense, GQA, MLA, sliding-window, MoE, encoder-only, Whisper's encoder-decoder,
        Mamba); the list is :data:`mlsysim.zoo.hf.SUPPORTED_MODEL_TYPES`."""
        from .hf import from_hf_config
        return from_hf_config(config, **kwargs)

    @staticmethod
    def from_onnx(path, **kwargs):
        """Import an ONNX graph (a ``.onnx`` path) as a workload ``Engine.solve`` accepts
        (extra ``onnx``); see :func:`mlsysim.importers.onnx_import.from_onnx`."""
        from ..importers.onnx_import import from_onnx
        return from_onnx(path, **kwargs)

    @staticmethod
    def from_torch(module, example_inputs, **kwargs):
        """Import a ``torch.nn.Module`` (traced by ``torch.export``, no weights read) as a
        workload ``Engine.solve`` accepts (extra ``torch``); see
        :func:`mlsysim.importers.torch_import.from_torch`."""
        from ..importers.torch_import import from_torch
        return from_torch(module, example_inputs, **kwargs)

    def __dir__(self):
        return [*super().__dir__(), "from_hf_config", "from_onnx", "from_torch"]


def _load_dir(sub: str, build) -> list:
    """Every entry of the folder's files, pending (validated on first use) where it has a
    string key; one without is built now, so its error is raised at once."""
    specs = []
    for path in sorted((DATA / sub).glob("*.yaml")):
        for i, raw in enumerate(_read_yaml(path)):
            where = f"{path.name} entry {_entry_name(raw, i)}"
            if isinstance(raw, dict) and isinstance(raw.get("key"), str):
                specs.append(_Pending(raw, where, build))
            else:
                specs.append(build(raw, where))
    return specs


Hardware = Registry("hardware", lambda: _load_dir("hardware", _hardware_from),
                    ("Cloud", "Edge", "Mobile", "Tiny"))
ServingEngines = Registry(
    "serving engine",
    lambda: _serving_engines())
QuantizedKernels = Registry(
    "quantized-kernel generation",
    lambda: _quantized_kernels())
ShardingRuntimes = Registry("sharding runtime", lambda: _sharding_runtimes())
Models = ModelRegistry("model", lambda: _load_dir("models", _model_from),
                  ("Vision", "Language", "StateSpace", "Recommendation", "GenerativeVision",
                   "Speech", "Tiny"))


def _serving_engines() -> list:
    from ..specs.serving import ServingEngineSpec
    return [ServingEngineSpec.from_dict(raw, f"serving_engines.yaml entry {_entry_name(raw, i)}")
            for i, raw in enumerate(_read_yaml(DATA / "serving_engines.yaml"))]


def _quantized_kernels() -> list:
    from ..specs.serving import QuantizedKernelSpec
    return [QuantizedKernelSpec.from_dict(raw,
                                          f"quantized_kernels.yaml entry {_entry_name(raw, i)}")
            for i, raw in enumerate(_read_yaml(DATA / "quantized_kernels.yaml"))]


def _sharding_runtimes() -> list:
    from ..specs.training import ShardingRuntimeSpec
    return [ShardingRuntimeSpec.from_dict(raw,
                                          f"sharding_runtimes.yaml entry {_entry_name(raw, i)}")
            for i, raw in enumerate(_read_yaml(DATA / "sharding_runtimes.yaml"))]


def _sourced_entries(folder: str, name: str, cls) -> list:
    """Specs that users may also build in code (provenance optional there) but that the zoo
    must source: every entry needs a key, a source and an as_of."""
    path = DATA / folder / name
    specs = []
    for i, raw in enumerate(_read_yaml(path)):
        where = f"{folder}/{name} entry {_entry_name(raw, i)}"
        if not isinstance(raw, dict) or not raw.get("key") or not raw.get("source") \
                or not raw.get("as_of"):
            raise DataFileError(f"{where}: zoo entries need 'key', 'source' and 'as_of'")
        specs.append(cls.from_dict(raw, where))
    return specs


def _system_entries(name: str, cls: str) -> list:
    from ..specs import system
    return _sourced_entries("systems", name, getattr(system, cls))


Fabrics = Registry("fabric", lambda: _system_entries("fabrics.yaml", "NetworkFabric"))


def is_fabric_name(name: str) -> bool:
    """Whether ``name`` is a zoo fabric's key, name or alias, read from the raw entries: a
    device's ``interconnect.fabric`` is checked without building every fabric spec (which
    would put the systems module on every first ``Engine.solve``)."""
    if Fabrics._entries is not None:
        return _norm(name) in Fabrics._index
    raw = _read_yaml(DATA / "systems" / "fabrics.yaml")
    return _norm(name) in {_norm(n) for r in raw if isinstance(r, dict)
                           for n in (r.get("key", ""), r.get("name", ""), *r.get("aliases", ()))}
Nodes = Registry("node", lambda: _system_entries("nodes.yaml", "Node"))
Clusters = Registry("cluster", lambda: _system_entries("clusters.yaml", "Fleet"))


class _Systems:
    """``Systems.Nodes``, ``Systems.Fabrics``, ``Systems.Clusters``: systems above a chip."""

    Fabrics = Fabrics
    Nodes = Nodes
    Clusters = Clusters

    def get(self, name: str):
        """A node, cluster or fabric by name (nodes first), with suggestions across all."""
        if not isinstance(name, str):
            return name
        for reg in (Nodes, Clusters, Fabrics):
            if name in reg:
                return reg.get(name)
        raise UnknownNameError("system", name, [*Nodes.names(), *Clusters.names(),
                                                *Fabrics.names()])

    def __repr__(self) -> str:
        return (f"<Systems: {len(Nodes)} nodes, {len(Clusters)} clusters, "
                f"{len(Fabrics)} fabrics>")


Systems = _Systems()


# ---- Infrastructure: grids, datacenters, cloud and purchase prices (zoo/data/infra) ----------

__all__ += ["Grids", "Datacenters", "CloudPrices", "PurchasePrices", "Infra"]


def _infra_entries(name: str, cls: str) -> list:
    from ..specs import infra
    return _sourced_entries("infra", name, getattr(infra, cls))


Grids = Registry("grid", lambda: _infra_entries("grids.yaml", "GridSpec"))
Datacenters = Registry("datacenter", lambda: _infra_entries("datacenters.yaml", "Datacenter"))
CloudPrices = Registry("cloud price", lambda: _infra_entries("cloud_prices.yaml", "CloudPrice"))
PurchasePrices = Registry("purchase price",
                          lambda: _infra_entries("purchase_prices.yaml", "PurchasePrice"))


def _priced(registry: Registry, accelerator) -> tuple[str, list]:
    key = Hardware.get(accelerator).key if isinstance(accelerator, str) else accelerator.key
    return key, [p for p in registry if p.accelerator == key]


class _Infra:
    """``Infra.Grids``, ``Infra.Datacenters``, ``Infra.CloudPrices``, ``Infra.PurchasePrices``:
    where a fleet runs and what its accelerators cost, each entry with its source."""

    Grids = Grids
    Datacenters = Datacenters
    CloudPrices = CloudPrices
    PurchasePrices = PurchasePrices

    def cloud_price(self, accelerator, provider: str | None = None) -> CloudPrice:
        """The published entry with the lowest on-demand price per accelerator-hour for
        ``accelerator`` (a zoo hardware name or spec), optionally from one ``provider``.

        Raises :class:`~mlsysim.specs.infra.NoPublishedPriceError` naming what is known when
        nothing is published; there is no default price.
        """
        from ..specs.infra import NoPublishedPriceError
        key, entries = _priced(CloudPrices, accelerator)
        if provider is not None:
            offered = sorted({p.provider for p in entries})
            entries = [p for p in entries if p.provider.lower() == provider.lower()]
            if not entries and offered:
                raise NoPublishedPriceError(
                    f"no published {provider} price for {key}; providers with one: "
                    f"{', '.join(offered)}")
        if not entries:
            known = sorted({p.accelerator for p in CloudPrices})
            raise NoPublishedPriceError(
                f"no published cloud price for {key}"
                f"{f' from {provider}' if provider else ''}; accelerators with one: "
                f"{', '.join(known)}")
        return min(entries, key=lambda p: p.usd_per_accelerator_hour)

    def purchase_price(self, accelerator) -> PurchasePrice:
        """The lowest reported purchase price of ``accelerator`` (a point or the middle of a
        reported range; check ``.estimate``). Raises when none is published."""
        from ..specs.infra import NoPublishedPriceError
        key, entries = _priced(PurchasePrices, accelerator)
        if not entries:
            known = sorted({p.accelerator for p in PurchasePrices})
            raise NoPublishedPriceError(
                f"no published purchase price for {key}; accelerators with one: "
                f"{', '.join(known)}")
        return min(entries, key=lambda p: p.usd)

    def __repr__(self) -> str:
        return (f"<Infra: {len(Grids)} grids, {len(Datacenters)} datacenters, "
                f"{len(CloudPrices)} cloud prices, {len(PurchasePrices)} purchase prices>")


Infra = _Infra()
