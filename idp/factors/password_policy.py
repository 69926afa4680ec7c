"""What a password must be: generated initial passwords, and the rules for one a
person chooses (issue 13, item 1; NIST SP 800-63B §5.1.1.2).

* A generated password (initial, or reset by staff) has :data:`GENERATED_LENGTH`
  characters of :data:`ALPHABET`, drawn with :mod:`secrets`. The alphabet leaves out
  characters that look alike (0/O/o, 1/l/I/i, 2/Z, 5/S, 8/B/b, u/v in lower case): 12 characters of
  its 48 carry about 67 bits.
* A chosen password has at least ``IDP_PASSWORD_MIN_LENGTH`` characters (default 10)
  and at most :data:`MAX_LENGTH`; it is not the account's e-mail address, its local
  part or the person's name; and it is not in the list of common and breached
  passwords shipped in ``idp/factors/data/common-passwords.txt.gz`` (compared
  lower-case, in O(1): the list is a frozenset loaded once per process). No
  composition rules (NIST advises against them).
"""

from __future__ import annotations

import gzip
import secrets
from functools import cache
from pathlib import Path

from idp.services import settings

ALPHABET = "ACDEFGHJKLMNPQRTUVWXYacdefghjkmnpqrstwxyz34679#+"
GENERATED_LENGTH = 12
MAX_LENGTH = 256
COMMON_LIST = Path(__file__).resolve().parent / "data" / "common-passwords.txt.gz"


def generate() -> str:
    """A new system-generated password (:data:`GENERATED_LENGTH` characters of
    :data:`ALPHABET` from the OS CSPRNG)."""
    return "".join(secrets.choice(ALPHABET) for _ in range(GENERATED_LENGTH))


@cache
def common_passwords() -> frozenset[str]:
    """The shipped list of common and breached passwords, lower-case (read once)."""
    with gzip.open(COMMON_LIST, "rt", encoding="utf-8") as handle:
        return frozenset(line.strip().lower() for line in handle if line.strip())


def problem(password: str, email: str, names: tuple[str, ...] = ()) -> str | None:
    """Why ``password`` may not be chosen (a message key: ``password_too_short``,
    ``password_too_long``, ``password_personal``, ``password_common``), None when it
    may."""
    if len(password) < settings().password_min_length:
        return "password_too_short"
    if len(password) > MAX_LENGTH:
        return "password_too_long"
    folded = password.strip().casefold()
    personal = {email.casefold(), email.split("@", 1)[0].casefold()}
    personal |= {n.strip().casefold() for n in names if len(n.strip()) >= 3}
    joined = "".join(n.strip().casefold() for n in names)
    if joined:
        personal.add(joined)
    if folded in personal:
        return "password_personal"
    if folded in common_passwords() or password.lower() in common_passwords():
        return "password_common"
    return None
