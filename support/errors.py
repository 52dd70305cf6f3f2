"""Error markers shared across layers (a leaf: imports nothing from support).

:class:`TransientError` marks failures that may go away by themselves while a condition is awaited (a
service still starting, a connection refused in the middle of a failover). :func:`support.waits.wait_until`
retries those (and ``OSError``) and lets every other exception surface as itself.
"""

from __future__ import annotations

__all__ = ["TransientError"]


class TransientError(Exception):
    """Base of the domain errors a poll may see and retry (e.g. :class:`support.streams.errors.StreamsError`)."""
