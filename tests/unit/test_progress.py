import io

from support.progress import ConsoleProgress


def test_progress_is_quiet_for_short_waits_and_throttled() -> None:
    out = io.StringIO()
    progress = ConsoleProgress(out, after=2.0, every=60.0)
    progress("dc2 to take over", 1.0, 45.0)
    assert out.getvalue() == ""
    progress("dc2 to take over", 2.5, 45.0)
    progress("dc2 to take over", 3.0, 45.0)
    assert out.getvalue() == "    … waiting for dc2 to take over: 2 s of at most 45 s\n"
