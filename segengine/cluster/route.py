"""The stable viewer -> shard map (the same in every process and Python version: never ``hash()``)."""

from __future__ import annotations

import hashlib


def viewer_key(viewer: str | int) -> bytes:
    """The bytes a viewer id hashes as: a string's UTF-8, an int's decimal text (so 42 and "42" agree)."""
    return (viewer if isinstance(viewer, str) else str(int(viewer))).encode("utf-8", "surrogatepass")


def shard_of(viewer: str | int, shards: int) -> int:
    """The shard of ``viewer`` among ``shards``: the first 8 bytes of BLAKE2b(id), little-endian, mod shards."""
    digest = hashlib.blake2b(viewer_key(viewer), digest_size=8).digest()
    return int.from_bytes(digest, "little") % shards
