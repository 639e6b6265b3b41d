"""Staff and buyer passwords: hashed with the method ``KOUDAI_PASSWORD_HASH`` names.

A stored hash carries its own method and parameters, so changing the setting changes only
the hashes made from then on; every stored hash keeps checking. A check without a stored
hash (no such login) still hashes once, with the current method, so the time of a refusal
does not tell whether the login exists.
"""

from __future__ import annotations

import functools

from werkzeug.security import check_password_hash, generate_password_hash

from koudai_flask.config import config_value

# A method that costs about a millisecond, for test suites that log many people in: never
# for a site's real passwords.
FOR_TESTS = "pbkdf2:sha256:1000"


def hash_password(password: str) -> str:
    return generate_password_hash(password, method=config_value("PASSWORD_HASH"))


def matches(stored: str | None, password: str) -> bool:
    """Whether ``password`` is the one ``stored`` was made from; False without a hash,
    after as much work as a real check."""
    if not stored:
        check_password_hash(_stand_in(config_value("PASSWORD_HASH")), password)
        return False
    return check_password_hash(stored, password)


@functools.lru_cache(maxsize=8)
def _stand_in(method: str) -> str:
    """A hash of a password nobody has, made once per method."""
    return generate_password_hash("no such login", method=method)
