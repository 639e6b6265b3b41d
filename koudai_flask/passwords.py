"""Staff and buyer passwords: hashed with the method ``KOUDAI_PASSWORD_HASH`` names.

A stored hash carries its own method and parameters, so every stored hash keeps checking
after the setting changes; a login that succeeds with a hash of another method or cost
stores the password hashed the current way (``outdated``). A check without a stored hash
(no such login) still hashes once, with the current method, so the time of a refusal does
not tell whether the login exists.
"""

from __future__ import annotations

import functools
from typing import Protocol

from werkzeug.security import check_password_hash, generate_password_hash

from koudai_flask.config import config_value

# A method that costs about a millisecond, for test suites that log many people in: never
# for a site's real passwords.
FOR_TESTS = "pbkdf2:sha256:1000"


class HasPassword(Protocol):
    password_hash: str | None


def hash_password(password: str) -> str:
    return generate_password_hash(password, method=config_value("PASSWORD_HASH"))


def verify(holder: HasPassword | None, password: str) -> bool:
    """Whether ``password`` is the login's (None: no such login, refused after one hash as
    long as a real check); a hash of another method or cost is renewed on success."""
    stored = holder.password_hash if holder is not None else None
    if holder is None or not stored:
        check_password_hash(_stand_in(config_value("PASSWORD_HASH")), password)
        return False
    if not check_password_hash(stored, password):
        return False
    if outdated(stored):  # KOUDAI_PASSWORD_HASH changed since it was stored
        holder.password_hash = hash_password(password)
    return True


def outdated(stored: str) -> bool:
    """Whether ``stored`` was made with another method or cost than the configured one."""
    current = _stand_in(config_value("PASSWORD_HASH"))
    return stored.split("$", 1)[0] != current.split("$", 1)[0]


@functools.lru_cache(maxsize=8)
def _stand_in(method: str) -> str:
    """A hash of a password nobody has, made once per method."""
    return generate_password_hash("no such login", method=method)
