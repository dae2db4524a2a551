"""One cache for every memoized step (lowering, prepared cost tables, efficiencies, plans).

A :class:`ContentCache` is a bounded LRU keyed on *content*: specs hash and compare by their
validated fields (:class:`~mlsysim.specs.base.Spec`), so two equal specs built separately share
an entry and an entry never outlives the meaning of its key (ids could be reused; contents
cannot). Least recently used entries go first once ``maxsize`` is reached; nothing is emptied
wholesale. Caches pickle with their entries, so a sweep can ship warm plans to worker
processes; ``clear_caches()`` empties every one (tests, memory pressure).

Keys are tuples of hashable values. Types belong in a key where equal values of different
types mean different things (``True == 1``, ``2048.0 == 2048``): callers add them. A key that
cannot be hashed (a list passed where a number belongs) is simply not cached; validation then
names the bad argument.
"""

from __future__ import annotations

from collections import OrderedDict
from typing import Any, Callable, Hashable

__all__ = ["ContentCache", "clear_caches", "cache_info"]

_ALL: dict[str, ContentCache] = {}
_MISSING = object()


class ContentCache:
    """A bounded LRU mapping content keys to values (see the module docstring)."""

    def __init__(self, name: str, maxsize: int = 4096):
        self.name, self.maxsize = name, maxsize
        self._data: OrderedDict[Hashable, Any] = OrderedDict()
        self.hits = self.misses = 0
        _ALL[name] = self

    def get(self, key: Hashable, default: Any = None) -> Any:
        try:
            value = self._data[key]
        except KeyError:
            self.misses += 1
            return default
        except TypeError:               # unhashable key: never cached
            return default
        self._data.move_to_end(key)
        self.hits += 1
        return value

    def put(self, key: Hashable, value: Any) -> Any:
        try:
            self._data[key] = value
        except TypeError:
            return value
        self._data.move_to_end(key)
        if len(self._data) > self.maxsize:
            self._data.popitem(last=False)
        return value

    def get_or_build(self, key: Hashable, build: Callable[[], Any]) -> Any:
        value = self.get(key, _MISSING)
        if value is _MISSING:
            value = self.put(key, build())
        return value

    def clear(self) -> None:
        self._data.clear()

    def __len__(self) -> int:
        return len(self._data)

    def __contains__(self, key: Hashable) -> bool:
        try:
            return key in self._data
        except TypeError:
            return False

    def __getstate__(self) -> dict[str, Any]:
        return {"name": self.name, "maxsize": self.maxsize, "data": list(self._data.items())}

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.name, self.maxsize = state["name"], state["maxsize"]
        self._data = OrderedDict(state["data"])
        self.hits = self.misses = 0

    def __repr__(self) -> str:
        return (f"ContentCache({self.name}: {len(self)}/{self.maxsize} entries, "
                f"{self.hits} hits, {self.misses} misses)")


def clear_caches() -> None:
    """Empty every cache of the package."""
    for cache in _ALL.values():
        cache.clear()


def cache_info() -> dict[str, dict[str, int]]:
    """Entries, hits and misses per cache."""
    return {n: {"entries": len(c), "maxsize": c.maxsize, "hits": c.hits, "misses": c.misses}
            for n, c in _ALL.items()}
