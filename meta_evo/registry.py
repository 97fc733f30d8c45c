"""Named registries: the single list of the families, agents, learners and strategies.

Each thing registers itself where it is defined (``meta_evo.tasks``, ``meta_evo.agents``,
``meta_evo.learners``, ``meta_evo.strategies``) with its constructor, the config keys it reads
(its schema) and a constraint function. ``meta_evo.config.validate`` takes the accepted names
and the per-entry constraints from here, so a name added to a registry needs no second list.

This module imports nothing heavy: ``import meta_evo.config`` stays cheap, and the registries'
modules import it, never the other way round.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any


def _no_problems(cfg) -> Iterable[str]:
    return ()


@dataclass(frozen=True)
class Entry:
    """One registered thing.

    ``build``: its constructor (each registry documents the signature its entries share).
    ``schema``: the dotted config keys it reads (e.g. ``learner.candidates``).
    ``check(cfg) -> iterable of "key: reason"``: what a whole :class:`~meta_evo.config.Config`
    must satisfy when it names this entry (one line each, naming the offending key).
    ``extra``: facts the registry's users read (a strategy's ``tell_sign``, a family's class).
    """

    name: str
    build: Callable[..., Any]
    schema: tuple[str, ...] = ()
    check: Callable[[Any], Iterable[str]] = _no_problems
    extra: Mapping[str, Any] = field(default_factory=dict)


class Registry(Mapping[str, Entry]):
    """An ordered mapping ``name -> Entry`` for the config key ``key`` (e.g. ``learner.kind``).

    ``what`` names a thing in messages: ``learner.kind: unknown learner 'x' (known: ...)``.
    """

    def __init__(self, key: str, what: str):
        self.key, self.what = key, what
        self._entries: dict[str, Entry] = {}

    def register(self, name: str, build: Callable[..., Any], *, schema: Iterable[str] = (),
                 check: Callable[[Any], Iterable[str]] | None = None, **extra) -> Entry:
        if name in self._entries:
            raise ValueError(f"{self.key}: {name!r} is registered twice")
        entry = Entry(name, build, tuple(schema), check or _no_problems, dict(extra))
        self._entries[name] = entry
        return entry

    def unregister(self, name: str) -> None:
        del self._entries[name]

    def __getitem__(self, name: str) -> Entry:
        return self._entries[name]

    def __iter__(self) -> Iterator[str]:
        return iter(self._entries)

    def __len__(self) -> int:
        return len(self._entries)

    def __repr__(self) -> str:
        return f"Registry({self.key}: {', '.join(self._entries)})"

    @property
    def names(self) -> tuple[str, ...]:
        return tuple(self._entries)

    def unknown(self, name: Any) -> str:
        """The one-line message for a name this registry does not hold."""
        return f"{self.key}: unknown {self.what} {name!r} (known: {', '.join(self._entries)})"

    def entry(self, name: str) -> Entry:
        """The entry ``name``; a ValueError naming the key and the known names otherwise."""
        if name not in self._entries:
            raise ValueError(self.unknown(name))
        return self._entries[name]

    def build(self, name: str, *args, **kwargs):
        return self.entry(name).build(*args, **kwargs)

    def problems(self, cfg, name: str) -> list[str]:
        """``key: reason`` lines for ``cfg`` naming ``name``: unknown, or its constraints."""
        if name not in self._entries:
            return [self.unknown(name)]
        return list(self._entries[name].check(cfg))

    def view(self, item: str) -> Mapping[str, Any]:
        """A live read-only mapping ``name -> entry.extra[item]`` (e.g. strategies' tell signs)."""
        return _View(self, item)


class _View(Mapping[str, Any]):
    def __init__(self, registry: Registry, item: str):
        self._registry, self._item = registry, item

    def __getitem__(self, name: str) -> Any:
        return self._registry[name].extra[self._item]

    def __iter__(self) -> Iterator[str]:
        return iter(self._registry)

    def __len__(self) -> int:
        return len(self._registry)
