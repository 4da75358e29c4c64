"""API key format: `prk_` + 8-char lookup id + 32-char secret + 6-char checksum (base62).

The typed prefix and the checksum make a leaked key recognisable by secret scanners and let us
refuse a mistyped key without a database query. Only a SHA-256 of the whole key is stored: the
secret has 190 bits of entropy, so a fast hash is enough (no password-style stretching).
"""

import hashlib
import secrets
import zlib

ALPHABET = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
TYPE_PREFIX = "prk_"
LOOKUP_LENGTH = 8
SECRET_LENGTH = 32
CHECKSUM_LENGTH = 6
KEY_LENGTH = len(TYPE_PREFIX) + LOOKUP_LENGTH + SECRET_LENGTH + CHECKSUM_LENGTH


def _random(length: int) -> str:
    return "".join(secrets.choice(ALPHABET) for _ in range(length))


def _checksum(body: str) -> str:
    value = zlib.crc32(body.encode())
    digits = []
    for _ in range(CHECKSUM_LENGTH):
        value, digit = divmod(value, 62)
        digits.append(ALPHABET[digit])
    return "".join(reversed(digits))


def new_key() -> str:
    body = TYPE_PREFIX + _random(LOOKUP_LENGTH) + _random(SECRET_LENGTH)
    return body + _checksum(body)


def well_formed(key: str) -> bool:
    return (
        len(key) == KEY_LENGTH
        and key.startswith(TYPE_PREFIX)
        and all(char in ALPHABET for char in key[len(TYPE_PREFIX) :])
        and _checksum(key[:-CHECKSUM_LENGTH]) == key[-CHECKSUM_LENGTH:]
    )


def lookup_prefix(key: str) -> str:
    """The visible part, unique per key: shown in lists and used to find the row."""
    return key[: len(TYPE_PREFIX) + LOOKUP_LENGTH]


def digest(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()
