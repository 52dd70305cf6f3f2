import io

import pytest

from support.progress import ERASE, ConsoleProgress
from support.waits import WaitTimeout, wait_until


def test_progress_is_quiet_for_short_waits_and_throttled_on_a_terminal() -> None:
    out = io.StringIO()
    progress = ConsoleProgress(out, after=2.0, every=60.0, tty=True)
    progress("dc2 to take over", 1.0, 45.0)
    assert out.getvalue() == ""
    progress("dc2 to take over", 2.5, 45.0)
    progress("dc2 to take over", 3.0, 45.0)  # within `every`: not rewritten
    assert out.getvalue() == f"{ERASE}    … waiting for dc2 to take over: 2 s of at most 45 s"


def test_a_terminal_line_updates_in_place_and_is_erased_at_the_end() -> None:
    out = io.StringIO()
    progress = ConsoleProgress(out, after=0.0, every=0.0, tty=True)
    for second in (1.0, 2.0, 3.0):
        progress("orders flowing", second, 70.0)
    progress.done("orders flowing", 3.2, True)
    text = out.getvalue()
    assert "\n" not in text  # never a new line: the same line is rewritten
    assert text.count(ERASE) == 4 and text.endswith(ERASE)
    assert text.split(ERASE)[1:4] == [f"    … waiting for orders flowing: {n} s of at most 70 s" for n in (1, 2, 3)]


def test_a_log_gets_one_line_per_change_of_state() -> None:
    out = io.StringIO()
    progress = ConsoleProgress(out, after=2.0, every=0.0, tty=False)
    for second in range(1, 11):
        progress("orders flowing", float(second), 70.0)
    progress.done("orders flowing", 10.4, True)
    progress("dc2 to take over", 5.0, 45.0)
    progress.done("dc2 to take over", 45.0, False)
    progress.done("a short wait", 0.5, True)  # never shown: nothing to end
    assert out.getvalue().splitlines() == [
        "    … waiting for orders flowing (at most 70 s)",
        "    … orders flowing: met after 10 s",
        "    … waiting for dc2 to take over (at most 45 s)",
        "    … dc2 to take over: gave up after 45 s",
    ]


def test_wait_until_tells_the_progress_how_the_wait_ended() -> None:
    out = io.StringIO()
    progress = ConsoleProgress(out, after=0.0, tty=False)
    with pytest.raises(WaitTimeout):
        wait_until(lambda: 0, lambda v: v > 0, timeout=0.05, interval=0.01, what="nothing", progress=progress)
    assert wait_until(lambda: 1, lambda v: v > 0, timeout=1, what="at once", progress=progress) == 1
    assert out.getvalue().splitlines() == ["    … waiting for nothing (at most 0 s)",
                                           "    … nothing: gave up after 0 s"]
