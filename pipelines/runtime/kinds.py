"""The two kinds of failure, as mix-ins: the retry decision lives in the error's type.

:class:`~pipelines.runtime.RetryPolicy` retries an error only when it is :class:`Transient`, and never one that is
:class:`Terminal`, whatever ``retry_on`` says. The runtime's own signals (a passed deadline, a request larger than the
limiter's burst, a cancelled call) are Terminal, so no stage has to exclude them by hand. A module of its own with no
imports, so that every runtime module (and :mod:`pipelines.errors`) can use it without cycles.
"""

from __future__ import annotations


class Transient:
    """Mix-in: a failure that may succeed when tried again; the only kind :class:`RetryPolicy` retries."""


class Terminal:
    """Mix-in: a failure that trying again cannot fix (bad input, a bug, a refused request, a passed deadline)."""
