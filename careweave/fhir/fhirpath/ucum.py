"""A small UCUM unit algebra: enough to compare and convert the units seen in clinical data.

Rules:
1. A unit parses to a factor and a dimension (sorted ``(base, exponent)`` pairs) over the bases
   g, m, s, mol, K, C, cd, rad and, for arbitrary units ([iU], U...), the unit itself.
2. Terms combine with ``.`` and ``/``, take an integer exponent (``m2``, ``s-1``), a metric prefix
   (``mg``, ``dL``), parentheses, ``10*3`` powers and ``{annotations}`` (which count as 1).
3. Temperatures with an offset (``Cel``, ``[degF]``) convert only on their own, not inside a
   product.
4. Calendar keywords (``year``, ``month``...) are not UCUM: ``week`` and finer map to their UCUM
   codes, ``year``/``month`` to a calendar dimension of their own (1 year = 12 months).
"""

from __future__ import annotations

import re
from decimal import Decimal

__all__ = ["CALENDAR_UNITS", "Dimension", "canonical", "convert"]

Dimension = tuple[tuple[str, int], ...]

_D = Decimal
_PREFIXES: dict[str, Decimal] = {
    "Y": _D("1e24"), "Z": _D("1e21"), "E": _D("1e18"), "P": _D("1e15"), "T": _D("1e12"),
    "G": _D("1e9"), "M": _D("1e6"), "k": _D("1e3"), "h": _D("1e2"), "da": _D("1e1"),
    "d": _D("1e-1"), "c": _D("1e-2"), "m": _D("1e-3"), "u": _D("1e-6"), "n": _D("1e-9"),
    "p": _D("1e-12"), "f": _D("1e-15"), "a": _D("1e-18"),
}  # fmt: skip

_PA: Dimension = (("g", 1), ("m", -1), ("s", -2))
_J: Dimension = (("g", 1), ("m", 2), ("s", -2))
# atom -> (factor, dimension, takes metric prefixes)
_ATOMS: dict[str, tuple[Decimal, Dimension, bool]] = {
    "1": (_D(1), (), False),
    "%": (_D("0.01"), (), False),
    "g": (_D(1), (("g", 1),), True),
    "t": (_D(1_000_000), (("g", 1),), True),
    "m": (_D(1), (("m", 1),), True),
    "s": (_D(1), (("s", 1),), True),
    "mol": (_D(1), (("mol", 1),), True),
    "K": (_D(1), (("K", 1),), True),
    "C": (_D(1), (("C", 1),), True),
    "cd": (_D(1), (("cd", 1),), True),
    "rad": (_D(1), (("rad", 1),), True),
    "min": (_D(60), (("s", 1),), False),
    "h": (_D(3600), (("s", 1),), False),
    "d": (_D(86400), (("s", 1),), False),
    "wk": (_D(604800), (("s", 1),), False),
    "mo": (_D(2629800), (("s", 1),), False),
    "a": (_D(31557600), (("s", 1),), False),
    "L": (_D("0.001"), (("m", 3),), True),
    "l": (_D("0.001"), (("m", 3),), True),
    "Hz": (_D(1), (("s", -1),), True),
    "N": (_D(1000), (("g", 1), ("m", 1), ("s", -2)), True),
    "Pa": (_D(1000), _PA, True),
    "bar": (_D(100_000_000), _PA, True),
    "m[Hg]": (_D("133322387.415"), _PA, True),
    "[psi]": (_D("6894757.29"), _PA, False),
    "J": (_D(1000), _J, True),
    "W": (_D(1000), (("g", 1), ("m", 2), ("s", -3)), True),
    "cal": (_D("4184"), _J, True),
    "[Cal]": (_D("4184000"), _J, False),
    "kat": (_D(1), (("mol", 1), ("s", -1)), True),
    "U": (_D(1) / _D(60_000_000), (("mol", 1), ("s", -1)), True),
    "eq": (_D(1), (("eq", 1),), True),
    "osm": (_D(1), (("osm", 1),), True),
    "[iU]": (_D(1), (("[iU]", 1),), True),
    "[IU]": (_D(1), (("[iU]", 1),), True),
    "[lb_av]": (_D("453.59237"), (("g", 1),), False),
    "[oz_av]": (_D("28.349523125"), (("g", 1),), False),
    "[in_i]": (_D("0.0254"), (("m", 1),), False),
    "[ft_i]": (_D("0.3048"), (("m", 1),), False),
    "[yd_i]": (_D("0.9144"), (("m", 1),), False),
    "[mi_i]": (_D("1609.344"), (("m", 1),), False),
    "[gal_us]": (_D("0.003785411784"), (("m", 3),), False),
    "[foz_us]": (_D("0.0000295735295625"), (("m", 3),), False),
    "deg": (_D("0.0174532925199432957692369"), (("rad", 1),), False),
    "[pi]": (_D("3.1415926535897932384626433832795"), (), False),
    "[ppm]": (_D("1e-6"), (), False),
    "[ppb]": (_D("1e-9"), (), False),
    "[drp]": (_D("0.00000005"), (("m", 3),), False),
}

