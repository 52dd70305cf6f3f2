"""Input tuples of an application contract (:mod:`support.data.contract`): seeded Faker business data,
reproducible across runs, or rows read from a JSON Lines or CSV file.

Every tuple carries the contract's tracking fields: the id (unique per run), the key, the per-key sequence (from
1), then the business fields and, when the contract declares one, the checksum over its fields. The send time is
stamped by the producer.

Generation is on the tester's hot path (``make bench``: >= 20,000 tuples/s on one core), so a field is drawn
without Faker where that is the same draw: ``pyfloat`` with bounds and ``right_digits``, ``pyint`` /
``random_int`` with bounds and ``random_element`` come from the seeded ``random.Random``; ``per_key`` and
``choices`` values are Faker's, drawn once; any other provider is called per tuple (slower).
"""

from __future__ import annotations

import csv
import json
import random
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from typing import Any

from faker import Faker

from support.data.contract import ORDERS, DataContract, FieldSpec

CANONICAL_FIELDS = ORDERS.checksum_over


def tuple_crc(item: Mapping[str, Any]) -> int:
    """The orders checksum: CRC-32 over the canonical fields, in a fixed textual form (``amount`` with two
    decimals)."""
    return ORDERS.checksum(item)


def _drawer(spec: FieldSpec, fake: Faker, rng: random.Random) -> Callable[[], Any]:
    """A function that draws one value of a field that is neither per key nor from a pool."""
    args = dict(spec.args)
    if spec.faker == "pyfloat" and {"min_value", "max_value"} <= set(args) and set(args) <= {
            "min_value", "max_value", "right_digits"}:
        low, high = float(args["min_value"]), float(args["max_value"])
        digits = args.get("right_digits")
        uniform = rng.uniform
        if digits is None:
            return lambda: uniform(low, high)
        places = int(digits)
        return lambda: round(uniform(low, high), places)
    if spec.faker in ("pyint", "random_int"):
        names = ("min_value", "max_value") if spec.faker == "pyint" else ("min", "max")
        if set(args) <= set(names):
            low_i, high_i = int(args.get(names[0], 0)), int(args.get(names[1], 9999))
            randint = rng.randint
            return lambda: randint(low_i, high_i)
    if spec.faker == "random_element" and set(args) == {"elements"}:
        elements = list(args["elements"])
        choice = rng.choice
        return lambda: choice(elements)
    provider = getattr(fake, spec.faker, None)
    if provider is None or not callable(provider):
        raise ValueError(f"Faker has no provider {spec.faker!r} (field {spec.name})")
    return lambda: provider(**args)


class ContractGenerator:
    """Tuples of a contract for a fixed pool of keys; the same seed gives the same sequence on every run."""

    def __init__(self, contract: DataContract, seed: int, run_id: str, keys: int | None = None) -> None:
        fake = Faker(use_weighting=False)
        fake.seed_instance(seed)
        self._rng = random.Random(seed)
        self._contract = contract
        count = keys or contract.keys
        names = [contract.key_format.format(index) for index in range(1, count + 1)]
        per_key: list[dict[str, Any]] = [{} for _ in names]
        self._pooled: list[tuple[str, list[Any]]] = []
        self._drawn: list[tuple[str, Callable[[], Any]]] = []
        for spec in contract.fields:
            if spec.per_key:
                provider = _drawer(spec, fake, self._rng)
                for values in per_key:
                    values[spec.name] = provider()
            elif spec.choices:
                provider = _drawer(spec, fake, self._rng)
                self._pooled.append((spec.name, [provider() for _ in range(spec.choices)]))
            else:
                self._drawn.append((spec.name, _drawer(spec, fake, self._rng)))
        self._keys = list(zip(names, per_key, strict=True))
        self._prefix = f"{run_id}-"
        self._count = 0
        self._seq: dict[str, int] = {}

    def next(self) -> dict[str, Any]:
        return self.batch(1)[0]

    def batch(self, size: int) -> list[dict[str, Any]]:
        c = self._contract
        id_field, key_field, seq_field = c.id_field, c.key_field, c.seq_field
        checksum_field = c.checksum_field
        checksum = c.checksum
        choice, keys, seqs, prefix = self._rng.choice, self._keys, self._seq, self._prefix
        pooled, drawn = self._pooled, self._drawn
        out = []
        count = self._count
        for _ in range(size):
            key, fixed = choice(keys)
            count += 1
            seq = seqs.get(key, 0) + 1
            seqs[key] = seq
            item: dict[str, Any] = {id_field: f"{prefix}{count:08d}", key_field: key, seq_field: seq, **fixed}
            for name, pool in pooled:
                item[name] = choice(pool)
            for name, draw in drawn:
                item[name] = draw()
            if checksum_field is not None:
                item[checksum_field] = checksum(item)
            out.append(item)
        self._count = count
        return out


class OrderGenerator(ContractGenerator):
    """Orders (:data:`~support.data.contract.ORDERS`) for a fixed pool of customers."""

    def __init__(self, seed: int, run_id: str, customers: int = 40) -> None:
        super().__init__(ORDERS, seed, run_id, customers)


class FileSource:
    """Tuples read from JSON Lines or CSV (a column named by the contract's key field is required; the columns
    the state is over are read as numbers); ids, seqs and the checksum are added. The file is read in a loop."""

    def __init__(self, path: Path, run_id: str, contract: DataContract = ORDERS) -> None:
        self._rows = list(_read_rows(path))
        if not self._rows:
            raise ValueError(f"{path}: no input rows")
        missing = [name for name in (contract.key_field, *contract.state_inputs) if name not in self._rows[0]]
        if missing:
            raise ValueError(f"{path}: no column {', '.join(missing)} (the contract's key and state inputs)")
        self._contract = contract
        self._orders = contract == ORDERS  # the lab's orders need every business field
        self._run_id = run_id
        self._count = 0
        self._seq: dict[str, int] = {}

    def next(self) -> dict[str, Any]:
        c = self._contract
        row = dict(self._rows[self._count % len(self._rows)])
        self._count += 1
        key = str(row[c.key_field])
        seq = self._seq.get(key, 0) + 1
        self._seq[key] = seq
        row.update({c.id_field: f"{self._run_id}-{self._count:08d}", c.key_field: key, c.seq_field: seq})
        for name in c.state_inputs:
            row[name] = float(row[name])
        if self._orders:
            row.setdefault("customer", key)
            row.setdefault("product", "")
        if c.checksum_field is not None:
            row[c.checksum_field] = c.checksum(row)
        return row

    def batch(self, size: int) -> list[dict[str, Any]]:
        return [self.next() for _ in range(size)]


class FileOrderSource(FileSource):
    """Orders read from a file (columns at least ``key`` and ``amount``)."""

    def __init__(self, path: Path, run_id: str) -> None:
        super().__init__(path, run_id, ORDERS)


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
