"""The direction of the arrows (README "Architecture", ../shared/ARCHITECTURE.md), read off the
import graph: every ``import chatbot…`` in every module, at any depth (lazy imports count too).

A new import that breaks a rule fails here. The edges listed in ``DEBT`` break a rule today and are
the restructuring's to remove; an entry that no longer occurs must be deleted from the list, so the
list only ever shrinks."""

from __future__ import annotations

import ast
import functools
from pathlib import Path

import chatbot

ROOT = Path(chatbot.__file__).parent

# Which top-level parts of ``chatbot`` each part may import (its own always). Infrastructure that
# everything may use: config, logs, __version__.
INFRA = {"config", "logs", "__version__", "__init__"}
ALLOWED: dict[str, set[str]] = {
    "__main__": {"*"},  # the entry point wires everything
    "runtime": {"*"},  # builds every service (but no front end: see FRONT_ENDS)
    "telegram": {"service", "metrics", "http_server"},
    "console": {"service", "telegram"},  # the terminal front end drives the same PTB Application
    "service": {"kis", "broker", "storage", "alerts", "markets", "symbols", "market_hours", "charts", "security",
                "tasks"},
    "alerts": {"kis", "storage", "markets", "tasks"},
    "kis": {"markets", "broker", "security", "tasks"},  # security: the credential and token value types
    "broker": {"markets"},  # the broker port: domain models in Money, the Broker protocol
    "markets": set(),
    "storage": {"security"},
    "security": set(),
    "tasks": set(),  # how a background task is stopped: depends on nothing
    "sim": {"kis", "markets", "storage", "market_hours"},
    "charts": {"kis"},
    "symbols": {"markets"},
    "market_hours": {"markets"},  # moved to markets.krx_hours; the old names stay importable
    "metrics": set(),
    "config": {"market_hours"},
    "logs": set(),
    "http_server": {"metrics"},
}
FRONT_ENDS = {"telegram", "console", "__main__"}  # imported by the entry point only (console drives telegram)
# The simulator shares no code with the client beyond protocol constants and field tables.
SIM_MAY_USE_FROM_KIS = {"chatbot.kis.protocol", "chatbot.kis.overseas_protocol"}

DEBT: set[tuple[str, str]] = set()


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT.parent).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _is_module(name: str) -> bool:
    rel = Path(*name.split("."))
    return (ROOT.parent / rel).with_suffix(".py").exists() or (ROOT.parent / rel / "__init__.py").exists()


@functools.cache
def import_edges() -> frozenset[tuple[str, str]]:
    edges: set[tuple[str, str]] = set()
    for path in ROOT.rglob("*.py"):
        module = _module_name(path)
        package = module if path.name == "__init__.py" else module.rpartition(".")[0]
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Import):
                edges |= {(module, a.name) for a in node.names if a.name.split(".")[0] == "chatbot"}
            elif isinstance(node, ast.ImportFrom):
                if node.level:
                    base = package.split(".")[: len(package.split(".")) - node.level + 1]
                    target = ".".join(base + ([node.module] if node.module else []))
                else:
                    target = node.module or ""
                if target.split(".")[0] != "chatbot":
                    continue
                for alias in node.names:  # `from chatbot.kis import protocol` imports chatbot.kis.protocol
                    sub = f"{target}.{alias.name}"
                    edges.add((module, sub if _is_module(sub) else target))
    return frozenset((a, b) for a, b in edges if a != b)


def _part(module: str) -> str:
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else "__init__"


def broken_rules(edges: frozenset[tuple[str, str]]) -> set[tuple[str, str]]:
    broken = set()
    for source, target in edges:
        src, dst = _part(source), _part(target)
        if src == dst or dst in INFRA:
            continue
        allowed = ALLOWED.get(src)
        assert allowed is not None, f"{source}: a new top-level part needs its row in ALLOWED"
        if dst in FRONT_ENDS:
            if not (src == "__main__" or src == "console" and dst == "telegram"):
                broken.add((source, target))
        elif (("*" not in allowed and dst not in allowed)
              or (src == "sim" and dst == "kis" and target not in SIM_MAY_USE_FROM_KIS)):
            broken.add((source, target))
    return broken


def test_the_graph_is_read() -> None:
    edges = import_edges()
    assert ("chatbot.runtime", "chatbot.storage.leases") in edges
    assert ("chatbot.sim.rest", "chatbot.kis.protocol") in edges  # `from chatbot.kis import protocol`


def test_imports_point_one_way() -> None:
    new = broken_rules(import_edges()) - DEBT
    assert not new, "imports against the architecture's arrows:\n" + "\n".join(
        f"  {a} -> {b}" for a, b in sorted(new))


def test_the_debt_list_only_shrinks() -> None:
    paid = DEBT - broken_rules(import_edges())
    assert not paid, "no longer imported; delete from DEBT:\n" + "\n".join(f"  {a} -> {b}" for a, b in sorted(paid))


def test_nothing_imports_a_front_end_but_the_entry_point() -> None:
    importers = {a for a, b in import_edges() if _part(b) in {"telegram", "console"}
                 and _part(a) not in {"telegram", "console", "__main__"}}
    assert not importers


# The domestic service path talks to the broker port (issue 14, ARCHITECTURE "quotes through the broker"):
# these modules neither import KIS's client side nor touch an account's KIS client or submitter.
THROUGH_THE_PORT = ("chatbot.service.orders", "chatbot.service.market_data", "chatbot.service.account")
KIS_CLIENT_SIDE = {"chatbot.kis.rest", "chatbot.kis.orders", "chatbot.kis.domestic_broker", "chatbot.kis.models"}


def test_the_domestic_service_path_talks_to_the_broker_port() -> None:
    imported = sorted((a, b) for a, b in import_edges() if a in THROUGH_THE_PORT and b in KIS_CLIENT_SIDE)
    assert not imported, f"reaching past the broker port: {imported}"
    for module in THROUGH_THE_PORT:
        path = ROOT.parent / Path(*module.split(".")).with_suffix(".py")
        reached = sorted({node.attr for node in ast.walk(ast.parse(path.read_text(encoding="utf-8")))
                          if isinstance(node, ast.Attribute) and node.attr in ("client", "submitter")})
        assert not reached, f"{module} reaches past the broker port: .{reached}"
