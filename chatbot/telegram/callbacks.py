"""Callback data: a short prefix and an opaque value, at most 64 bytes, checked on both ends.

Card buttons (Confirm, Cancel) carry only the random card token; everything the order needs lives in the
database row it names. Selection buttons (a stock among candidates, an order to cancel or revise) carry a
code or an order number: pressing one only prepares a new card, checked against the presser's
own account, so a forged value can do no more than a typed command. A candidate stock for an order typed
(``/buy 삼성 3 70000``) carries the order as typed (``005930_3_70000``: code, quantity, price; no price at
market), its side in its prefix: pressing it is typing ``/buy 005930 3 70000``. So does a candidate for the
other commands naming a stock (``/stop 삼성 3 65000`` → ``xs:005930_3_65000``; ``/alert 삼성 +5%`` →
``xa:005930_+5%``): the command's words with the code for the stock, pressed as that command typed.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

CONFIRM = "oy"
DISMISS = "on"
PICK_QUOTE = "pq"
PICK_CANCEL = "pc"
PICK_REVISE = "pr"
PICK_BUY = "qb"  # a candidate stock for a /buy typed: that buy's card
PICK_SELL = "qs"  # for a /sell typed
DELETE_ALERT = "ad"
COND_CONFIRM = "ky"  # a conditional order's card: arm it
COND_DISMISS = "kn"
COND_CANCEL = "kc"  # /stops: cancel an armed conditional order
# A candidate stock for a command typed (not an order): that command, typed with the stock's code
COMMAND_PICKS = {"alert": "xa", "chart": "xc", "stop": "xs", "tp": "xt", "trail": "xr", "bracket": "xk"}
PICKED_COMMANDS = {kind: command for command, kind in COMMAND_PICKS.items()}
_VALUE = re.compile(r"^[A-Za-z0-9_-]{1,40}$")
_WORDS = re.compile(r"^[A-Za-z0-9_.%+-]{1,60}$")  # a command's words: prices, 2.5%, +5%, above, W
_WORD = re.compile(r"^[A-Za-z0-9.%+-]{1,30}$")
MAX_WORDS = 6  # the code and at most five more (/alert 005930 above 70000 repeat: four)
MAX_BYTES = 64


@dataclass(frozen=True, slots=True)
class Callback:
    kind: str
    value: str


def pack(kind: str, value: str) -> str:
    data = f"{kind}:{value}"
    if not _VALUE.match(value) or len(data.encode()) > MAX_BYTES:
        raise ValueError("callback value out of shape")
    return data


def unpack(data: str | None) -> Callback | None:
    if not data or len(data.encode()) > MAX_BYTES:
        return None
    kind, sep, value = data.partition(":")
    if sep and kind in PICKED_COMMANDS:
        return Callback(kind, value) if _WORDS.match(value) else None
    if not sep or kind not in (CONFIRM, DISMISS, PICK_QUOTE, PICK_CANCEL, PICK_REVISE, PICK_BUY, PICK_SELL,
                                 DELETE_ALERT, COND_CONFIRM, COND_DISMISS, COND_CANCEL) or not _VALUE.match(value):
        return None
    return Callback(kind, value)


def command_pick(command: str, code: str, words: tuple[str, ...]) -> str | None:
    """A candidate stock's button for a command typed: ``xs:005930_3_65000`` is ``/stop 005930 3 65000``.
    None when the command's words cannot be carried (a word outside ``[A-Za-z0-9.%+-]``, or more than 64
    bytes in all): the button can then only quote the stock."""
    kind = COMMAND_PICKS.get(command)
    every = (code, *words)
    if kind is None or len(every) > MAX_WORDS or not all(_WORD.match(w) for w in every):
        return None
    data = f"{kind}:{'_'.join(every)}"
    return data if len(data.encode()) <= MAX_BYTES and _WORDS.match(data.partition(":")[2]) else None


def command_args(value: str) -> list[str] | None:
    """The words of the command a candidate button carries (``["005930", "3", "65000"]``), to be read as the
    typed command's; None when it is not of that shape."""
    words = value.split("_")
    return words if len(words) <= MAX_WORDS and all(_WORD.match(w) for w in words) else None


def order_pick(kind: str, code: str, quantity: int, price: int | None) -> str:
    """A candidate stock's button for an order typed: ``qb:005930_3_70000`` (``qb:005930_3`` at market)."""
    return pack(kind, f"{code}_{quantity}" if price is None else f"{code}_{quantity}_{price}")


def order_args(value: str) -> list[str] | None:
    """The words of the order a candidate button carries (``["005930", "3", "70000"]``), to be read as the
    typed command's; None when it is not of that shape."""
    words = value.split("_")
    return words if 2 <= len(words) <= 3 and all(words) else None
