"""Hydra overrides as one value: the command line's ``key=value`` items, read with Hydra's own parser.

Overrides travel between layers (command line → sweep → study → workers → finals) as this type, and
every question about them — what does ``tune.workers`` say, the list without ``tune.*``, the list
with sampled values added — is answered here, with Hydra's override grammar
(:class:`~hydra.core.override_parser.overrides_parser.OverridesParser`): ``+key``, ``++key``,
``~key``, quoted values and lists read exactly as ``compose`` reads them. Nothing else in the package
splits ``key=value`` text by hand.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from typing import TYPE_CHECKING, Any, overload

from bench.config.messages import error_text
from bench.errors import ConfigError

if TYPE_CHECKING:
    from hydra.core.override_parser.overrides_parser import OverridesParser
    from hydra.core.override_parser.types import Override

_MISSING = object()


@functools.cache
def _parser() -> OverridesParser:
    from hydra.core.override_parser.overrides_parser import OverridesParser

    return OverridesParser.create()


def format_override(key: str, value: Any) -> str:
    """One Hydra override for a Python value (floats keep full precision; strings are quoted)."""
    if value is None:
        return f"{key}=null"
    if isinstance(value, bool):
        return f"{key}={str(value).lower()}"
    if isinstance(value, float):
        return f"{key}={value!r}"
    if isinstance(value, str):
        return f"{key}='{value}'"
    return f"{key}={value}"


def _under(key: str, prefix: str) -> bool:
    """Whether dotted ``key`` is ``prefix`` or lies below it (``tune`` covers ``tune.trials``)."""
    return key == prefix or key.startswith(prefix + ".")


class Overrides(Sequence[str]):
    """An immutable list of Hydra overrides; as a sequence it is the text items, in order.

    ``get`` reads a key's value as Hydra parses it (``tune.workers=2`` → ``2``, ``launcher.name='x'``
    → ``'x'``); the last override of a key wins, as in composition, and ``~key`` deletes it.
    ``without`` and ``with_`` return new values. Malformed text is a :class:`ConfigError` with
    Hydra's message, the same line composition reports.
    """

    def __init__(self, items: Iterable[str] = ()) -> None:
        self._items: tuple[str, ...] = tuple(items)
        self._parsed: list[Override] | None = None

    # -- the sequence of text items
    @overload
    def __getitem__(self, i: int) -> str: ...
    @overload
    def __getitem__(self, i: slice) -> Overrides: ...
    def __getitem__(self, i: int | slice) -> str | Overrides:
        return Overrides(self._items[i]) if isinstance(i, slice) else self._items[i]

    def __len__(self) -> int:
        return len(self._items)

    def __iter__(self) -> Iterator[str]:
        return iter(self._items)

    def __eq__(self, other: object) -> bool:
        if isinstance(other, Overrides):
            return self._items == other._items
        if isinstance(other, (list, tuple)):
            return list(self._items) == list(other)
        return NotImplemented

    def __hash__(self) -> int:
        return hash(self._items)

    def __repr__(self) -> str:
        return f"Overrides({list(self._items)!r})"

    def __add__(self, other: Iterable[str]) -> Overrides:
        return Overrides((*self._items, *other))

    # -- what they say
    def parsed(self) -> list[Override]:
        """Hydra's :class:`Override` objects, one per item (parsed once)."""
        if self._parsed is None:
            try:
                self._parsed = _parser().parse_overrides(list(self._items))
            except Exception as e:  # OverrideParseException and friends: the user's text
                raise ConfigError(error_text(e)) from None
        return self._parsed

    def keys(self) -> list[str]:
        """The dotted key (or config group) of each item, without its ``+``/``++``/``~``."""
        return [o.key_or_group for o in self.parsed()]

    def has(self, key: str) -> bool:
        """Whether an item sets or deletes ``key`` itself (not a key below it)."""
        return key in self.keys()

    def get(self, key: str, default: Any = None) -> Any:
        """The value the last item for ``key`` sets, as Hydra parses it; ``default`` when no item sets
        it or the last one deletes it (``~key``)."""
        value = _MISSING
        for o in self.parsed():
            if o.key_or_group == key:
                value = _MISSING if o.is_delete() else o.value()
        return default if value is _MISSING else value

    # -- new values
    def choices(self, key: str) -> list[Any] | None:
        """The values ``key`` is given, a list for Hydra's choice syntax (``dataset=voc,ade20k``);
        None when no item sets it."""
        for o in reversed(self.parsed()):
            if o.key_or_group == key and not o.is_delete():
                value = o.value()
                return list(value.list) if o.is_sweep_override() else [value]
        return None

    def without(self, *keys: str, below: bool = True) -> Overrides:
        """The items for none of ``keys``: with ``below`` (the default) none of the keys under them
        either (``without("tune")`` drops ``tune.trials=3`` and ``+tune.x=1``, keeps ``tuner=1``);
        without it only the keys themselves (``without("method", below=False)`` keeps
        ``method.terms.kd.weight=2``)."""
        return self._select(lambda key: not any(_under(key, k) if below else key == k for k in keys))

    def only(self, *keys: str) -> Overrides:
        """The items for ``keys`` and the keys under them."""
        return self._select(lambda key: any(_under(key, k) for k in keys))

    def _select(self, keep: Callable[[str], bool]) -> Overrides:
        return Overrides(item for item, key in zip(self._items, self.keys(), strict=True) if keep(key))

    def with_(self, values: Mapping[str, Any] | Iterable[str]) -> Overrides:
        """These items followed by ``values``: a mapping of dotted keys to Python values (formatted by
        :func:`format_override`) or override text. Later items win, as on Hydra's command line."""
        if isinstance(values, Mapping):
            return self + [format_override(k, v) for k, v in values.items()]
        return self + list(values)

    def as_list(self) -> list[str]:
        return list(self._items)
