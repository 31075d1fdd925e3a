"""Answers already computed, by the exact request bytes they answer.

The core is a pure function of the request (and of settings fixed for the process), so the
same bytes always get the same answer. Metacontroller re-sends an unchanged cluster on every
resync: those requests skip decoding and computing. Bounded by the bytes of answers held.
"""

from __future__ import annotations

import hashlib
import os
from collections import OrderedDict
from dataclasses import dataclass
from typing import Generic, TypeVar

import xxhash

T = TypeVar("T")


# A secret per process: nobody can craft two requests that share a fingerprint on purpose.
_SEED = int.from_bytes(os.urandom(8), "big")


def fingerprint(hook: str, body: bytes) -> bytes:
    """xxh3-128 of the request: ~1.5 us for a 63 KB request where blake2b takes ~90 us."""
    return hook.encode() + xxhash.xxh3_128_digest(body, seed=_SEED)


@dataclass(frozen=True, slots=True)
class Entry(Generic[T]):
    payload: bytes
    etag: str
    extra: T


class AnswerCache(Generic[T]):
    def __init__(self, max_bytes: int) -> None:
        self.max_bytes = max_bytes
        self.bytes = 0
        self.entries: OrderedDict[bytes, Entry[T]] = OrderedDict()

    def get(self, key: bytes) -> Entry[T] | None:
        entry = self.entries.get(key)
        if entry is not None:
            self.entries.move_to_end(key)
        return entry

    def put(self, key: bytes, entry: Entry[T]) -> None:
        size = len(entry.payload)
        if size > self.max_bytes // 4 or key in self.entries:
            return  # one huge answer must not flush everything else
        self.entries[key] = entry
        self.bytes += size
        while self.bytes > self.max_bytes:
            _, evicted = self.entries.popitem(last=False)
            self.bytes -= len(evicted.payload)


def etag_of(payload: bytes) -> str:
    return '"' + hashlib.blake2b(payload, digest_size=16).hexdigest() + '"'
