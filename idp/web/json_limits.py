"""JSON from requests, parsed with bounded cost: the one home of the nesting limit.

Python's parser recurses once per nesting level, so a body of a few kilobytes of
``[[[[...`` reaches the interpreter's recursion limit and would end as a 500.
:func:`loads` measures the nesting depth first, without recursion and in one pass
over the text (strings are skipped whole by one regular expression, so brackets
inside them do not count), and refuses anything deeper than :data:`MAX_DEPTH`
before the parser sees it. It also refuses ``NaN`` and ``Infinity``, which are not
JSON (RFC 8259 §6).

Every JSON request body goes through here: SCIM's ``body()`` calls :func:`loads`,
and :class:`LimitedJSONProvider` routes Flask's ``request.get_json`` through it too.
JSON inside tokens is checked with :func:`compact_jws_within_depth` where a library
would parse it before the signature is verified (client assertions at ``/token``).
"""

from __future__ import annotations

import base64
import json
import re
from typing import Any

from flask.json.provider import DefaultJSONProvider

MAX_DEPTH = 32
"""Deepest nesting of arrays and objects accepted; SCIM documents need about 6."""

# A whole string literal (escapes included) or one bracket. Strings are consumed by
# the regex engine without backtracking (the "unrolled loop" form), and a string that
# is never closed runs to the end of the text (``\Z``) instead of failing there and
# being tried again from every later quote, so the whole scan is linear in the text.
_TOKEN = re.compile(r'"[^"\\]*(?:\\.[^"\\]*)*(?:"|\Z)|[\[\]{}]', re.DOTALL)


class JsonTooDeep(ValueError):
    """The text nests arrays or objects deeper than allowed."""

    def __init__(self, limit: int) -> None:
        super().__init__(f"JSON nested deeper than {limit} levels")
        self.limit = limit


def nesting_depth(text: str, limit: int = MAX_DEPTH) -> int:
    """The deepest nesting of arrays/objects in ``text``, counted up to ``limit + 1``
    (the scan stops there). Linear in ``len(text)``, no recursion. For invalid JSON
    the number is only an estimate; the parser refuses such text anyway."""
    depth = deepest = 0
    for match in _TOKEN.finditer(text):
        token = match.group()
        if token == "[" or token == "{":
            depth += 1
            if depth > deepest:
                deepest = depth
                if deepest > limit:
                    break
        elif token == "]" or token == "}":
            depth -= 1
    return deepest


def _no_constant(name: str) -> Any:
    raise ValueError(f"{name} is not JSON")


def loads(raw: str | bytes | bytearray, max_depth: int = MAX_DEPTH) -> Any:
    """Parse JSON text from a request.

    Raises :class:`JsonTooDeep` (a ``ValueError``) when it nests deeper than
    ``max_depth``, and ``ValueError`` (``UnicodeDecodeError`` or
    ``json.JSONDecodeError`` included) for anything that is not JSON. Never raises
    ``RecursionError``. Bytes may be UTF-8, UTF-16 or UTF-32, as RFC 8259 §8.1 and
    :func:`json.loads` allow.
    """
    if isinstance(raw, (bytes, bytearray)):
        text = bytes(raw).decode(json.detect_encoding(raw), "strict")
    else:
        text = raw
    if nesting_depth(text, max_depth) > max_depth:
        raise JsonTooDeep(max_depth)
    return json.loads(text, parse_constant=_no_constant)


class LimitedJSONProvider(DefaultJSONProvider):
    """Flask's JSON provider with :func:`loads` for parsing, so ``request.get_json``
    (which answers a ``ValueError`` with a 400) has the same depth limit."""

    def loads(self, s: str | bytes, **kwargs: Any) -> Any:
        return loads(s)


def compact_jws_within_depth(token: str, max_depth: int = MAX_DEPTH) -> bool:
    """Whether the header and payload of a compact JWS/JWT nest at most ``max_depth``
    deep. For libraries that parse a token's JSON before its signature is checked
    (authlib reads a client assertion's claims to find the client): call this first.
    Anything that is not base64url of UTF-8 text counts as within (the library's own
    parsing refuses it); the cost is linear in the token's length."""
    for segment in token.split(".")[:2]:
        try:
            text = base64.urlsafe_b64decode(segment + "=" * (-len(segment) % 4)).decode()
        except ValueError:  # binascii.Error and UnicodeDecodeError are ValueErrors
            continue
        if nesting_depth(text, max_depth) > max_depth:
            return False
    return True
