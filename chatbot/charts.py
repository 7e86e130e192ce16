"""Candlestick PNGs with volume, from bars (matplotlib's Agg backend; no display, no fonts needed).

Rendering is CPU work: call :func:`render_candles` through ``asyncio.to_thread``. matplotlib is
imported by the first chart drawn, not with this module: it costs most of a second and tens of MB,
and most runs of the bot never draw one.
"""

from __future__ import annotations

import datetime as dt
import io
import threading
from collections.abc import Sequence
from dataclasses import dataclass
from types import ModuleType
from typing import Any

from chatbot.kis.models import Bar

UP, DOWN = "#d62728", "#1f4fd6"  # Korean convention: red up, blue down
_import_lock = threading.Lock()
_loaded: list[Any] = []  # [matplotlib, Figure] once imported


def _matplotlib() -> tuple[ModuleType, Any]:
    """matplotlib (Agg backend chosen) and its Figure class, imported once."""
    with _import_lock:  # charts render in worker threads: one of them imports, the others wait
        if not _loaded:
            import matplotlib

            matplotlib.use("Agg")
            import matplotlib.ticker
            from matplotlib.figure import Figure

            _loaded.extend((matplotlib, Figure))
    return _loaded[0], _loaded[1]


@dataclass(frozen=True, slots=True)
class PlotBar:
    """A bar as drawn: axis coordinates (plotting only; amounts stay Decimal everywhere else)."""

    date: dt.date
    open: float
    high: float
    low: float
    close: float
    volume: int


def plot_bars(bars: Sequence[Any]) -> list[PlotBar]:
    """Any bars with ``date, open, high, low, close, volume`` (whole won, ``Decimal`` or ``Money``)."""
    def num(v: Any) -> float:
        return float(getattr(v, "amount", v))

    return [PlotBar(b.date, num(b.open), num(b.high), num(b.low), num(b.close), int(b.volume)) for b in bars]


def render_candles(bars: Sequence[Bar | PlotBar], title: str, width_px: int = 1000, height_px: int = 640,
                   *, price_decimals: int = 0) -> bytes:
    """PNG bytes of the bars (any order), oldest on the left, volume underneath; the price axis shows
    ``price_decimals`` decimals (dollars: 2)."""
    matplotlib, Figure = _matplotlib()
    ordered = sorted(bars, key=lambda b: b.date)
    fig = Figure(figsize=(width_px / 100, height_px / 100), dpi=100)
    price_ax = fig.add_axes((0.08, 0.30, 0.9, 0.62))
    volume_ax = fig.add_axes((0.08, 0.08, 0.9, 0.18), sharex=price_ax)
    xs = list(range(len(ordered)))
    colors = [UP if b.close >= b.open else DOWN for b in ordered]
    lows = [min(b.open, b.close) for b in ordered]
    heights = [max(abs(b.close - b.open), (b.high - b.low) * 0.01 or 1) for b in ordered]
    price_ax.vlines(xs, [b.low for b in ordered], [b.high for b in ordered], colors=colors, linewidth=0.8)
    price_ax.bar(xs, heights, bottom=lows, width=0.7, color=colors, linewidth=0)
    volume_ax.bar(xs, [b.volume for b in ordered], width=0.7, color=colors, alpha=0.6, linewidth=0)
    price_ax.set_title(title, fontsize=12)
    price_ax.grid(True, linewidth=0.3, alpha=0.5)
    volume_ax.grid(True, linewidth=0.3, alpha=0.5)
    price_ax.yaxis.set_major_formatter(matplotlib.ticker.FuncFormatter(lambda v, _: f"{v:,.{price_decimals}f}"))
    volume_ax.yaxis.set_major_formatter(matplotlib.ticker.FuncFormatter(
        lambda v, _: f"{v / 1e6:.1f}M" if v >= 1e6 else f"{v / 1e3:.0f}K"))
    step = max(1, len(ordered) // 8)
    volume_ax.set_xticks(xs[::step], [b.date.strftime("%Y-%m-%d") for b in ordered][::step], fontsize=8)
    price_ax.tick_params(labelbottom=False)
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png")
    return buffer.getvalue()
