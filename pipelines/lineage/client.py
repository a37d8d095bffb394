"""The OpenMetadata SDK client, opened with timeouts, and its failures turned into the platform's errors.

The SDK's REST client (``metadata.ingestion.ometa``) by default waits 10 s to connect and 300 s per read, and sleeps
30 s before retrying a 504 on its own; on a silent server one call could block for minutes. Here every call gets
``timeout_s`` for connect and read, and the SDK's own retry loop is off (``retry=0``): retries are the runtime's
(:mod:`pipelines.lineage.publish`), decided by the error's type. The SDK's HTTP adapter still retries a failed
connect twice and a timed-out read once (urllib3, 1 s backoff), so one call gives up after at most about
``2 * timeout_s + 1`` seconds on a silent server.

How the SDK reports failure, and what it becomes here:

* transport failures (refused, reset, timed out) raise ``RestTransportError``: :class:`ServiceUnavailableError`
  (transient);
* an error answer with OpenMetadata's JSON body (``{"code": ..., "message": ...}``) raises ``APIError``; an answer
  without it raises ``requests.HTTPError``: a 5xx or 429 is :class:`LineageServerError` (transient), anything else
  :class:`LineageRejectedError` (terminal: the request itself is wrong, trying again cannot help);
* ``add_lineage`` does **not** raise on an error answer: it returns ``{"error": "Error <status> trying to PUT
  lineage ..."}``. :func:`check_lineage_answer` reads that and raises as above.
"""

from __future__ import annotations

import re
from typing import Any

from pipelines.config import OpenMetadataSettings
from pipelines.errors import PlatformError, ServiceUnavailableError, Terminal, Transient, UsageError
from pipelines.lineage.sdk import skip_sdk_package_init

_HINT_UNREACHABLE = ("check FP_OPENMETADATA__URL (e.g. http://127.0.0.1:8585/api) and that the server is up "
                     "(`docker compose --profile lineage up -d`), or use `feature-platform lineage --dry-run`")


class LineageRejectedError(PlatformError, Terminal):
    """OpenMetadata refused a request (4xx): the request or the credentials are wrong; retrying cannot help."""


class LineageServerError(PlatformError, Transient):
    """OpenMetadata failed on a request (5xx, 429) or answered something unexpected; may work when tried again."""


def import_sdk_client() -> None:
    """Import the SDK's client now (seconds when idle, up to a minute on a loaded machine), so that the time is not
    counted against a publish's deadline, which is meant for the server's answers."""
    skip_sdk_package_init()
    import metadata.ingestion.ometa.ometa_api  # noqa: F401


def require_server(settings: OpenMetadataSettings) -> None:
    """Raise :class:`~pipelines.errors.UsageError` when no server or no token is configured: checked before the SDK's
    import, so a command that cannot publish says so at once instead of after that import."""
    if settings.url is None:
        raise UsageError("no OpenMetadata server configured",
                         hint="set FP_OPENMETADATA__URL and FP_OPENMETADATA__TOKEN, or use --dry-run")
    if settings.token is None:
        raise UsageError("FP_OPENMETADATA__URL is set but FP_OPENMETADATA__TOKEN is not",
                         hint="copy a bot's JWT token (OpenMetadata: Settings -> Bots -> ingestion-bot) into "
                              "FP_OPENMETADATA__TOKEN")


def connect(settings: OpenMetadataSettings) -> Any:
    """An ``OpenMetadata`` client for ``settings`` with timeouts; checks the server's version (one GET).

    Raises :class:`~pipelines.errors.UsageError` when no server or token is configured, and the errors of
    :func:`translate` when the server does not answer or its major.minor version differs from the SDK's.
    """
    require_server(settings)
    skip_sdk_package_init()
    from metadata.generated.schema.entity.services.connections.metadata.openMetadataConnection import (
        AuthProvider,
        OpenMetadataConnection,
    )
    from metadata.generated.schema.security.client.openMetadataJWTClientConfig import OpenMetadataJWTClientConfig
    from metadata.ingestion.ometa.ometa_api import OpenMetadata

    connection = OpenMetadataConnection(
        hostPort=settings.url, authProvider=AuthProvider.openmetadata, enableVersionValidation=True,
        securityConfig=OpenMetadataJWTClientConfig(jwtToken=settings.token.get_secret_value()))
    timeout = settings.timeout_s
    try:
        return OpenMetadata(connection, additional_client_config_arguments={
            "timeout": (timeout, timeout), "retry": 0, "retry_wait": 0})
    except Exception as error:
        raise translate(error, "version check", settings.url) from error


def translate(error: BaseException, what: str, url: str | None) -> PlatformError:
    """The platform error for a failure of the SDK while doing ``what`` (see the module docstring)."""
    if isinstance(error, PlatformError):
        return error
    skip_sdk_package_init()
    import requests
    from metadata.ingestion.ometa.client import APIError, RestTransportError
    from metadata.ingestion.ometa.mixins.server_mixin import VersionMismatchException

    if isinstance(error, RestTransportError | requests.ConnectionError | requests.Timeout):
        cause = getattr(error, "cause", error)
        return ServiceUnavailableError(f"OpenMetadata did not answer ({what}): {type(cause).__name__}: {cause}",
                                       hint=_HINT_UNREACHABLE, url=url)
    if isinstance(error, VersionMismatchException):
        return LineageRejectedError(f"OpenMetadata version does not match the SDK: {error}",
                               hint="use a server of the same major.minor version as openmetadata-ingestion", url=url)
    if isinstance(error, APIError):
        status = error.status_code or _int(error.code)
        return by_status(status, f"{what}: {error}", url)
    if isinstance(error, requests.HTTPError) and error.response is not None:
        return by_status(error.response.status_code, f"{what}: {error}", url)
    return LineageServerError(f"unexpected answer from OpenMetadata ({what}): {type(error).__name__}: {error}",
                              url=url)


def by_status(status: int | None, message: str, url: str | None) -> PlatformError:
    """A transient error for 5xx/429 (or an unknown status), a terminal one for every other status."""
    if status is None or status >= 500 or status == 429:
        return LineageServerError(f"OpenMetadata failed (HTTP {status}): {message}", url=url)
    hint = ("the token is missing, expired or lacks the right (a bot needs EditAll / EditLineage)"
            if status in (401, 403) else "the request was refused; see the message")
    return LineageRejectedError(f"OpenMetadata refused (HTTP {status}): {message}", hint=hint, url=url)


def check_lineage_answer(answer: Any, what: str, url: str | None) -> dict[str, Any]:
    """Raise when ``add_lineage`` returned its error dict instead of the lineage; return the answer otherwise."""
    if isinstance(answer, dict) and "error" in answer:
        text = str(answer["error"])
        found = re.search(r"Error (\d{3})", text)
        raise by_status(int(found.group(1)) if found else None, f"{what}: {text}", url)
    return answer if isinstance(answer, dict) else {}


def _int(value: Any) -> int | None:
    try:
        return int(value)
    except (TypeError, ValueError):
        return None
