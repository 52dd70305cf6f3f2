from pathlib import Path

from support.data.generate import OrderGenerator, tuple_crc
from support.data.ledger import FAIL, OK, UNKNOWN, Ledger, ReceivedRow, SentRow
from support.data.validate import check_delivery
from support.measure import check_at_least_once, check_loss_window, check_lost, check_no_duplicates


def sent(i: int, outcome: str = OK, t: float = 0.0) -> SentRow:
    return SentRow(f"r-{i}", "C1", i, "dc1", t or float(i), float(i) + 0.01, outcome)


def recv(i: int, dc: str = "dc1", crc_ok: bool = True) -> ReceivedRow:
    return ReceivedRow(f"r-{i}", "C1", i, dc, float(i) + 0.5, float(i) + 0.4, i, 1.0 * i, crc_ok)


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


def test_loss_window_spans_lost_send_times() -> None:
    report = check_delivery([sent(1, t=10.0), sent(2, t=12.5), sent(3, t=11.0), sent(4, t=20.0)], [recv(4)])
    assert report.lost == 3
    assert report.loss_window == 2.5
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
    assert not check_at_least_once(dirty).passed


def test_ledgers_are_written_as_they_go_and_read_back(tmp_path: Path) -> None:
    path = tmp_path / "sent.csv"
    ledger = Ledger(path, SentRow)
    ledger.extend([sent(1), sent(2, FAIL)])
    assert Ledger.read(path, SentRow) == [sent(1), sent(2, FAIL)]  # on disk before any close
    received = Ledger(tmp_path / "received.csv", ReceivedRow)
    received.extend([recv(3, crc_ok=False)])
    assert Ledger.read(tmp_path / "received.csv", ReceivedRow) == [recv(3, crc_ok=False)]


def test_generator_is_reproducible_and_checksummed() -> None:
    first = OrderGenerator(7, "run").batch(50)
    again = OrderGenerator(7, "run").batch(50)
    other = OrderGenerator(8, "run").batch(50)
    assert first == again
    assert first != other
    assert len({item["id"] for item in first}) == 50
    for item in first:
        assert item["crc"] == tuple_crc(item)
    seqs: dict[str, int] = {}
    for item in first:
        seqs[item["key"]] = seqs.get(item["key"], 0) + 1
        assert item["seq"] == seqs[item["key"]]
    tampered = dict(first[0], amount=first[0]["amount"] + 1)
    assert tuple_crc(tampered) != first[0]["crc"]
