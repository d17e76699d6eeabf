"""Find the password in a libpq connection string (URI or key=value), to hide it and refuse what libpq would misread.

libpq reads `postgresql://user:password@host/db?password=...` by scanning the text after `//` up to
the first `@` or `/`: a password holding a raw `@` or `/` is cut there and its rest is read as a host
or database name, which libpq then prints in its errors; a `%` starts a percent escape. In
key=value strings an unquoted value ends at the first blank. So the password is found here more
generously than libpq finds it (up to the *last* `@`; up to the next `&key=` or ` key=`), which
hides everything a user may have meant as the password, and `misread` says when libpq would read
a different password than the one written, so flow can refuse the string without ever passing it
on (libpq's own message would quote the password's pieces).
"""

from __future__ import annotations

import re
from urllib.parse import unquote

MASK = "***"
# Below this length a password is not searched for in server messages: replacing every "ab" in a
# message would garble it, and such a password protects nothing.
MIN_SEARCHED = 4

_URI_PREFIX = re.compile(r"^postgres(?:ql)?://", re.IGNORECASE)
# In a URI's query: password=VALUE up to the next &key= (a raw & inside the value stays hidden).
_QUERY_PASSWORD = re.compile(r"([?&]password=)(.*?)(?=&[A-Za-z_]+=|\Z)", re.IGNORECASE | re.DOTALL)
# In key=value text: a quoted value, or an unquoted one up to the next ` key=` (blanks included).
_KV_PASSWORD = re.compile(
    r"(\bpassword\s*=\s*)('(?:[^'\\]|\\.)*'?|.*?(?=\s+[A-Za-z_]+\s*=|\s*\Z))", re.IGNORECASE | re.DOTALL)


def is_uri(dsn: str) -> bool:
    return bool(_URI_PREFIX.match(dsn))


def _userinfo_password_span(dsn: str) -> tuple[int, int] | None:
    """Where the password of `user:password@` lies in a URI, taking the last `@` as its end."""
    start = _URI_PREFIX.match(dsn).end()
    at = dsn.rfind("@", start)
    if at < 0:
        return None
    colon = dsn.find(":", start, at)
    if colon < 0:
        return None
    return colon + 1, at


def password_spans(dsn: str) -> list[tuple[int, int]]:
    """Every (start, end) of password text in the DSN, as the user wrote it."""
    spans = []
    if is_uri(dsn):
        span = _userinfo_password_span(dsn)
        if span is not None:
            spans.append(span)
        query_from = span[1] if span else 0
        spans.extend(m.span(2) for m in _QUERY_PASSWORD.finditer(dsn, query_from))
    else:
        spans.extend(m.span(2) for m in _KV_PASSWORD.finditer(dsn))
    return [(a, b) for a, b in spans if b > a]


def redact(dsn: str) -> str:
    """The DSN with every password replaced by ***."""
    out = dsn
    for start, end in sorted(password_spans(dsn), reverse=True):
        out = out[:start] + MASK + out[end:]
    return out


def written_passwords(dsn: str) -> list[str]:
    """The passwords as written and as libpq decodes them (percent escapes in URIs, quotes in key=value)."""
    found = []
    for start, end in password_spans(dsn):
        text = dsn[start:end]
        found.append(text)
        if is_uri(dsn):
            found.append(unquote(text))
        elif text.startswith("'"):
            found.append(re.sub(r"\\(.)", r"\1", text[1:-1] if text.endswith("'") and len(text) > 1 else text[1:]))
    return [p for p in dict.fromkeys(found) if p]


def misread(dsn: str) -> str | None:
    """Why libpq would not read the password as written (a hint on how to write it), or None when it would."""
    passwords = [dsn[a:b] for a, b in password_spans(dsn)]
    if not passwords:
        return None
    try:
        from psycopg2.extensions import parse_dsn

        parsed = parse_dsn(dsn).get("password")
    except Exception:  # noqa: BLE001 - libpq's message would quote the password: say it in our words
        parsed = None
        unreadable = True
    else:
        unreadable = False
    if is_uri(dsn):
        if unreadable or parsed is None or all(parsed != _decode_or_none(p) for p in passwords):
            return ("libpq cannot read the password in this URL: percent-encode its special characters"
                    " (@ as %40, / as %2F, % as %25, ? as %3F, # as %23, & as %26, space as %20)")
        return None
    if unreadable or parsed is None or parsed not in written_passwords(dsn):
        return "libpq cannot read the password in this connection string: quote it, password='...'"
    return None


def _decode_or_none(text: str) -> str | None:
    """The percent-decoded text, or None where libpq would reject an escape (% not followed by two hex digits)."""
    if re.search(r"%(?![0-9A-Fa-f]{2})", text):
        return None
    return unquote(text)


def scrub(message: str, dsn: str) -> str:
    """The message with every password of the DSN (as written or decoded) replaced by ***."""
    for password in sorted(written_passwords(dsn), key=len, reverse=True):
        if len(password) >= MIN_SEARCHED:
            message = message.replace(password, MASK)
    return message
