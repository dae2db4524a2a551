"""One pint registry for the whole package, and the conversions the hot paths use.

Quantities live at the API boundary; inside the cost model everything is a plain float in SI
base units (seconds, bytes, flop, flop/s, byte/s). ``to_base`` and ``SI`` are the bridge.
"""

from __future__ import annotations

import hashlib
import os
import sys
from pathlib import Path

# pint imports dask.base at import time whenever dask is installed (the `distributed` extra),
# which adds ~0.1 s to every start. mlsysim never puts dask arrays inside quantities, so hide
# dask from pint's one-time probe (a None entry makes find_spec report it absent) and
# restore it at once: dask itself imports normally afterwards.
_hide_dask = "dask" not in sys.modules
if _hide_dask:
    sys.modules["dask"] = None  # type: ignore[assignment]
try:
    import pint
finally:
    if _hide_dask:
        del sys.modules["dask"]

__all__ = ["ureg", "Q_", "Quantity", "Unit", "DimensionalityError", "Rate"]



def _definitions() -> str:
    """pint's default definitions with ``bit`` given the [information] dimension (pint makes it
    dimensionless, which would let GB/s convert to 1/s) and the symbol ``b``, then MLSys·im's
    own units."""
    folder = Path(pint.__file__).parent
    text = (folder / "default_en.txt").read_text()
    text = text.replace("@import constants_en.txt", (folder / "constants_en.txt").read_text())
    dimensionless_bit = "\nbit = []\n"
    if dimensionless_bit not in text:  # pint changed its file: fail loudly rather than mis-convert
        raise RuntimeError("unexpected pint definitions; cannot give byte its own dimension")
    text = text.replace(dimensionless_bit, "\nbit = [information] = b\n")
    # "b" is the bit, as networks are quoted ("400 Gb/s"): pint also gives it to the barn
    # (so "Tb/s" would be terabarns per second) and "Gb" to the gilbert; both lose their
    # symbols (their names still parse).
    for taken, freed in (("barn = 1e-28 * meter ** 2 = b", "barn = 1e-28 * meter ** 2"),
                         ("gilbert = 1 / (4 * π) * biot_turn = Gb",
                          "gilbert = 1 / (4 * π) * biot_turn")):
        if taken not in text:
            raise RuntimeError(f"unexpected pint definitions; cannot free the symbol of {freed}")
        text = text.replace(taken, freed)
    ours = Path(__file__).with_name("units_definitions.txt").read_text()
    return text + "\n" + ours


def _build_registry() -> pint.UnitRegistry:
    """Parsing the definitions costs ~0.15 s; pint caches a parsed *file*, so the combined
    text is written once to the user's cache folder and later processes load it parsed. Where
    no cache folder is writable, the text is parsed in place."""
    text = _definitions()
    digest = hashlib.sha1(f"{pint.__version__}\n{text}".encode()).hexdigest()[:16]
    base = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "mlsysim"
    path = base / f"units-{digest}.txt"
    try:
        if not path.exists():
            base.mkdir(parents=True, exist_ok=True)
            tmp = path.with_suffix(f".{os.getpid()}.tmp")
            tmp.write_text(text)
            tmp.replace(path)  # atomic: concurrent processes never read a partial file
        return pint.UnitRegistry(str(path), cache_folder=":auto:")
    except OSError:
        registry = pint.UnitRegistry(None, cache_folder=None)
        registry.load_definitions(text.splitlines())
        return registry


ureg = _build_registry()
ureg.formatter.default_format = "~P"
# Unpickled quantities (results and specs shipped to worker processes) rebuild in this
# registry, which knows flop, token, MAC and the rest.
pint.set_application_registry(ureg)
Q_ = ureg.Quantity
Quantity = ureg.Quantity
Unit = ureg.Unit
DimensionalityError = pint.DimensionalityError


class Rate(float):
    """A throughput: a float (per second) that remembers its unit.

    It formats as a bare number, so ``f"{profile.throughput:.0f} images/sec"`` reads
    "1843 images/sec", and converts like a quantity with ``.to()`` and ``.quantity``.
    """

    __slots__ = ("unit",)

    def __new__(cls, value: float, unit: str = "sample/s"):
        obj = super().__new__(cls, value)
        obj.unit = unit
        return obj

    @property
    def quantity(self) -> pint.Quantity:
        return Q_(float(self), self.unit)

    @property
    def magnitude(self) -> float:
        return float(self)

    @property
    def units(self):
        return ureg.Unit(self.unit)

    def to(self, unit: str) -> pint.Quantity:
        return self.quantity.to(unit)

    def __repr__(self) -> str:
        return f"{float(self):.6g} {self.unit}"

    def __reduce__(self):
        return (Rate, (float(self), self.unit))
