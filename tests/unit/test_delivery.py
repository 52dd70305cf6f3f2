import json
from pathlib import Path

import numpy as np
import pytest

from support.data.generate import FileOrderSource, OrderGenerator, tuple_crc
from support.data.ledger import FAIL, OK, UNKNOWN, IdTable, Ledger, Lines, ReceivedRow, SentRow, Table, read_table
from support.data.validate import check_delivery, check_order
from support.measure import (
    check_at_least_once,
    check_integrity,
    check_loss_window,
    check_lost,
    check_no_duplicates,
    check_unknown,
)


def sent(i: int, outcome: str = OK, t: float = 0.0) -> SentRow:
    return SentRow(f"r-{i}", "C1", i, "dc1", t or float(i), float(i) + 0.01, outcome, "", 1.5 * i)


def recv(i: int, dc: str = "dc1", crc_ok: bool = True) -> ReceivedRow:
    return ReceivedRow(f"r-{i}", "C1", i, dc, float(i) + 0.5, float(i) + 0.4, i, 1.0 * i, crc_ok, 1.5 * i)


def test_every_fate_is_classified() -> None:
    rows = [sent(1), sent(2), sent(3), sent(4, FAIL), sent(5, UNKNOWN), sent(6, UNKNOWN), sent(7, t=9.0)]
    out = [recv(1), recv(2), recv(2, "dc2"), recv(4), recv(5), recv(99), recv(7, crc_ok=False)]
    report = check_delivery(rows, out)
    assert report.acknowledged == 4
    assert report.lost_ids == ["r-3"]
    assert report.duplicated_ids == ["r-2"]
    assert report.phantom_ids == ["r-4"]
    assert report.unknown == 2 and report.unknown_delivered == 1
    assert report.unexpected_ids == ["r-99"]
    assert report.corrupted_ids == ["r-7"]
    assert report.received_by_dc == {"dc1": 6, "dc2": 1}
    assert report.lost_by_dc == {"dc1": 1}
    integrity = check_integrity(report)
    assert not integrity.passed and "altered" in integrity.summary and "never sent" in integrity.summary
    assert check_integrity(check_delivery([sent(1)], [recv(1)])).passed


def test_loss_window_spans_lost_send_times() -> None:
    report = check_delivery([sent(1, t=10.0), sent(2, t=12.5), sent(3, t=11.0), sent(4, t=20.0)], [recv(4)])
    assert report.lost == 3
    assert report.loss_window == 2.5
    assert (report.lost_first_sent, report.lost_last_sent) == (10.0, 12.5)
    assert not check_loss_window(report, 2.0).passed
    assert check_loss_window(report, 3.0).passed


def test_checkers_pass_and_fail() -> None:
    clean = check_delivery([sent(1), sent(2)], [recv(1), recv(2)])
    assert check_lost(clean, 0).passed and check_no_duplicates(clean).passed and check_at_least_once(clean).passed
    dirty = check_delivery([sent(1), sent(2), sent(3)], [recv(1), recv(1)])
    verdict = check_lost(dirty, 1)
    assert not verdict.passed and "2 of 3 acknowledged" in verdict.summary
    assert check_lost(dirty, 2).passed
    assert not check_no_duplicates(dirty).passed
    assert check_no_duplicates(dirty, limit=1).passed
    assert not check_at_least_once(dirty).passed


