"""One error hierarchy for the platform: what went wrong, where, and what to do next; the retry decision in the type.

Every error the platform raises on purpose is a :class:`PlatformError`. It carries what a user needs to act: the
``message`` (what went wrong), the ``context`` it happened in (file and line, contract, table, stage, run id: whatever
applies) and ``hint``, the next action ("run `feature-check contracts/`", "start Redis, then `feature-platform
materialize`"). Each also mixes in :class:`Transient` (worth retrying: the runtime's
:class:`~pipelines.runtime.RetryPolicy` retries these and nothing else) or :class:`Terminal` (trying again cannot help).

The console commands catch ``PlatformError`` once, print :meth:`PlatformError.one_line` and exit with
:attr:`PlatformError.exit_code`; a traceback is shown only with ``--debug``. Library code raises and returns; it never
prints or exits.

The mix-ins live in the runtime (it decides retries and imports nothing of the platform) and are re-exported here.
"""

from __future__ import annotations

from typing import Any, ClassVar

from pipelines.runtime.errors import StageError, Terminal, Transient

__all__ = ["PlatformError", "ServiceUnavailableError", "StageError", "Terminal", "Transient", "UsageError"]

#: Context keys in the order they are shown.
_CONTEXT_ORDER = ("file", "line", "column", "contract", "table", "source", "stage", "run_id", "store", "url")


class PlatformError(Exception):
    """Base of every deliberate error: ``message`` + ``context`` (where) + ``hint`` (what to do next).

    Subclasses set :attr:`exit_code` (1: the work failed; 2: the command was called wrongly) and mix in
    :class:`Transient` or :class:`Terminal`.
    """

    exit_code: ClassVar[int] = 1

    def __init__(self, message: str, *, hint: str | None = None, **context: Any) -> None:
        self.message = message
        self.hint = hint
        self.context = {key: value for key, value in context.items() if value is not None}
        super().__init__(self.one_line())

    @property
    def where(self) -> str:
        """``file:line`` when known, then the other context as ``key=value``."""
        parts = []
        if "file" in self.context:
            location = str(self.context["file"])
            if "line" in self.context:
                location += f":{self.context['line']}"
                if "column" in self.context:
                    location += f":{self.context['column']}"
            parts.append(location)
        keys = sorted(set(self.context) - {"file", "line", "column"},
                      key=lambda key: (_CONTEXT_ORDER.index(key) if key in _CONTEXT_ORDER else 99, key))
        parts += [f"{key}={self.context[key]}" for key in keys]
        return " ".join(parts)

    def one_line(self) -> str:
        """``[where] message (next: hint)``: what a console command prints."""
        text = f"{self.where}: {self.message}" if self.where else self.message
        return f"{text} (next: {self.hint})" if self.hint else text


class UsageError(PlatformError, Terminal):
    """A command was called wrongly (a bad option value, a missing file, an unknown contract): exit code 2."""

    exit_code = 2


class ServiceUnavailableError(PlatformError, Transient):
    """A service the platform depends on (online store, broker, metadata server) did not answer; may work later."""
