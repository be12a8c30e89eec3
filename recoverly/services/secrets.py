"""Customer credentials at rest: AES-256-GCM (``cryptography``) with key IDs for rotation.

Keys come from ``RECOVERLY_SECRET_KEYS`` (``kid:base64key,...``; the first one encrypts, all
decrypt), else from a key file in the data directory, created once with a random key. A
sealed value reads ``enc:v1:<kid>:<base64 nonce+ciphertext>`` and is bound to its purpose
(associated data), so it cannot be moved to another field."""

from __future__ import annotations

import base64
import binascii
import logging
import os
import re
import secrets
from pathlib import Path
from typing import Any

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from recoverly.errors import RecoverlyError
from recoverly.settings import Settings

log = logging.getLogger(__name__)
PREFIX = "enc:v1:"
KEY_FILE = "secret-keys"
BUCKET_SECRET = "secret_access_key"
SEALED_BUCKET_SECRET = "secret_access_key_sealed"
_KID = re.compile(r"[A-Za-z0-9_-]{1,32}")


class SecretError(RecoverlyError):
    """A sealed value that no configured key opens, or a malformed key list."""


def new_key_line(kid: str) -> str:
    """A fresh ``kid:base64key`` entry for ``RECOVERLY_SECRET_KEYS``."""
    if not _KID.fullmatch(kid):
        raise SecretError("a key ID is 1..32 letters, digits, '-' or '_'")
    return f"{kid}:{base64.b64encode(AESGCM.generate_key(bit_length=256)).decode()}"


def parse_keys(text: str) -> list[tuple[str, bytes]]:
    keys = []
    for entry in filter(None, (e.strip() for e in text.replace("\n", ",").split(","))):
        kid, _, encoded = entry.partition(":")
        try:
            key = base64.b64decode(encoded, validate=True)
        except binascii.Error:
            key = b""
        if not _KID.fullmatch(kid) or len(key) != 32:
            raise SecretError(
                "each secret key is kid:base64 of 32 bytes (see `recoverly secrets new-key`)"
            )
        keys.append((kid, key))
    if not keys:
        raise SecretError("no secret keys configured")
    return keys


class SecretBox:
    """Seals and opens strings; the first key seals, every key opens."""

    def __init__(self, keys: list[tuple[str, bytes]]) -> None:
        self.active_kid = keys[0][0]
        self._ciphers = {kid: AESGCM(key) for kid, key in keys}

    def seal(self, plaintext: str, *, purpose: str) -> str:
        nonce = secrets.token_bytes(12)
        sealed = self._ciphers[self.active_kid].encrypt(nonce, plaintext.encode(), purpose.encode())
        return f"{PREFIX}{self.active_kid}:{base64.b64encode(nonce + sealed).decode()}"

    def open(self, token: str, *, purpose: str) -> str:
        kid, data = self._split(token)
        cipher = self._ciphers.get(kid)
        if cipher is None:
            raise SecretError(f"no configured key with ID {kid!r} opens this secret")
        try:
            return cipher.decrypt(data[:12], data[12:], purpose.encode()).decode()
        except InvalidTag:
            raise SecretError(f"a secret sealed with key {kid!r} failed authentication") from None

    def is_current(self, token: str) -> bool:
        return self._split(token)[0] == self.active_kid

    @staticmethod
    def _split(token: str) -> tuple[str, bytes]:
        if not token.startswith(PREFIX):
            raise SecretError("not a sealed secret")
        kid, _, encoded = token[len(PREFIX) :].partition(":")
        try:
            return kid, base64.b64decode(encoded, validate=True)
        except binascii.Error:
            raise SecretError("a sealed secret is malformed") from None


def secret_box(settings: Settings) -> SecretBox:
    """The box for the configured keys, or for the data directory's key file."""
    if settings.secret_keys is not None:
        return SecretBox(parse_keys(settings.secret_keys.get_secret_value()))
    if settings.production:
        log.warning("RECOVERLY_SECRET_KEYS is not set: using the key file in the data directory")
    return SecretBox(parse_keys(_key_file(settings.data_dir / KEY_FILE)))


def _key_file(path: Path) -> str:
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        return path.read_text()
    with os.fdopen(fd, "w") as file:
        file.write(new_key_line("k1") + "\n")
    return path.read_text()


def seal_bucket(box: SecretBox, bucket: dict[str, Any]) -> dict[str, Any]:
    """A bucket config to store: its secret key sealed, never in plain text."""
    sealed = {k: v for k, v in bucket.items() if k != BUCKET_SECRET}
    secret = bucket.get(BUCKET_SECRET)
    if secret is not None:
        sealed[SEALED_BUCKET_SECRET] = box.seal(secret, purpose="customer_bucket")
    return sealed


def open_bucket(box: SecretBox, bucket: dict[str, Any]) -> dict[str, Any]:
    """A stored bucket config, its secret opened for use (plain older values pass through)."""
    opened = {k: v for k, v in bucket.items() if k != SEALED_BUCKET_SECRET}
    token = bucket.get(SEALED_BUCKET_SECRET)
    if token is not None:
        opened[BUCKET_SECRET] = box.open(token, purpose="customer_bucket")
    return opened


def needs_sealing(box: SecretBox, bucket: dict[str, Any] | None, *, rotate: bool) -> bool:
    if not bucket:
        return False
    if bucket.get(BUCKET_SECRET) is not None:
        return True
    token = bucket.get(SEALED_BUCKET_SECRET)
    return rotate and token is not None and not box.is_current(token)
