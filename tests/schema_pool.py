"""PostgreSQL test schemas at head, used again: a test's schema still shaped as the migrations leave it
is emptied at its end (its rows deleted, the template's rows and sequence starts put back) and renamed
into the next test's new database, instead of that database's ~60 CREATE statements and this one's
DROP ... CASCADE.

Why: creating a schema at head and dropping it cost ~0.5 s per PostgreSQL test (~280 in the suite),
and each pair leaves ~1,000 dead rows in the system catalogs (pg_class, pg_attribute, pg_depend ...),
which nothing vacuums where autovacuum is off: every later catalog scan reads them. Emptying and
renaming touches no catalog row but the schema's own name.

"Still shaped as the migrations leave it" is read off the catalogs, by index lookups only: every
relation of the template there, no other object in the schema, and every catalog row of those relations
(columns, defaults, constraints, indexes, triggers) written by the one transaction that created them.
A test that altered, added or dropped anything (a migration test going back a revision, a table of its
own) fails that check, and its schema is dropped as before. A schema is only ever taken by the process
that put it in the pool (its name carries the process id), so parallel workers do not share one."""

from __future__ import annotations

import os
import secrets
from dataclasses import dataclass, field
from typing import Any

import psycopg

POOL_PREFIX = "t_pool_"
POOL_SIZE = 4  # more than one database per test is rare; the rest are dropped

# One row: (relations found, catalog rows of theirs, distinct writers of those rows, objects in the
# schema). Index lookups only (relname+namespace, attrelid, adrelid, conrelid, indrelid, tgrelid, and
# pg_depend's reference index): the catalogs of a test database are bloated where autovacuum is off.
SHAPE_SQL = """
WITH ns AS (SELECT oid FROM pg_namespace WHERE nspname = %(schema)s),
rel AS (SELECT oid, xmin FROM pg_class WHERE relname = ANY(%(names)s) AND relnamespace = (SELECT oid FROM ns)),
w AS (SELECT xmin FROM rel
      UNION ALL SELECT a.xmin FROM pg_attribute a WHERE a.attrelid IN (SELECT oid FROM rel)
      UNION ALL SELECT d.xmin FROM pg_attrdef d WHERE d.adrelid IN (SELECT oid FROM rel)
      UNION ALL SELECT k.xmin FROM pg_constraint k WHERE k.conrelid IN (SELECT oid FROM rel)
      UNION ALL SELECT i.xmin FROM pg_index i WHERE i.indrelid IN (SELECT oid FROM rel)
      UNION ALL SELECT t.xmin FROM pg_trigger t WHERE t.tgrelid IN (SELECT oid FROM rel))
SELECT (SELECT count(*) FROM rel), (SELECT count(*) FROM w), (SELECT count(DISTINCT xmin::text) FROM w),
       (SELECT count(*) FROM pg_depend WHERE refclassid = 'pg_namespace'::regclass
                                         AND refobjid = (SELECT oid FROM ns))
"""

LAYOUT_SQL = """
SELECT c.relname, c.relkind FROM pg_class c
WHERE c.relnamespace = (SELECT oid FROM pg_namespace WHERE nspname = %(schema)s) AND c.relkind IN ('r', 'p', 'S', 'i')
"""

FOREIGN_KEYS_SQL = """
SELECT c.relname, f.relname FROM pg_constraint k JOIN pg_class c ON c.oid = k.conrelid
JOIN pg_class f ON f.oid = k.confrelid
WHERE k.contype = 'f' AND c.relnamespace = (SELECT oid FROM pg_namespace WHERE nspname = %(schema)s)
"""


@dataclass
class Layout:
    """What a schema at head holds, read off one just made from the template."""

    names: list[str]  # every table, sequence and index
    tables: list[str]  # in an order rows can be deleted in (a referencing table before the one it references)
    shape: tuple[int, int, int, int]  # SHAPE_SQL's row for it


