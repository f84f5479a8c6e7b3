"""PrometheusConnection: one Prometheus server reached through ``prometheus-api-client``, one attempt per query.

Owns the HTTP side of a query: the ``requests`` session handed to ``PrometheusConnect`` (TLS
verification, the credentials and headers of exactly this connection), and the translation of
every failure into a typed error:

- an answer with a status other than 200 is read from the ``requests.Response`` itself, by a
  response hook on the session we give the library (its own ``PrometheusApiClientException``
  only carries a formatted message): Prometheus' JSON error (``errorType``/``error``) with a 4xx
  is ``MetricsQueryError`` (bad PromQL, 422 execution error: retrying will not help), with a 5xx
  ``MetricsUnavailable`` (e.g. its query timeout); a 4xx that is not Prometheus' (a proxy's
  401/403/404) is ``MetricsQueryError``, a 5xx that is not Prometheus' (a proxy's 502/503/504)
  is ``PrometheusUnreachable``;
- connection refused, DNS or TLS failures, timeouts and a 200 that is not Prometheus' JSON are
  ``PrometheusUnreachable`` (Prometheus itself did not answer).

The library's own retry adapter is replaced by one that never retries (``Retry(0, read=False)``,
what ``requests`` does by default): retries are the runtime's (``METRICS_READS``), with one
budget and one deadline, and a tick must learn quickly that a server is down.
It must not retry, sleep, or send one connection's credentials anywhere else.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any

import requests
from prometheus_api_client.exceptions import PrometheusApiClientException
from prometheus_api_client.prometheus_connect import PrometheusConnect
from urllib3.util.retry import Retry

from rollout.errors import MetricsError, MetricsQueryError, MetricsUnavailable


class PrometheusUnreachable(MetricsUnavailable):
    """Prometheus itself did not answer (refused, timed out, TLS, a proxy's 5xx or page): the
    provider sends that server nothing more in the same tick."""


class _Refused(Exception):
    """Raised by the response hook for a non-200 answer; turned into a typed error with the query."""

    def __init__(self, status: int, reason: str, *, from_prometheus: bool) -> None:
        super().__init__(f"HTTP {status} {reason}")
        self.status = status
        self.reason = reason
        self.from_prometheus = from_prometheus


def _check_status(response: requests.Response, *args: Any, **kwargs: Any) -> requests.Response:
    """Response hook: let 200 and redirects through; anything else raises ``_Refused`` with the
    status and Prometheus' own error when the body is Prometheus' JSON."""
    if response.status_code == 200 or response.is_redirect:
        return response
    body: Any = None
    try:
        body = response.json()
    except ValueError:
        body = None
    if isinstance(body, dict) and body.get("status") == "error" and "error" in body:
        reason = f"{body.get('errorType', 'error')}: {body['error']}"
        raise _Refused(response.status_code, reason, from_prometheus=True)
    text = response.text.strip().replace("\n", " ")
    raise _Refused(response.status_code, f"{response.reason or ''}: {text[:200]}".strip(": "), from_prometheus=False)


def _root_cause(error: BaseException) -> str:
    """The operating system's reason behind a requests error (``[Errno 111] Connection refused``),
    found by walking the exception chain, or the error's type."""
    seen: set[int] = set()
    current: BaseException | None = error
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        if isinstance(current, OSError) and current.errno is not None and current.strerror:
            return f"[Errno {current.errno}] {current.strerror}"
        current = current.__cause__ or current.__context__
    return type(error).__name__


class PrometheusConnection:
    """One server with one identity: a URL, the headers and credentials to send it, a timeout."""

    def __init__(
        self,
        url: str,
        *,
        headers: Mapping[str, str],
        basic_auth: tuple[str, str] | None = None,
        verify: bool | str = True,
        timeout_seconds: float = 10.0,
    ) -> None:
        self.url = url.rstrip("/")
        self.timeout_seconds = timeout_seconds
        session = requests.Session()
        session.verify = verify
        session.hooks["response"].append(_check_status)
        self._client = PrometheusConnect(
            url=self.url,
            headers=dict(headers),
            auth=basic_auth,  # type: ignore[arg-type]  # the library annotates `auth: tuple = None`
            session=session,
            timeout=timeout_seconds,  # type: ignore[arg-type]  # annotated int; requests takes float seconds
            retry=Retry(0, read=False),
        )

    def close(self) -> None:
        self._client.close()

    def query(self, promql: str, at: datetime) -> Any:
        """The ``result`` of one instant query evaluated at ``at``; exactly one HTTP request.

        The library sends the query in the URL (``/api/v1/query?query=...&time=...``), whatever the
        method: a batch of 1,000 rollouts makes a URL of about 40 kB, which Prometheus accepts (Go's
        1 MB header limit); a proxy in front of it that refuses long URLs answers 414, a QUERY_ERROR.
        """
        try:
            return self._client.custom_query(promql, params={"time": f"{at.timestamp():.3f}"})
        except _Refused as e:
            raise self._translate(e, promql) from e
        except requests.exceptions.Timeout as e:
            raise PrometheusUnreachable(
                f"Prometheus at {self.url} did not answer within {self.timeout_seconds:g}s"
            ) from e
        except requests.exceptions.JSONDecodeError as e:  # a 200 that is not Prometheus' JSON
            raise PrometheusUnreachable(f"Prometheus at {self.url} sent an answer that is not Prometheus' JSON") from e
        except requests.exceptions.ConnectionError as e:  # refused, DNS, TLS
            raise PrometheusUnreachable(f"Prometheus at {self.url} is unreachable: {_root_cause(e)}") from e
        except requests.exceptions.RequestException as e:
            raise MetricsUnavailable(f"Prometheus at {self.url}: {type(e).__name__}: {_root_cause(e)}") from e
        except (KeyError, TypeError) as e:  # JSON, but without data.result
            raise PrometheusUnreachable(f"Prometheus at {self.url} sent JSON without data.result") from e
        except PrometheusApiClientException as e:  # the hook raises first; kept so no library error escapes
            raise MetricsUnavailable(f"Prometheus at {self.url} refused the query: {e}") from e

    def _translate(self, refused: _Refused, promql: str) -> MetricsError:
        what = f"Prometheus at {self.url} answered HTTP {refused.status} {refused.reason}"
        if 400 <= refused.status < 500:
            return MetricsQueryError(what, query=promql)
        if refused.from_prometheus:
            return MetricsUnavailable(f"{what} (query: {promql})")
        return PrometheusUnreachable(f"{what} (not Prometheus' own answer: a proxy in front of it?)")
