"""Random identifiers (UUID version 4 text) without importing `uuid` (about 4 ms)."""

from __future__ import annotations

import os

# The variant nibble: RFC 4122 puts 10 in its top two bits (8, 9, a or b).
_VARIANT = {digit: "89ab"[int(digit, 16) & 3] for digit in "0123456789abcdef"}


_POOL_IDS = 64
_pool = ""
_offset = 0


def _forget_pool() -> None:
    # A forked child must not hand out the ids its parent will also hand out.
    global _pool, _offset
    _pool, _offset = "", 0


os.register_at_fork(after_in_child=_forget_pool)


def new_uuid() -> str:
    # Random bytes are drawn from the OS 64 ids at a time: one system call per id was
    # a tenth of `cqrs apply`'s time. The hex pool is never reused.
    global _pool, _offset
    if _offset >= len(_pool):
        _pool = os.urandom(16 * _POOL_IDS).hex()
        _offset = 0
    h = _pool[_offset : _offset + 32]
    _offset += 32
    return f"{h[:8]}-{h[8:12]}-4{h[13:16]}-{_VARIANT[h[16]]}{h[17:20]}-{h[20:]}"
