"""Passwords in libpq connection strings: found where libpq finds them, hidden, refused if libpq would misread them."""

from __future__ import annotations

from urllib.parse import quote

import pytest
from flow.runtime import conninfo, db

# Every character class a password may hold that means something in a URL or a key=value string.
SPECIAL = "?#@/%:&= "


def forms(password: str) -> list[str]:
    """The ways a user may write a DSN holding this password (some of which libpq cannot read)."""
    encoded = quote(password, safe="")
    return [
        f"postgresql://flow:{password}@db.example:5432/analytics",
        f"postgresql://flow:{encoded}@db.example:5432/analytics",
        f"postgres://db.example/analytics?user=flow&password={encoded}&sslmode=disable",
        f"postgres://db.example/analytics?user=flow&password={password}&sslmode=disable",
        f"host=db.example password={password} dbname=analytics",
        "host=db.example password='{}' dbname=analytics".format(password.replace("\\", "\\\\").replace("'", "\\'")),
        f"password = {password}",
    ]


@pytest.mark.parametrize("char", list(SPECIAL), ids=[f"{ord(c):02x}" for c in SPECIAL])
def test_every_special_character_is_redacted_in_every_form(char):
    password = f"Qm{char}ark{char}Pw"
    for dsn in forms(password):
        shown = db.redact(dsn)
        assert password not in shown and quote(password, safe="") not in shown, (dsn, shown)
        assert "***" in shown
        assert "db.example" in shown or dsn.startswith("password")  # the rest stays readable


@pytest.mark.parametrize("char", list(SPECIAL), ids=[f"{ord(c):02x}" for c in SPECIAL])
def test_misread_passwords_are_refused_without_reaching_libpq(char):
    password = f"Qm{char}ark{char}Pw"
    for dsn in forms(password):
        problem = conninfo.misread(dsn)
        if problem is None:
            # libpq reads exactly the password written: the strings it accepts are safe to pass on
            from psycopg2.extensions import parse_dsn

            assert parse_dsn(dsn)["password"] == password, dsn
        else:
            assert password not in problem and "percent-encode" in problem or "quote it" in problem
            with pytest.raises(db.DatabaseError) as info:
                db.connect(dsn)
            assert password not in str(info.value) and "cannot connect: libpq cannot read" in str(info.value)


def test_a_raw_at_sign_is_refused_rather_than_read_as_a_host():
    # libpq would take "p" as the password and "ss@db.example" as the host, and print the host.
    assert conninfo.misread("postgresql://flow:p@ss@db.example/x") is not None
    assert db.redact("postgresql://flow:p@ss@db.example/x") == "postgresql://flow:***@db.example/x"


def test_well_formed_strings_pass_unchanged():
    for dsn in ("postgresql://flow@db/x", "postgresql://db:5432/x?sslmode=require", "service=analytics",
                "host=db dbname=x", "postgresql://flow:s3cr%40t@db/x"):
        assert conninfo.misread(dsn) is None
    assert db.redact("postgresql://db:5432/x?sslmode=require") == "postgresql://db:5432/x?sslmode=require"


def test_server_messages_are_scrubbed_of_the_password_as_written_and_decoded():
    dsn = "postgresql://flow:Qm%3Fark@db/x"
    assert db.one_line('FATAL:  oops "Qm?ark" and Qm%3Fark', dsn) == 'oops "***" and ***'