@dataclass
class SchemaPool:
    base_url: str  # the database, with no search_path
    template_schema: str  # the name the template's SQL uses for its schema
    ready: list[str] = field(default_factory=list)
    layout: Layout | None = None
    data_sql: str = ""  # the template's rows and sequence starts (its INSERTs and setvals)
    taken = 0  # schemas renamed into a new database
    recycled = 0  # schemas emptied into the pool
    enabled = True
    _admin: psycopg.Connection[Any] | None = None  # one connection for creating, emptying and dropping

    def _execute(self, sql: str, params: dict[str, Any] | None = None) -> Any:
        """``sql`` on the pool's own connection (autocommit), opened again once if it broke."""
        for attempt in (1, 2):
            if self._admin is None or self._admin.closed or self._admin.broken:
                self._admin = psycopg.connect(self.base_url, autocommit=True)
                self._admin.execute("SET synchronous_commit = off")  # as the tests' own (conftest.db_url)
            try:
                return self._admin.execute(sql, params)  # type: ignore[arg-type]
            except psycopg.OperationalError:
                self._admin.close()
                if attempt == 2:
                    raise
        raise AssertionError("unreachable")

    def create(self) -> str:
        """A new, empty schema for a test; its name."""
        schema = f"t_{secrets.token_hex(6)}"
        self._execute(f'CREATE SCHEMA "{schema}"')
        return schema

    def use_template(self, template_sql: str) -> None:
        lines = [line for line in template_sql.splitlines()
                 if line.startswith(("INSERT INTO ", "SELECT pg_catalog.setval("))]
        if any(not line.endswith(");") for line in lines):  # a row over several lines: not read that way
            self.enabled = False
        self.data_sql = "\n".join(lines)

    def learn(self, cursor: Any, schema: str) -> None:
        """Read the layout off ``schema``, just made from the template (on the cursor's connection)."""
        if self.layout is not None:
            return
        cursor.execute(LAYOUT_SQL, {"schema": schema})
        relations = [(str(name), str(kind)) for name, kind in cursor.fetchall()]
        cursor.execute(FOREIGN_KEYS_SQL, {"schema": schema})
        references = [(str(child), str(parent)) for child, parent in cursor.fetchall() if child != parent]
        names = sorted(name for name, _ in relations)
        cursor.execute(SHAPE_SQL, {"schema": schema, "names": names})
        shape = tuple(int(v) for v in cursor.fetchone())
        tables = _deletion_order(sorted(name for name, kind in relations if kind in "rp"), references)
        if tables is None or shape[2] != 1:
            self.enabled = False
            return
        self.layout = Layout(names, tables, (shape[0], shape[1], shape[2], shape[3]))

    def take(self, cursor: Any, schema: str) -> bool:
        """Put a pooled schema in the place of ``schema`` (new and empty) in the cursor's transaction;
        False (nothing changed) when there is none to take or it could not be."""
        if not self.ready or not self.enabled:
            return False
        pooled = self.ready.pop()
        cursor.execute("SAVEPOINT schema_pool")
        try:
            cursor.execute(f'DROP SCHEMA "{schema}"; ALTER SCHEMA "{pooled}" RENAME TO "{schema}"')
        except Exception:  # noqa: BLE001 -- the new schema was not empty after all: made the usual way
            cursor.execute("ROLLBACK TO SAVEPOINT schema_pool")
            self.drop(pooled)
            return False
        cursor.execute("RELEASE SAVEPOINT schema_pool")
        self.taken += 1
        return True

    def give_back(self, schema: str) -> None:
        """The test using ``schema`` is over: into the pool if it is still at head, else dropped."""
        if self.enabled and self.layout is not None and len(self.ready) < POOL_SIZE:
            try:
                pooled = self._recycled(schema)
            except psycopg.Error:
                pooled = None
                if self._admin is not None and not self._admin.closed:
                    self._admin.execute("ROLLBACK")  # the statements' own BEGIN
            if pooled is not None:
                self.ready.append(pooled)
                self.recycled += 1
                return
        self.drop(schema)

    def _recycled(self, schema: str) -> str | None:
        layout = self.layout
        assert layout is not None
        pooled = f"{POOL_PREFIX}{os.getpid()}_{secrets.token_hex(4)}"
        row = self._execute(SHAPE_SQL, {"schema": schema, "names": layout.names}).fetchone()
        if row is None or tuple(int(v) for v in row) != layout.shape:
            return None
        # One transaction (statements sent together run as one); a test that left a transaction open
        # on its rows: dropped instead, after 5 s.
        self._execute("BEGIN; SET LOCAL lock_timeout = '5s';\n"
                      + "\n".join(f'DELETE FROM "{schema}"."{table}";' for table in layout.tables)
                      + "\n" + self.data_sql.replace(self.template_schema, f'"{schema}"')
                      + f'\nALTER SCHEMA "{schema}" RENAME TO "{pooled}"; COMMIT;')
        return pooled

    def drop(self, schema: str) -> None:
        self._execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')

    def drop_stale(self) -> None:
        """Drop the pooled schemas of test processes that are gone (killed before they could). Even one
        wrongly judged gone (a process id of another host's) would only make its owner create a schema
        the usual way: :meth:`take` falls back when the rename fails."""
        rows = self._execute("SELECT nspname FROM pg_namespace WHERE nspname LIKE %(prefix)s",
                             {"prefix": POOL_PREFIX.replace("_", "\\_") + "%"}).fetchall()
        for (schema,) in rows:
            pid = str(schema)[len(POOL_PREFIX):].split("_", 1)[0]
            if pid.isdigit() and not _alive(int(pid)):
                self.drop(str(schema))

    def close(self) -> None:
        while self.ready:
            self.drop(self.ready.pop())
        if self._admin is not None:
            self._admin.close()


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # another user's process
        return True
    return True


def _deletion_order(tables: list[str], references: list[tuple[str, str]]) -> list[str] | None:
    """``tables`` with every referencing table before the tables it references; None for a cycle."""
    order: list[str] = []
    left = list(tables)
    while left:
        free = [t for t in left if not any(parent == t and child in left for child, parent in references)]
        if not free:
            return None
        order += free
        left = [t for t in left if t not in free]
    return order
