from __future__ import annotations

from fractions import Fraction

import pytest

from app.raycluster.quantity import (
    QuantityError,
    ceil_int,
    format_bytes,
    format_cpu,
    parse_quantity,
)

GI = 2**30


@pytest.mark.parametrize(
    ("text", "value"),
    [
        ("500m", Fraction(1, 2)),
        ("1", Fraction(1)),
        ("2Gi", Fraction(2 * GI)),
        ("1G", Fraction(10**9)),
        ("1e3", Fraction(1000)),
        ("1E3", Fraction(1000)),
        ("0.5", Fraction(1, 2)),
        (".5", Fraction(1, 2)),
        ("1.5Gi", Fraction(3 * GI, 2)),
        ("512Mi", Fraction(512 * 2**20)),
        ("1Ki", Fraction(1024)),
        ("1k", Fraction(1000)),
        ("250u", Fraction(1, 4000)),
        ("+2", Fraction(2)),
        ("-1", Fraction(-1)),
    ],
)
def test_parse_quantity_strings(text: str, value: Fraction) -> None:
    assert parse_quantity(text) == value


@pytest.mark.parametrize(("raw", "value"), [(4, Fraction(4)), (0.25, Fraction(1, 4))])
def test_parse_quantity_numbers(raw: int | float, value: Fraction) -> None:
    assert parse_quantity(raw) == value


@pytest.mark.parametrize(
    "garbage",
    [
        "",
        "abc",
        "Gi",
        "1.2.3",
        "1Gb",
        "1K",
        "1 Gi",
        "--1",
        "1e",
        "0x10",
        "1e100",
        True,
        float("nan"),
        float("inf"),
    ],
)
def test_parse_quantity_rejects_garbage(garbage: str | float) -> None:
    with pytest.raises(QuantityError):
        parse_quantity(garbage)


@pytest.mark.parametrize(("text", "whole"), [("500m", 1), ("1", 1), ("1500m", 2), ("2", 2)])
def test_ceil_int_rounds_up_like_quantity_value(text: str, whole: int) -> None:
    assert ceil_int(parse_quantity(text)) == whole


@pytest.mark.parametrize(
    ("value", "text"),
    [
        (Fraction(2), "2"),
        (Fraction(0), "0"),
        (Fraction(1, 2), "500m"),
        (Fraction(3, 2), "1500m"),
        (Fraction(1, 3), "334m"),
    ],
)
def test_format_cpu_canonical(value: Fraction, text: str) -> None:
    assert format_cpu(value) == text


@pytest.mark.parametrize(
    ("value", "text"),
    [
        (Fraction(0), "0"),
        (Fraction(2 * GI), "2Gi"),
        (Fraction(3 * GI, 2), "1536Mi"),
        (Fraction(1024), "1Ki"),
        (Fraction(10**9), "1G"),
        (Fraction(1000), "1k"),
        (Fraction(1023), "1023"),
        (Fraction(1, 2), "1"),
    ],
)
def test_format_bytes_canonical(value: Fraction, text: str) -> None:
    assert format_bytes(value) == text


@pytest.mark.parametrize("text", ["2Gi", "1G", "512Mi", "3k", "7"])
def test_format_bytes_round_trips_canonical_input(text: str) -> None:
    assert format_bytes(parse_quantity(text)) == text
