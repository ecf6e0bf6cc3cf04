"""Hash-flooding inputs for orc's tokenizer tables, built against the unseeded hashes orc used
until issue #12 (so they measure whether that weakness is gone):

- old_bytes_hash: FNV-1a 64 with a final xor-shift-multiply mix (tokenizer_internal.h's old
  hash_bytes): the vocabulary text -> id table and the per-call word cache of tokenize.
- old_u64_hash: the murmur3 finalizer (the old hash_u64): the (left id, right id) merge table.

Each table is open addressing with linear probing, `index = hash & (capacity - 1)`. Keys whose
old index falls into a window much smaller than their number pile up into one long probe chain:
every insertion then walks the chain, and building the table becomes quadratic. The functions
below pick such keys by filtering random candidates (vectorised with NumPy), and make a
"control" of the same size and shape (same lengths, same alphabet, same counts) from random
candidates.
"""
from __future__ import annotations

import numpy as np

_FNV_BASIS = np.uint64(0xCBF29CE484222325)
_FNV_PRIME = np.uint64(0x100000001B3)
_ALPHABET = np.frombuffer(b"abcdefghijklmnopqrstuvwxyz", dtype=np.uint8)


def pow2_at_least(n: int) -> int:
    """orc's table capacity rule (pow2_at_least in tokenizer_internal.h)."""
    c = 16
    while c < n:
        c *= 2
    return c


def old_bytes_hash(rows: np.ndarray) -> np.ndarray:
    """The old hash_bytes of each row of a uint8 [n, length] array, as uint64."""
    h = np.full(rows.shape[0], _FNV_BASIS, dtype=np.uint64)
    with np.errstate(over="ignore"):
        for j in range(rows.shape[1]):
            h ^= rows[:, j].astype(np.uint64)
            h *= _FNV_PRIME
        h ^= h >> np.uint64(32)
        h *= np.uint64(0xD6E8FEB86659FD93)
        h ^= h >> np.uint64(32)
    return h


def old_u64_hash(x: np.ndarray) -> np.ndarray:
    """The old hash_u64 (murmur3 fmix64) of uint64 keys."""
    x = x.astype(np.uint64, copy=True)
    with np.errstate(over="ignore"):
        x ^= x >> np.uint64(33)
        x *= np.uint64(0xFF51AFD7ED558CCD)
        x ^= x >> np.uint64(33)
        x *= np.uint64(0xC4CEB9FE1A85EC53)
        x ^= x >> np.uint64(33)
    return x


def _random_rows(rng: np.random.Generator, n: int, length: int) -> np.ndarray:
    return _ALPHABET[rng.integers(0, len(_ALPHABET), size=(n, length))]


def _unique_rows(rows: np.ndarray) -> np.ndarray:
    _, first = np.unique(rows.view(f"S{rows.shape[1]}").ravel(), return_index=True)
    return rows[np.sort(first)]


def colliding_strings(n: int, length: int, capacity: int, window: int, seed: int = 0,
                      prefix: bytes = b"") -> list[bytes]:
    """n distinct strings `prefix + length random lowercase letters` whose old bytes hash lands
    in the first `window` slots of a table of `capacity` (a power of two)."""
    rng = np.random.default_rng(seed)
    pre = np.frombuffer(prefix, dtype=np.uint8)
    mask = np.uint64(capacity - 1)
    found: list[np.ndarray] = []
    have = 0
    while have < n:
        rows = _random_rows(rng, 1 << 20, length)
        full = np.concatenate([np.broadcast_to(pre, (rows.shape[0], pre.size)), rows], axis=1) if pre.size else rows
        hit = full[(old_bytes_hash(full) & mask) < np.uint64(window)]
        found.append(hit)
        have += hit.shape[0]
        if have >= n:  # drop repeats (unlikely at these lengths) and top up if any went
            merged = _unique_rows(np.concatenate(found))
            found, have = [merged], merged.shape[0]
    rows = found[0][:n]
    return [bytes(r) for r in rows]


def random_strings(n: int, length: int, seed: int = 1, prefix: bytes = b"") -> list[bytes]:
    """The control: n distinct random strings of the same shape as colliding_strings."""
    rng = np.random.default_rng(seed)
    rows = _unique_rows(_random_rows(rng, n + n // 8 + 16, length))[:n]
    assert rows.shape[0] == n
    return [prefix + bytes(r) for r in rows]


def min_probes(keys_hash: np.ndarray, capacity: int) -> int:
    """A lower bound on the probes linear probing needs to insert keys with these hashes into a
    table of `capacity`: keys whose home slots all lie in a window of w slots fill it and then
    run past it, so the k-th of n such keys probes at least k - w times: (n - w)^2 / 2 in all.
    (For random keys the expected total is about n / 2 at orc's load factor.)"""
    idx = keys_hash & np.uint64(capacity - 1)
    w = int(idx.max()) - int(idx.min()) + 1
    n = idx.size
    return (n - w) * (n - w) // 2 if n > w else 0


def colliding_pairs(n: int, n_left: int, n_right: int, left_base: int, right_base: int, capacity: int,
                    window: int) -> list[tuple[int, int]]:
    """n distinct (left id, right id) pairs, left in [left_base, left_base + n_left) and right in
    [right_base, right_base + n_right), whose old merge-table index (old_u64_hash of
    left << 32 | right) lands in the first `window` slots of a table of `capacity`."""
    out: list[np.ndarray] = []
    have = 0
    right = np.arange(right_base, right_base + n_right, dtype=np.uint64)
    for a in range(left_base, left_base + n_left):
        keys = (np.uint64(a) << np.uint64(32)) | right
        hit = right[(old_u64_hash(keys) & np.uint64(capacity - 1)) < np.uint64(window)]
        out.append(np.stack([np.full(hit.size, a, dtype=np.uint64), hit], axis=1))
        have += hit.size
        if have >= n:
            break
    pairs = np.concatenate(out)[:n]
    if pairs.shape[0] < n:
        raise ValueError(f"only {pairs.shape[0]} colliding pairs among {n_left} x {n_right}")
    return [(int(a), int(b)) for a, b in pairs]


def random_pairs(n: int, n_left: int, n_right: int, left_base: int, right_base: int,
                 seed: int = 2) -> list[tuple[int, int]]:
    """The control: n distinct random pairs from the same ranges."""
    rng = np.random.default_rng(seed)
    flat = rng.choice(n_left * n_right, size=n, replace=False)
    return [(left_base + int(f) // n_right, right_base + int(f) % n_right) for f in flat]
