"""The server's limits, a plain dataclass: the command line builds them without importing the web stack."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass
class ServeLimits:
    """Bounds that keep one server healthy under bad or heavy traffic."""

    max_upload_bytes: int = 8 * 1024 * 1024
    max_pixels: int = 4096 * 4096
    max_concurrent: int = 2  # inferences running at once
    max_queue: int = 32  # requests waiting for a slot before the server answers 503
    read_timeout: float = 15.0  # seconds a client may take to send its upload before the server answers 408
    header_timeout: float = 10.0  # seconds a new connection may take to send its request's headers, else closed
    max_connections: int = 200  # connections and requests at once; beyond, the server answers 503


#: host names that mean this machine alone: a server bound to one answers no other machine
LOOPBACK = ("127.0.0.1", "localhost", "::1")
