"""The one small HTTP client that the CLI, the worker and the task-script library share."""

from __future__ import annotations

from typing import Any

import httpx

from runyard.errors import RunyardError


class RemoteError(RunyardError):
    """An error the server answered with (its code, status and message)."""

    def __init__(self, status: int, code: str, message: str, details: dict[str, Any]) -> None:
        super().__init__(message, **details)
        self.status_code = status
        self.remote_code = code

    @property
    def is_stale_lease(self) -> bool:
        return self.status_code == 409


class Unreachable(RunyardError):
    code = "unreachable"
    status = 503


class Client:
    def __init__(self, server: str, token: str, *, timeout: float = 60.0) -> None:
        self.server = server.rstrip("/")
        self._http = httpx.Client(
            base_url=self.server,
            headers={"Authorization": f"Bearer {token}"} if token else {},
            timeout=timeout,
        )

    def request(
        self,
        method: str,
        path: str,
        *,
        json: Any = None,
        content: bytes | None = None,
        params: dict[str, Any] | None = None,
        timeout: float | None = None,
    ) -> Any:
        """Call the API; the decoded JSON answer, or bytes for a zip; errors raise."""
        try:
            response = self._http.request(
                method,
                path,
                json=json,
                content=content,
                params=params,
                timeout=timeout if timeout is not None else httpx.USE_CLIENT_DEFAULT,
            )
        except httpx.TransportError as exc:
            raise Unreachable(f"cannot reach the Runyard server at {self.server}: {exc}") from None
        if response.status_code >= 400:
            raise _remote_error(response)
        if response.headers.get("content-type", "").startswith("application/json"):
            return response.json()
        return response.content

    def get(self, path: str, **kwargs: Any) -> Any:
        return self.request("GET", path, **kwargs)

    def post(self, path: str, json: Any = None, **kwargs: Any) -> Any:
        return self.request("POST", path, json=json, **kwargs)

    def close(self) -> None:
        self._http.close()

    def __enter__(self) -> Client:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _remote_error(response: httpx.Response) -> RemoteError:
    try:
        error = response.json()["error"]
        return RemoteError(
            response.status_code, error["code"], error["message"], error.get("details", {})
        )
    except (ValueError, KeyError, TypeError):
        return RemoteError(
            response.status_code,
            "http_error",
            f"HTTP {response.status_code}: {response.text[:500]}",
            {},
        )
