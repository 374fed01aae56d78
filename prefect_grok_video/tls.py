"""The one TLS context this process's HTTP clients share."""

from __future__ import annotations

import functools
import os
import ssl

import httpx

__all__ = ["tls_context"]


def tls_context() -> ssl.SSLContext:
    """httpx's default verification (`SSL_CERT_FILE`, `SSL_CERT_DIR`, else certifi's bundle),
    built once per set of those variables: building one reads a whole CA bundle (tens of
    milliseconds), and each client, and each client's download pool, would build its own."""
    return _context(os.environ.get("SSL_CERT_FILE"), os.environ.get("SSL_CERT_DIR"))


@functools.lru_cache(maxsize=4)
def _context(cert_file: str | None, cert_dir: str | None) -> ssl.SSLContext:
    """httpx reads the variables itself: they are the arguments only to key the cache."""
    return httpx.create_ssl_context()
