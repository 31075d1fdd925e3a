"""Kubernetes resource quantities: exact parsing and canonical formatting."""

from __future__ import annotations

import math
import re
from fractions import Fraction

_BINARY = {"Ki": 2**10, "Mi": 2**20, "Gi": 2**30, "Ti": 2**40, "Pi": 2**50, "Ei": 2**60}
# Decimal suffixes as powers of ten.
_DECIMAL = {"n": -9, "u": -6, "m": -3, "": 0, "k": 3, "M": 6, "G": 9, "T": 12, "P": 15, "E": 18}
_QUANTITY = re.compile(
    r"^(?P<sign>[+-]?)(?P<whole>[0-9]*)(?:\.(?P<part>[0-9]*))?"
    r"(?:(?P<suffix>Ki|Mi|Gi|Ti|Pi|Ei|[numkMGTPE])|[eE](?P<exp>[+-]?[0-9]+))?$"
)


class QuantityError(ValueError):
    """A string that is not a Kubernetes quantity."""


def parse_quantity(value: str | int | float) -> Fraction:
    """The exact value of a quantity such as ``500m``, ``2Gi`` or ``1e3``."""
    if isinstance(value, bool):
        raise QuantityError(f"{value!r} is not a quantity")
    if isinstance(value, int):
        return Fraction(value)
    if isinstance(value, float):
        if not math.isfinite(value):
            raise QuantityError(f"{value!r} is not a quantity")
        return Fraction(value)
    if not isinstance(value, str):
        raise QuantityError(f"{value!r} is not a quantity")
    match = _QUANTITY.match(value.strip())
    if match is None or not (match["whole"] or match["part"]):
        raise QuantityError(f"{value!r} is not a quantity")
    # Integer arithmetic, one Fraction at the end: this runs for every container on every sync.
    part = match["part"] or ""
    numerator = int((match["whole"] or "0") + part)
    exponent = -len(part)
    suffix = match["suffix"] or ""
    if match["exp"] is not None:
        shift = int(match["exp"])
        if abs(shift) > 30:
            raise QuantityError(f"{value!r} is out of range")
        exponent += shift
    elif suffix in _BINARY:
        numerator *= _BINARY[suffix]
    else:
        exponent += _DECIMAL[suffix]
    if match["sign"] == "-":
        numerator = -numerator
    if exponent >= 0:
        return Fraction(numerator * 10**exponent)
    return Fraction(numerator, 10**-exponent)


def ceil_int(value: Fraction) -> int:
    """Round up to a whole number, as Kubernetes' ``Quantity.Value()`` does."""
    return math.ceil(value)


def format_cpu(value: Fraction) -> str:
    """CPU in canonical form: whole cores as ``2``, otherwise millicores (``1500m``)."""
    if value.denominator == 1:
        return str(value.numerator)
    return f"{math.ceil(value * 1000)}m"


def format_bytes(value: Fraction) -> str:
    """Bytes in canonical form: the largest exact binary suffix, then decimal, else plain."""
    amount = math.ceil(value)
    if amount == 0:
        return "0"
    for suffix, factor in reversed(_BINARY.items()):
        if amount % factor == 0:
            return f"{amount // factor}{suffix}"
    for suffix in ("E", "P", "T", "G", "M", "k"):
        factor = 10 ** _DECIMAL[suffix]
        if amount % factor == 0:
            return f"{amount // factor}{suffix}"
    return str(amount)
