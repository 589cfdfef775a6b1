"""Creating tables when several replicas start at once.

PostgreSQL's ``CREATE TABLE IF NOT EXISTS`` is not safe against a concurrent
``CREATE`` of the same name: the loser fails with a unique violation on
``pg_type`` instead of finding the table. Replicas of one service start
together, so each service takes a transaction-scoped advisory lock before its
schema statements; the second replica waits, then finds every table made.
"""

from __future__ import annotations

from typing import Any


def lock_schema(cursor: Any, scope: str) -> None:
    """Serialize schema changes of ``scope`` until the current transaction ends.

    ``cursor`` is a psycopg cursor or connection inside a transaction (an
    autocommit connection outside ``transaction()`` would release the lock at
    once).
    """
    cursor.execute("SELECT pg_advisory_xact_lock(hashtext(%s))", (f"modelplane_schema:{scope}",))
