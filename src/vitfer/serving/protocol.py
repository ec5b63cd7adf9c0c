"""HTTP/1.1 for the server: uvicorn's h11 protocol with a deadline for a request's headers.

A client that opens a connection and sends half a request line would otherwise hold a socket, a descriptor and
a slot for ever (uvicorn's keep-alive timeout starts only after a first response); fifty such clients starve the
server. Here a connection whose first request has not arrived whole within ``header_timeout`` seconds is closed.
"""

from __future__ import annotations

import asyncio
import os

from uvicorn.protocols.http.h11_impl import H11Protocol

#: the deadline travels to worker processes (which import this module afresh) in the environment
TIMEOUT_ENV = "VITFER_HEADER_TIMEOUT"


class HeaderDeadlineProtocol(H11Protocol):
    """h11 with a deadline for the first request's headers (set by ``vitfer.serving.app.server_config``)."""

    header_timeout: float = float(os.environ.get(TIMEOUT_ENV, "10"))

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self._header_deadline = self.loop.call_later(self.header_timeout, self._headers_too_slow)

    def data_received(self, data: bytes) -> None:
        super().data_received(data)
        if self.cycle is not None and self._header_deadline is not None:  # a whole request line and headers
            self._header_deadline.cancel()
            self._header_deadline = None

    def connection_lost(self, exc: Exception | None) -> None:
        if self._header_deadline is not None:
            self._header_deadline.cancel()
            self._header_deadline = None
        super().connection_lost(exc)

    def _headers_too_slow(self) -> None:
        self._header_deadline = None
        if self.cycle is None and not self.transport.is_closing():
            self.transport.close()