# Calendar keywords -> the unit they are compared as.
CALENDAR_UNITS: dict[str, str] = {
    "year": "[cal_year]", "years": "[cal_year]", "month": "[cal_month]", "months": "[cal_month]",
    "week": "wk", "weeks": "wk", "day": "d", "days": "d", "hour": "h", "hours": "h",
    "minute": "min", "minutes": "min", "second": "s", "seconds": "s",
    "millisecond": "ms", "milliseconds": "ms",
}  # fmt: skip
_CALENDAR: dict[str, tuple[Decimal, Dimension]] = {
    "[cal_year]": (_D(12), (("[cal_month]", 1),)),
    "[cal_month]": (_D(1), (("[cal_month]", 1),)),
}
_OFFSET_UNITS: dict[str, tuple[Decimal, Decimal]] = {  # value_in_K = (value + add) * mul
    "Cel": (_D("273.15"), _D(1)),
    "[degF]": (_D("459.67"), _D(5) / _D(9)),
    "K": (_D(0), _D(1)),
}
_TERM_RE = re.compile(r"(\{[^}]*\})|(10[*^][+-]?\d+)|(\d+)|([^.\d+-]*[^.\d+-]|\[[^\]]*\])([+-]?\d+)?")


def _atom(text: str) -> tuple[Decimal, Dimension] | None:
    entry = _ATOMS.get(text)
    if entry is not None:
        return entry[0], entry[1]
    for size in (2, 1):
        prefix, rest = text[:size], text[size:]
        if prefix in _PREFIXES:
            base = _ATOMS.get(rest)
            if base is not None and base[2]:
                return _PREFIXES[prefix] * base[0], base[1]
    return None


def _combine(dims: dict[str, int], dim: Dimension, power: int) -> None:
    for base, exp in dim:
        dims[base] = dims.get(base, 0) + exp * power


def _split(unit: str) -> list[tuple[str, str]] | None:
    """Split a unit at top-level ``.`` and ``/`` into (operator, term) pairs."""
    out: list[tuple[str, str]] = []
    depth, start, op = 0, 0, "."
    for i, ch in enumerate(unit):
        if ch in "([{":
            depth += 1
        elif ch in ")]}":
            depth -= 1
        elif depth == 0 and ch in "./":
            if i > start:
                out.append((op, unit[start:i]))
            elif i > 0:
                return None
            op, start = ch, i + 1
    if depth != 0 or start >= len(unit):
        return None
    out.append((op, unit[start:]))
    return out


def _parse(unit: str) -> tuple[Decimal, dict[str, int]] | None:
    pieces = _split(unit)
    if pieces is None:
        return None
    factor, dims = _D(1), dict[str, int]()
    for op, term in pieces:
        power = 1 if op == "." else -1
        parsed = _parse_term(term)
        if parsed is None:
            return None
        term_factor, term_dims = parsed
        factor = factor * term_factor if power == 1 else factor / term_factor
        _combine(dims, tuple(term_dims.items()), power)
    return factor, dims


def _parse_term(term: str) -> tuple[Decimal, dict[str, int]] | None:
    if term.startswith("(") and term.endswith(")"):
        return _parse(term[1:-1])
    m = _TERM_RE.fullmatch(term)
    if m is None:
        return None
    annotation, power10, number, atom, exponent = m.groups()
    if annotation is not None:
        return _D(1), {}
    if power10 is not None:
        return _D(10) ** int(power10[3:]), {}
    if number is not None:
        return _D(number), {}
    found = _atom(atom.split("{", 1)[0] if not atom.startswith("[") else atom)
    if found is None:
        return None
    exp = int(exponent) if exponent else 1
    dims: dict[str, int] = {}
    _combine(dims, found[1], exp)
    return found[0] ** exp, dims


def canonical(unit: str) -> tuple[Decimal, Dimension] | None:
    """The factor to base units and the dimension of a UCUM unit (or calendar keyword), or None
    when the unit is not understood."""
    unit = CALENDAR_UNITS.get(unit, unit)
    if unit in _CALENDAR:
        return _CALENDAR[unit]
    parsed = _parse(unit)
    if parsed is None:
        return None
    factor, dims = parsed
    return factor, tuple(sorted((b, e) for b, e in dims.items() if e != 0))


def convert(value: Decimal, unit: str, target: str) -> Decimal | None:
    """``value unit`` expressed in ``target``, or None when the units are not commensurable."""
    if unit == target:
        return value
    if unit in _OFFSET_UNITS and target in _OFFSET_UNITS:
        add, mul = _OFFSET_UNITS[unit]
        kelvin = (value + add) * mul
        add_t, mul_t = _OFFSET_UNITS[target]
        return kelvin / mul_t - add_t
    source, dest = canonical(unit), canonical(target)
    if source is None or dest is None or source[1] != dest[1]:
        return None
    return value * source[0] / dest[0]
