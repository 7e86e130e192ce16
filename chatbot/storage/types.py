"""Column types that behave the same on SQLite and PostgreSQL."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from typing import Any

from sqlalchemy.engine import Dialect
from sqlalchemy.types import DateTime, Numeric, TypeDecorator, TypeEngine, UserDefinedType


class UTCDateTime(TypeDecorator[dt.datetime]):
    """Timezone-aware UTC datetimes on every backend (SQLite drops the offset; we put it back)."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: dt.datetime | None, dialect: Any) -> dt.datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given to a UTC column")
        return value.astimezone(dt.UTC)

    def process_result_value(self, value: dt.datetime | None, dialect: Any) -> dt.datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=dt.UTC) if value.tzinfo is None else value.astimezone(dt.UTC)


def utcnow() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


def plain(value: Decimal) -> Decimal:
    """``Decimal('3600.0000')`` → ``Decimal('3600')``, ``Decimal('190.2500')`` → ``Decimal('190.25')``: the
    value without the column's padding (and never in exponent form), so it prints as it was written."""
    if value == value.to_integral_value():
        return value.quantize(_ONE)
    return value.normalize()


_ONE = Decimal(1)


class _RawNumeric(UserDefinedType[Any]):
    """``NUMERIC(24, 4)`` with no conversion by SQLAlchemy: on SQLite, which has no decimal type, the
    generic ``Numeric`` turns every value read into a float and formats it back into a ``Decimal`` (tens
    of microseconds a value); :class:`Amount` converts the plain int (or float) itself."""

    cache_ok = True

    def get_col_spec(self, **kw: Any) -> str:
        return "NUMERIC(24, 4)"


class Amount(TypeDecorator[Decimal]):
    """Money's amount, exact: ``NUMERIC(24, 4)`` (whole won, or dollars to the sub-dollar tick), read back
    as a :class:`~decimal.Decimal` without padding (:func:`plain`). A float is refused. The currency sits
    in its own column beside it."""

    impl = Numeric(24, 4, asdecimal=True)
    cache_ok = True

    def load_dialect_impl(self, dialect: Dialect) -> TypeEngine[Any]:
        if dialect.name == "sqlite":
            return dialect.type_descriptor(_RawNumeric())
        return dialect.type_descriptor(self.impl_instance)

    def process_bind_param(self, value: Decimal | int | None, dialect: Any) -> Decimal | int | str | None:
        if value is None:
            return None
        if isinstance(value, float):
            raise TypeError("money is never a float")
        if dialect.name == "sqlite":  # no native decimal: whole numbers as integers (stored exactly), else text
            return int(value) if value == int(value) else str(value)
        return value

    def process_result_value(self, value: Any, dialect: Any) -> Decimal | None:
        if value is None:
            return None
        if isinstance(value, int):  # SQLite's INTEGER: a whole amount, stored exactly
            return Decimal(value)
        if isinstance(value, float):  # SQLite's REAL for a fraction: its shortest repr is what was stored
            value = repr(value)
        return plain(Decimal(value))
