"""Alembic's environment for digest: runs on the connection that store/migrate.py passes in.

No alembic.ini and no URL here: upgrade_schema() owns the connection, its lock and transaction.
"""

from __future__ import annotations

from alembic import context
from sqlalchemy.engine import Connection

from digest.store.models import Base

target_metadata = Base.metadata


def _run(connection: Connection) -> None:
    context.configure(
        connection=connection,
        target_metadata=target_metadata,
        # SQLite cannot ALTER most things: later migrations rebuild tables in batch mode.
        render_as_batch=connection.dialect.name == "sqlite",
        compare_type=True,
    )
    with context.begin_transaction():
        context.run_migrations()


connection = context.config.attributes.get("connection")
if connection is None:
    raise RuntimeError("digest migrations run through digest.store.migrate.upgrade_schema()")
_run(connection)
