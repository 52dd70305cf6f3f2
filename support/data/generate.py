"""Input tuples: seeded Faker business data, reproducible across runs, or read from a file.

Every tuple carries ``id`` (unique per run), ``key`` (the customer), ``seq`` (per key, from 1),
business fields, and ``crc`` over the canonical fields. ``sent_at`` is stamped by the producer.
"""

from __future__ import annotations

import csv
import json
import random
import zlib
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

from faker import Faker

CANONICAL_FIELDS = ("id", "key", "seq", "customer", "product", "amount")


def tuple_crc(item: Mapping[str, Any]) -> int:
    """CRC-32 over the canonical fields, in a fixed textual form (``amount`` with two decimals)."""
    parts = [
        str(item.get("id", "")),
        str(item.get("key", "")),
        str(int(item.get("seq", 0))),
        str(item.get("customer", "")),
        str(item.get("product", "")),
        f"{float(item.get('amount', 0.0)):.2f}",
    ]
    return zlib.crc32("|".join(parts).encode("utf-8"))


class OrderGenerator:
    """Orders for a fixed pool of customers; the same seed gives the same sequence on every run."""

    def __init__(self, seed: int, run_id: str, customers: int = 40) -> None:
        fake = Faker(use_weighting=False)
        fake.seed_instance(seed)
        self._rng = random.Random(seed)
        self._customers = [
            (f"C{index:04d}", fake.name()) for index in range(1, customers + 1)
        ]
        self._products = [fake.word() for _ in range(25)]
        self._run_id = run_id
        self._count = 0
        self._seq: dict[str, int] = {}

    def next(self) -> dict[str, Any]:
        key, customer = self._rng.choice(self._customers)
        self._count += 1
        seq = self._seq.get(key, 0) + 1
        self._seq[key] = seq
        item: dict[str, Any] = {
            "id": f"{self._run_id}-{self._count:08d}",
            "key": key,
            "seq": seq,
            "customer": customer,
            "product": self._rng.choice(self._products),
            "amount": round(self._rng.uniform(1.0, 500.0), 2),
        }
        item["crc"] = tuple_crc(item)
        return item

    def batch(self, size: int) -> list[dict[str, Any]]:
        return [self.next() for _ in range(size)]


class FileOrderSource:
    """Orders read from JSON Lines or CSV (columns at least ``key`` and ``amount``); ids/seq/crc added."""

    def __init__(self, path: Path, run_id: str) -> None:
        self._rows = list(_read_rows(path))
        if not self._rows:
            raise ValueError(f"{path}: no input rows")
        self._run_id = run_id
        self._count = 0
        self._seq: dict[str, int] = {}

    def next(self) -> dict[str, Any]:
        row = dict(self._rows[self._count % len(self._rows)])
        self._count += 1
        key = str(row["key"])
        seq = self._seq.get(key, 0) + 1
        self._seq[key] = seq
        row.update(id=f"{self._run_id}-{self._count:08d}", key=key, seq=seq, amount=float(row["amount"]))
        row.setdefault("customer", key)
        row.setdefault("product", "")
        row["crc"] = tuple_crc(row)
        return row

    def batch(self, size: int) -> list[dict[str, Any]]:
        return [self.next() for _ in range(size)]


def _read_rows(path: Path) -> Iterator[dict[str, Any]]:
    with path.open(encoding="utf-8") as handle:
        if path.suffix.lower() == ".csv":
            yield from csv.DictReader(handle)
        else:
            for number, line in enumerate(handle, 1):
                if line.strip():
                    try:
                        yield json.loads(line)
                    except json.JSONDecodeError as exc:
                        raise ValueError(f"{path}: line {number}: {exc.msg}") from exc
