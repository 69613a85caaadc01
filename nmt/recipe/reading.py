"""Recipe YAML read with bounds, and values echoed in error messages with bounds.

A recipe is a short file (~100 values), but YAML anchors and aliases let a few lines stand
for billions of values ("billion laughs": each line lists the previous anchor nine times).
PyYAML loads that quickly, since aliases share one object, but anything that walks or
prints the value (an error message's repr, a deep copy) then runs until memory is gone.
So a recipe is refused when its file is large, when it nests deeply, or when its values,
counted with aliases expanded, pass `MAX_NODES`; the count stops at the limit, so the
check itself is quick. Error messages show values through `shown`, which prints at most
`MAX_SHOWN` characters of any value, looking only at the first items of each container.
"""

from __future__ import annotations

import itertools
import math
import reprlib
from pathlib import Path
from typing import Any

import yaml

from nmt.errors import UserError, one_line

MAX_BYTES = 1 << 20  # a recipe file; the shipped ones are under 4 KiB
MAX_NODES = 10_000  # values, keys and sections counted with aliases expanded; a recipe: ~100
MAX_DEPTH = 32  # nesting; a recipe reaches 5 (data.alternatives.NAME.SPLIT.KIND)
MAX_SHOWN = 100  # characters of a value quoted in an error message


class _ShortRepr(reprlib.Repr):
    def repr_int(self, x: int, level: int) -> str:
        # repr() of an int past 4300 digits raises ValueError (and takes quadratic time)
        if x.bit_length() > 256:
            digits = int(math.log10(abs(x))) + 1
            digits -= abs(x) < 10 ** (digits - 1)  # log10(10**k - 1) may round up to k
            return f"<an integer of {digits} digits>"
        return super().repr_int(x, level)


_REPR = _ShortRepr()
_REPR.maxlevel = 2
_REPR.maxdict = _REPR.maxlist = _REPR.maxtuple = _REPR.maxset = 4
_REPR.maxstring = _REPR.maxother = _REPR.maxlong = 40


def shown(value: Any) -> str:
    """`repr(value)` cut to at most `MAX_SHOWN` characters, quickly for any recipe value."""
    return cut(_REPR.repr(value))


def cut(text: str, limit: int = MAX_SHOWN) -> str:
    """`text`, or its start and "..." if longer than `limit`."""
    return text if len(text) <= limit else text[: limit - 3] + "..."


def shown_key(key: Any) -> str:
    """A key as typed, cut if absurdly long, for an error message."""
    return cut(key if isinstance(key, str) else shown(key), 60)


def shown_keys(keys: Any) -> str:
    """The first few keys of a mapping, comma-separated, for an error message."""
    names = [shown_key(k) for k in itertools.islice(keys, 12)]
    return ", ".join(names) + (", ..." if len(keys) > len(names) else "")


def read_recipe_file(path: Path) -> Any:
    """The YAML data in recipe file `path`, refused with a `UserError` if unreadable or huge."""
    if not path.is_file():
        raise UserError(f"{path}: no such recipe file; recipes/ holds examples")
    size = path.stat().st_size
    if size > MAX_BYTES:
        raise UserError(
            f"{path}: {size} bytes is too large for a recipe (at most {MAX_BYTES}); a recipe "
            "names its corpus files, it does not hold them"
        )
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError:
        raise UserError(f"{path}: not UTF-8 text; save the recipe as UTF-8") from None
    except OSError as e:
        raise UserError(f"{path}: cannot be read ({e.strerror or e})") from None
    return parse_yaml(text, str(path), "not valid YAML")


def parse_yaml(text: str, where: str, what: str) -> Any:
    """`yaml.safe_load(text)`; a YAML error or absurd nesting is a `UserError` naming `where`."""
    try:
        return yaml.safe_load(text)
    except yaml.YAMLError as e:
        raise UserError(f"{where}: {what}: {one_line(e)}") from None
    except RecursionError:
        raise UserError(f"{where}: YAML nested too deeply to be a recipe") from None
    except ValueError as e:  # a date such as 2024-02-30, an integer of 5000 digits
        raise UserError(f"{where}: {what}: {cut(one_line(e))}") from None


def check_size(raw: Any, where: str, what: str = "the recipe") -> None:
    """Refuse `raw` if it nests past `MAX_DEPTH` or holds more than `MAX_NODES` values.

    Values reached through an alias count each time, as they would when walked or printed.
    The walk stops as soon as a limit is passed, so it takes bounded time on any input.
    """
    count = 1  # values reached so far, aliases each time: at most MAX_NODES + 1 steps
    stack: list[tuple[Any, int]] = [(raw, 0)]
    while stack:
        value, depth = stack.pop()
        if depth > MAX_DEPTH:
            raise UserError(
                f"{where}: {what} nests more than {MAX_DEPTH} levels deep, where a recipe needs "
                "5; an alias inside its own anchor (&a [*a]) nests without end"
            )
        if isinstance(value, dict):
            children: Any = itertools.chain(value.keys(), value.values())
        elif isinstance(value, list | tuple | set):
            children = value
        else:
            continue
        reached = list(itertools.islice(children, MAX_NODES - count + 1))  # enough to pass
        count += len(reached)
        if count > MAX_NODES:
            raise UserError(
                f"{where}: {what} expands to more than {MAX_NODES} values (YAML aliases such "
                "as *a repeat all that &a names); a recipe has about a hundred: remove the "
                "repeated aliases"
            )
        stack.extend((child, depth + 1) for child in reached)
