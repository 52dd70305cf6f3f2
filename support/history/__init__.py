"""The history of every run: one SQLite file (:mod:`support.history.schema`) that ``failover-tester history``,
``compare`` and ``dashboard`` read."""
