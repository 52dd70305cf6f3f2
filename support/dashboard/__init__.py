"""``failover-tester dashboard``: web pages over the history store (runs over time, RTO and losses per scenario,
repeated drills' distributions, two runs side by side) and the live run.

:mod:`.store` reads the store, :mod:`.pages` renders the pages (served or written as files), :mod:`.live` folds
the live run's journal, :mod:`.server` serves it all, :mod:`.assets` finds the script, style and chart library.
"""
