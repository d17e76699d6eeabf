"""Fixtures of the reliability suite."""

from __future__ import annotations

import uuid

import pytest


@pytest.fixture
def role(pg_url):
    """make(password) -> name: a login role with that password and a schema of the same name it owns (dropped after)."""
    import psycopg2
    from psycopg2 import sql

    admin = psycopg2.connect(pg_url)
    admin.autocommit = True
    made = []

    def make(password: str):
        name = "flow_secret_" + uuid.uuid4().hex[:8]
        with admin.cursor() as cur:
            cur.execute(sql.SQL("CREATE ROLE {} LOGIN PASSWORD %s").format(sql.Identifier(name)), (password,))
            cur.execute(sql.SQL("CREATE SCHEMA {} AUTHORIZATION {}").format(sql.Identifier(name),
                                                                            sql.Identifier(name)))
        made.append(name)
        return name

    yield make
    with admin.cursor() as cur:
        for name in made:
            cur.execute(sql.SQL("DROP SCHEMA {} CASCADE").format(sql.Identifier(name)))
            cur.execute(sql.SQL("DROP ROLE {}").format(sql.Identifier(name)))
    admin.close()
