"""`cupola keys`: role keys for signing commands, and the keyring a node trusts.

A key file (one per person or console, kept secret) holds a key id, a role and 32 random
bytes. The node's keyring holds the same entries; revoking a key id there refuses it once the
daemon re-reads the keyring (SIGHUP); `keys.revoke` by command refuses it at once.
"""

from __future__ import annotations

import base64
import json
import os
import secrets
from pathlib import Path

import msgspec

from protocols.ground import KeyFile, Keyring, Role, read_keyring
from tools.exits import CantCreateError, check_writable


def create_key(role: Role, key_id: str) -> KeyFile:
    return KeyFile(
        key_id=key_id, role=role, secret=base64.b64encode(secrets.token_bytes(32)).decode()
    )


def write_secret(path: Path, data: bytes) -> None:
    """Write a file only its owner can read, atomically."""
    tmp = path.with_name(path.name + ".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as handle:
        handle.write(data)
    tmp.replace(path)


def add_to_keyring(keyring_path: Path, key: KeyFile) -> Keyring:
    keyring = read_keyring(keyring_path) if keyring_path.exists() else Keyring()
    if key.key_id in keyring.keys:
        raise ValueError(f"{keyring_path}: key id {key.key_id!r} already exists")
    keyring.keys[key.key_id] = key
    write_secret(keyring_path, msgspec.json.format(msgspec.json.encode(keyring)))
    return keyring


def revoke(keyring_path: Path, key_id: str) -> Keyring:
    keyring = read_keyring(keyring_path)
    if key_id not in keyring.keys:
        raise ValueError(f"{keyring_path}: no key id {key_id!r}")
    if key_id not in keyring.revoked:
        keyring.revoked.append(key_id)
    write_secret(keyring_path, msgspec.json.format(msgspec.json.encode(keyring)))
    return keyring


def create(role: str, key_id: str, out: Path, keyring_path: Path | None) -> int:
    key = create_key(Role(role), key_id)
    if out.exists():
        raise CantCreateError(f"{out} exists; choose another file")
    check_writable(out)
    if keyring_path is not None:
        add_to_keyring(keyring_path, key)
    write_secret(out, msgspec.json.format(msgspec.json.encode(key)))
    print(
        f"created {role} key {key_id!r} in {out}"
        + (f", trusted by {keyring_path}" if keyring_path else "")
    )
    return 0


def listing(keyring_path: Path) -> int:
    keyring = read_keyring(keyring_path)
    for key_id, key in sorted(keyring.keys.items()):
        state = "revoked" if key_id in keyring.revoked else "active"
        print(json.dumps({"key_id": key_id, "role": key.role.value, "state": state}))
    return 0
