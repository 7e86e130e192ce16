"""``Record.typed()`` (compiled per record class) gives exactly what converting each field through its
typed property gives: same types, same values, Decimals with the same digits and exponent, the same
error for a field no property can read. Frames varied: signs, zeros, empty fields, large numbers,
several records in one frame, domestic and US TRs, through both parsers."""

from __future__ import annotations

import random
from decimal import Decimal, InvalidOperation
from typing import Any

import pytest

from chatbot.kis import frames, overseas_frames
from chatbot.kis.frames import OrderBook, Record, Tick
from chatbot.kis.overseas_frames import UsOrderBook, UsTick

INTS = ["0", "-0", "1", "-1", "7", "100", "-250", "70100", "-70100", "219853241700", "12345678901234567890123", ""]
DECIMALS = ["0", "0.00", "-0.00", "0.14", "-0.14", "-29.99", "30.00", "70050.50", "70050.5", "1.5000", "-236.6900",
            "1000000000000.0001", "12", "-3", ""]
STRINGS = ["005930", "0001A0", "090001", "20261124", "1", "5", "N", "Y", "", "DNASAAPL", "BRK/B"]
FLAGS = ["Y", "N", ""]
RECORD_CLASSES: list[type[Record]] = [Tick, OrderBook, UsTick, UsOrderBook]


def by_property(record: Record) -> dict[int, Any]:
    """Each field through its own typed property (``price``, ``change_rate``, …), by field index."""
    cls = type(record)
    values = {}
    for name, prop in vars(cls).items():
        if isinstance(prop, property) and (prop.__doc__ or "").startswith("field "):
            values[int((prop.__doc__ or "").split()[1])] = getattr(record, name)
    return values


def reference(record: Record) -> tuple[Any, ...]:
    """Every field converted one by one, spelled out: the conversion each property makes."""
    kinds = {i: "int" for i in type(record).INT_FIELDS} | {i: "dec" for i in type(record).DECIMAL_FIELDS} \
        | {i: "flag" for i in type(record).FLAG_FIELDS}
    out: list[Any] = []
    for i, value in enumerate(record):
        kind = kinds.get(i)
        out.append(int(value) if kind == "int" and value else 0 if kind == "int"
                   else Decimal(value) if kind == "dec" and value else Decimal(0) if kind == "dec"
                   else value == "Y" if kind == "flag" else value)
    return tuple(out)


def exactly(values: tuple[Any, ...]) -> list[tuple[type, str]]:
    """Type and text of each value: tells 1.50 from 1.5 and 0 from False, which == does not."""
    return [(type(v), str(v)) for v in values]


def random_record(cls: type[Record], rng: random.Random) -> list[str]:
    ints, decimals, flags = set(cls.INT_FIELDS), set(cls.DECIMAL_FIELDS), set(cls.FLAG_FIELDS)
    return [rng.choice(INTS if i in ints else DECIMALS if i in decimals else FLAGS if i in flags else STRINGS)
            for i in range(len(cls.FIELD_NAMES))]


def assert_typed_like_the_properties(record: Record) -> None:
    typed = record.typed()
    assert exactly(typed) == exactly(reference(record))
    properties = by_property(record)
    assert exactly(tuple(typed[i] for i in sorted(properties))) == exactly(tuple(properties[i] for i in sorted(properties)))


@pytest.mark.parametrize("cls", RECORD_CLASSES, ids=lambda c: c.__name__)
def test_typed_equals_field_by_field_on_varied_frames(cls: type[Record]) -> None:
    rng = random.Random(cls.__name__)
    parse = overseas_frames.parse_frame if cls in (UsTick, UsOrderBook) else frames.parse_frame
    for n in range(400):
        count = 1 if n % 3 else rng.randint(2, 4)  # a frame can carry several records: split once
        records = [random_record(cls, rng) for _ in range(count)]
        # every numeric field present and well formed half the time: the compiled straight-line path
        if n % 2:
            for record in records:
                for i in cls.INT_FIELDS + cls.DECIMAL_FIELDS:
                    record[i] = record[i] or "0"
        parsed = parse(f"0|{cls.TR_ID}|{count:03d}|" + "^".join("^".join(r) for r in records))
        assert [type(r) for r in parsed] == [cls] * count and [list(r) for r in parsed] == records
        for record in parsed:
            assert_typed_like_the_properties(record)


@pytest.mark.parametrize("cls", RECORD_CLASSES, ids=lambda c: c.__name__)
def test_typed_refuses_what_the_properties_refuse(cls: type[Record]) -> None:
    rng = random.Random(1)
    good = random_record(cls, rng)
    for i in cls.INT_FIELDS[:3]:
        bad = good[:i] + ["1.5"] + good[i + 1:]
        with pytest.raises(ValueError):
            cls(bad).typed()
    for i in cls.DECIMAL_FIELDS[:3]:
        bad = good[:i] + ["x"] + good[i + 1:]
        with pytest.raises(InvalidOperation):
            cls(bad).typed()


def test_typed_decimals_keep_their_digits_and_exponent() -> None:
    odd = ["1E+3", "-0E-7", "1_000.5", " 2.50 ", "NaN", "Infinity", "9" * 40 + ".25"]
    for value in odd:
        record = ["1"] * 26
        record[11] = value  # UsTick.price
        typed = UsTick(record).typed()
        assert type(typed[11]) is Decimal and str(typed[11]) == str(Decimal(value)), value


def test_domestic_frames_through_the_us_parser_are_the_same_records() -> None:
    rng = random.Random(3)
    for cls in (Tick, OrderBook):
        for count in (1, 3):
            text = f"0|{cls.TR_ID}|{count:03d}|" + "^".join("^".join(random_record(cls, rng)) for _ in range(count))
            ours, theirs = overseas_frames.parse_frame(text), frames.parse_frame(text)
            assert [type(r) for r in ours] == [type(r) for r in theirs] == [cls] * count
            assert [exactly(r.typed()) for r in ours] == [exactly(r.typed()) for r in theirs]