def test_ledgers_are_columnar_written_as_they_go_and_read_back(tmp_path: Path) -> None:
    ids = IdTable(tmp_path / "ids.txt")
    ledger = Ledger(tmp_path / "sent.csv", SentRow, ids)
    ledger.extend([sent(1), sent(2, FAIL)])
    ledger.extend([SentRow("r-3", "C2", 1, "dc2", 3.0, 3.5, UNKNOWN, "read timed out\nafter 3 s", 2.25)])
    # on disk before any close: the columns, the CSV copy and the shared id table
    table = read_table(tmp_path / "sent")
    assert table["seq"].tolist() == [1, 2, 1] and table["t_ack"].dtype == np.float64
    assert table.text("outcome", table["outcome"]) == [OK, FAIL, UNKNOWN]
    assert table.id_text(table["id"]) == ["r-1", "r-2", "r-3"]
    rows = Ledger.read(tmp_path / "sent.csv", SentRow)
    assert rows[:2] == [sent(1), sent(2, FAIL)] and rows[2].error == "read timed out after 3 s"
    received = Ledger(tmp_path / "received.csv", ReceivedRow, ids)
    received.extend([recv(3, crc_ok=False), recv(9)])
    assert Ledger.read(tmp_path / "received.csv", ReceivedRow) == [recv(3, crc_ok=False), recv(9)]
    assert read_table(tmp_path / "received")["id"].tolist() == [2, 3]  # r-3 shares its code with the sent row
    assert (tmp_path / "sent.csv").read_text().splitlines()[0].startswith("id,key,seq,dc,t_send")
    assert ledger.rows()[0] == sent(1) and len(ledger) == 3
    ledger.close()
    received.close()
    ids.close()


def test_a_ledger_cut_short_by_a_crash_is_still_readable(tmp_path: Path) -> None:
    ledger = Ledger(tmp_path / "received.csv", ReceivedRow)
    ledger.extend([recv(1), recv(2), recv(3)])
    ledger.close()
    folder = tmp_path / "received"
    with (folder / "t_recv.bin").open("r+b") as f:  # the crash hit while writing the third row's columns
        f.truncate(8 * 2 + 3)
    with (folder / "dc.bin").open("ab") as f:  # ... and a fourth row had started with a code not yet named
        f.write(np.array([5], dtype="<i4").tobytes())
    table = read_table(folder)
    assert len(table) == 2 and table.id_text(table["id"]) == ["r-1", "r-2"]
    assert check_order(table).checked == 2


def test_generator_is_reproducible_and_checksummed() -> None:
    first = OrderGenerator(7, "run").batch(50)
    again = OrderGenerator(7, "run").batch(50)
    other = OrderGenerator(8, "run").batch(50)
    assert first == again
    assert first != other
    assert len({item["id"] for item in first}) == 50
    for item in first:
        assert item["crc"] == tuple_crc(item)
        assert {"id", "key", "seq", "crc", "amount", "customer"} <= set(item)
    seqs: dict[str, int] = {}
    for item in first:
        seqs[item["key"]] = seqs.get(item["key"], 0) + 1
        assert item["seq"] == seqs[item["key"]]
    tampered = dict(first[0], amount=first[0]["amount"] + 1)
    assert tuple_crc(tampered) != first[0]["crc"]


@pytest.mark.parametrize("suffix", [".jsonl", ".csv"])
def test_file_input_gets_ids_seq_and_crc(tmp_path: Path, suffix: str) -> None:
    rows = [{"key": "C1", "amount": "10.5", "product": "tea"}, {"key": "C2", "amount": "3"},
            {"key": "C1", "amount": "1.25", "product": "cake"}]
    path = tmp_path / f"orders{suffix}"
    if suffix == ".csv":
        path.write_text("key,amount,product\n" + "\n".join(f"{r['key']},{r['amount']},{r.get('product', '')}"
                                                            for r in rows) + "\n")
    else:
        path.write_text("\n".join(json.dumps(r) for r in rows) + "\n\n")
    source = FileOrderSource(path, "run")
    batch = source.batch(5)  # wraps around the file
    assert [b["key"] for b in batch] == ["C1", "C2", "C1", "C1", "C2"]
    assert [b["seq"] for b in batch] == [1, 1, 2, 3, 2]
    assert [b["id"] for b in batch] == [f"run-{i:08d}" for i in range(1, 6)]
    assert batch[0]["amount"] == 10.5 and all(b["crc"] == tuple_crc(b) for b in batch)


def test_file_input_errors_name_the_line(tmp_path: Path) -> None:
    path = tmp_path / "bad.jsonl"
    path.write_text('{"key": "C1", "amount": 1}\n{not json}\n')
    with pytest.raises(ValueError, match="line 2"):
        FileOrderSource(path, "run")
    empty = tmp_path / "empty.csv"
    empty.write_text("key,amount\n")
    with pytest.raises(ValueError, match="no input rows"):
        FileOrderSource(empty, "run")


def test_unknown_outcomes_fail_the_definite_answer_check_and_say_what_came_out() -> None:
    rows = [sent(1), sent(2, FAIL), sent(3, UNKNOWN), sent(4, UNKNOWN), sent(5, UNKNOWN)]
    report = check_delivery(rows, [recv(1), recv(3), recv(4)])
    verdict = check_unknown(report)
    assert verdict.name == "unknown" and not verdict.passed
    assert verdict.summary == ("3 of 5 tuples sent got no definite answer (limit 0); 2 of those came out anyway, "
                               "1 did not.")
    assert verdict.evidence["unknown"] == 3 and verdict.evidence["unknown_delivered"] == 2
    assert check_unknown(report, limit=3).passed
    clean = check_unknown(check_delivery([sent(1), sent(2, FAIL)], [recv(1)]))
    assert clean.passed and clean.summary == "Every tuple sent got a definite answer (1 acknowledged, 1 refused)."


def test_integrity_names_each_kind_of_bad_output() -> None:
    phantom = check_integrity(check_delivery([sent(1), sent(2, FAIL)], [recv(1), recv(2)]))
    assert phantom.name == "integrity" and not phantom.passed
    assert phantom.summary == "Output tuples: 1 came out although the application refused them."
    assert phantom.evidence["phantom"] == 1 and phantom.evidence["phantom_ids_sample"] == ["r-2"]
    corrupted = check_integrity(check_delivery([sent(1), sent(2)], [recv(1), recv(2, crc_ok=False)]))
    assert corrupted.summary == "Output tuples: 1 came out altered (checksum mismatch)."
    assert corrupted.evidence["corrupted"] == 1 and corrupted.evidence["phantom"] == 0
    unexpected = check_integrity(check_delivery([sent(1)], [recv(1), recv(8)]))
    assert unexpected.summary == "Output tuples: 1 came out that were never sent."
    clean = check_integrity(check_delivery([sent(1), sent(2)], [recv(1), recv(2)]))
    assert clean.passed and clean.summary == "Every output tuple was intact and expected (2 received)."


@pytest.mark.parametrize("names", [["r-1", "r-2", "r-3"], ["r-1", "r-22", "r-333"]])
def test_ids_are_looked_up_in_one_pass_with_or_without_fixed_width_lines(tmp_path: Path, names: list[str]) -> None:
    path = tmp_path / "ids.txt"
    path.write_text("".join(n + "\n" for n in names) + "r-4")  # a last line cut short by a crash is not an id
    lines = Lines(path)
    assert len(lines) == 3 and [lines[i] for i in range(3)] == names and lines[-1] == names[-1]
    assert lines.take([2, 0, 2]) == [names[2], names[0], names[2]]
    table = Table({}, {}, lines)
    assert table.id_text(np.array([1, 7, -1, 0])) == [names[1], "#7", "#-1", names[0]]
    with pytest.raises(IndexError):
        lines.take([3])


def test_lazily_read_columns_are_read_only_views_of_the_files(tmp_path: Path) -> None:
    ledger = Ledger(tmp_path / "received.csv", ReceivedRow)
    ledger.extend([recv(1), recv(2, "dc2"), recv(1)])
    ledger.close()
    eager, lazy = read_table(tmp_path / "received"), read_table(tmp_path / "received", lazy=True)
    assert all(np.array_equal(eager[n], lazy[n]) for n in eager.columns)
    assert not lazy["seq"].flags.writeable
    assert check_delivery([sent(1), sent(2)], lazy).duplicated_ids == ["r-1"]
