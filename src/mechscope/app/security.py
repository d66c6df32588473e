"""What stands between the web app and the browser: one ASGI middleware, checked on every request.

::

    app = Guard(app, Guarding(port=8765, loopback=True, token=None))

* **Host header** (DNS rebinding): while the server listens on a loopback address, a
  request whose ``Host`` is anything but ``localhost`` or a loopback address (``127.0.0.1``,
  ``[::1]``…) is refused, so a page on a foreign domain that re-resolves its name to 127.0.0.1 cannot read
  the store.
* **Access token**: bound to another address, every request needs the random token the
  server printed, as Jupyter does: ``?token=…`` once (it becomes an HttpOnly, SameSite
  cookie and the URL is cleaned by a redirect), or ``Authorization: Bearer …`` for scripts.
* **Cross-site requests**: a request that may change something (POST, PUT, PATCH, DELETE)
  must carry the header ``X-Mechscope-Request`` (a page on another origin cannot add a
  custom header without a CORS preflight, which this server never grants) and, when the
  browser sends an ``Origin``, it must be this server's. Routes for programs (the
  OpenAI-compatible ``/v1/``) need ``Content-Type: application/json`` instead, which a
  cross-site form cannot send either. GET never changes anything.
* **Body size**: a body over ``max_body`` bytes is refused with 413 before it is read
  whole (a declared ``Content-Length``, or counted as it streams).
* **Headers**: a Content-Security-Policy that allows scripts from this server only (no
  inline script, nothing from a CDN), no framing, no sniffing, no referrer.

Refusals say why, as JSON ``{"detail": …}`` under ``/api/`` and ``/v1/``, as text elsewhere.
"""

from __future__ import annotations

import ipaddress
import json
import secrets
from dataclasses import dataclass
from http.cookies import SimpleCookie
from urllib.parse import parse_qsl, urlencode

TOKEN_COOKIE = "mechscope_token"
CSRF_HEADER = "x-mechscope-request"
"""The header every state-changing request from the app's own pages carries."""
UNSAFE = frozenset({"POST", "PUT", "PATCH", "DELETE"})
CSP = ("default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; img-src 'self' data:; "
       "connect-src 'self'; object-src 'none'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'")
"""Scripts only from this server's /static/ (inline styles are allowed: token highlights set them)."""
ARTIFACT_CSP = "sandbox; default-src 'none'; img-src data:; style-src 'unsafe-inline'"
"""Stored files (a report.html) are shown sandboxed: no script of theirs runs."""


def is_loopback(host: str) -> bool:
    """Whether ``host`` (as given to ``--host``, or a Host header's name) is a loopback name or address."""
    host = host.strip("[]").lower()
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


@dataclass(frozen=True, kw_only=True)
class Guarding:
    """What :class:`Guard` enforces."""

    loopback: bool = True
    """Listening on a loopback address: foreign Host headers are refused."""
    token: str | None = None
    """The access token every request needs (None: none needed)."""
    max_body: int = 64 * 1024
    """Largest request body accepted, in bytes."""
    program_prefixes: tuple[str, ...] = ("/v1/",)
    """Paths for programs rather than pages: JSON content type instead of the custom header."""

    def __post_init__(self) -> None:
        if self.token is not None and len(self.token) < 16:
            raise ValueError(f"Guarding.token must have at least 16 characters; received {len(self.token)}")
        if self.max_body < 1:
            raise ValueError(f"Guarding.max_body must be positive; received {self.max_body}")


def new_token() -> str:
    """A random access token (256 bits, URL-safe)."""
    return secrets.token_urlsafe(32)


class Guard:
    """ASGI middleware applying :class:`Guarding` (see the module docstring)."""

    def __init__(self, app, guarding: Guarding) -> None:
        self.app, self.guarding = app, guarding

    async def __call__(self, scope, receive, send) -> None:
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope["headers"]}
        refusal = self._refusal(scope, headers)
        if refusal is not None:
            return await _respond(scope, send, *refusal)
        query = dict(parse_qsl(scope.get("query_string", b"").decode("latin-1")))
        if self.guarding.token and "token" in query:
            return await self._accept_token(scope, send, query)
        declared = headers.get("content-length")
        if declared is not None and declared.isdigit() and int(declared) > self.guarding.max_body:
            return await _respond(scope, send, 413, _too_big(int(declared), self.guarding.max_body))
        body = await _read_body(receive, self.guarding.max_body)
        if body is None:
            return await _respond(scope, send, 413, _too_big(None, self.guarding.max_body))
        await self.app(scope, _replay(body, receive), _with_headers(send, scope))

    def _refusal(self, scope, headers: dict[str, str]) -> tuple[int, str] | None:
        host = headers.get("host", "")
        if self.guarding.loopback and not is_loopback(_hostname(host)):
            return 400, (f"refused: the Host header {host!r} is not this server's address; it listens on the loopback "
                         f"interface only (protection against DNS rebinding): open http://127.0.0.1 with its port")
        if self.guarding.token and not self._has_token(scope, headers):
            return 403, ("this server needs its access token: open the URL with ?token=… that `mechscope serve` "
                         "printed, or send Authorization: Bearer <token>")
        if scope["method"] in UNSAFE:
            return _cross_site(scope, headers, self.guarding.program_prefixes)
        return None

    def _has_token(self, scope, headers: dict[str, str]) -> bool:
        token = self.guarding.token
        bearer = headers.get("authorization", "")
        if bearer.lower().startswith("bearer ") and secrets.compare_digest(bearer[7:].strip(), token):
            return True
        cookie = SimpleCookie()
        try:
            cookie.load(headers.get("cookie", ""))
        except Exception:  # a malformed cookie header is no token
            return False
        name = _cookie_name(scope)
        if name in cookie and secrets.compare_digest(cookie[name].value, token):
            return True
        query = dict(parse_qsl(scope.get("query_string", b"").decode("latin-1")))
        return secrets.compare_digest(query.get("token", ""), token)

    async def _accept_token(self, scope, send, query: dict[str, str]) -> None:
        """The token arrived in the URL: keep it in a cookie and redirect to the URL without it."""
        rest = urlencode({k: v for k, v in query.items() if k != "token"})
        location = scope.get("root_path", "") + scope["path"] + (f"?{rest}" if rest else "")
        cookie = f"{_cookie_name(scope)}={self.guarding.token}; Path=/; HttpOnly; SameSite=Strict"
        await send({"type": "http.response.start", "status": 303,
                    "headers": [(b"location", location.encode("latin-1")), (b"set-cookie", cookie.encode("latin-1")),
                                *_security_headers(scope)]})
        await send({"type": "http.response.body", "body": b""})


def _cookie_name(scope) -> str:
    """The token's cookie, named after the port: browsers share cookies between a host's ports."""
    server = scope.get("server") or ("", 0)
    return f"{TOKEN_COOKIE}_{server[1] or 0}"


def _cross_site(scope, headers: dict[str, str], program_prefixes: tuple[str, ...]) -> tuple[int, str] | None:
    origin = headers.get("origin")
    if origin is not None and _hostport(origin) != headers.get("host", "").lower():
        return 403, f"refused: a cross-site request (Origin {origin!r}) may not change anything here"
    if scope["path"].startswith(program_prefixes):
        if not headers.get("content-type", "").lower().startswith("application/json"):
            return 415, "send the request body as JSON (Content-Type: application/json)"
        return None
    if CSRF_HEADER not in headers:
        return 403, (f"refused: a request that may change something must come from the app's own pages (header "
                     f"{CSRF_HEADER} missing); use the page's buttons, or send the header from a script")
    return None


def _hostname(host: str) -> str:
    """``example.com`` from ``example.com:8765``; ``::1`` from ``[::1]:8765``."""
    host = host.strip().lower()
    if host.startswith("["):
        return host[1:].split("]", 1)[0]
    return host.rsplit(":", 1)[0] if host.count(":") == 1 else host


def _hostport(origin: str) -> str:
    return origin.lower().split("://", 1)[-1].rstrip("/")


def _too_big(size: int | None, limit: int) -> str:
    got = f"of {size:,} bytes " if size is not None else ""
    return f"the request body {got}is over the limit of {limit:,} bytes; send a shorter prompt"


async def _read_body(receive, limit: int) -> bytes | None:
    """The whole request body (bodies here are small), or None once it passes ``limit`` bytes."""
    chunks, seen = [], 0
    while True:
        message = await receive()
        if message["type"] != "http.request":
            break
        chunk = message.get("body", b"")
        seen += len(chunk)
        if seen > limit:
            return None
        chunks.append(chunk)
        if not message.get("more_body", False):
            break
    return b"".join(chunks)


def _replay(body: bytes, receive):
    """``receive`` that hands the app the body read already, then waits as before (disconnect)."""
    sent = False

    async def wrapped():
        nonlocal sent
        if not sent:
            sent = True
            return {"type": "http.request", "body": body, "more_body": False}
        return await receive()

    return wrapped


def _security_headers(scope) -> list[tuple[bytes, bytes]]:
    path = scope["path"]
    csp = ARTIFACT_CSP if "/artifacts/" in path else CSP
    return [(b"content-security-policy", csp.encode()), (b"x-content-type-options", b"nosniff"),
            (b"x-frame-options", b"DENY"), (b"referrer-policy", b"no-referrer"),
            (b"cross-origin-opener-policy", b"same-origin"), (b"cross-origin-resource-policy", b"same-origin")]


def _with_headers(send, scope):
    async def wrapped(message):
        if message["type"] == "http.response.start":
            names = {k.lower() for k, _ in message.get("headers", [])}
            extra = [(k, v) for k, v in _security_headers(scope) if k not in names]
            message = {**message, "headers": [*message.get("headers", []), *extra]}
        await send(message)

    return wrapped


async def _respond(scope, send, status: int, detail: str) -> None:
    if scope["path"].startswith(("/api/", "/v1/")):
        body, kind = json.dumps({"detail": detail}).encode(), b"application/json"
    else:
        body, kind = (detail + "\n").encode(), b"text/plain; charset=utf-8"
    await send({"type": "http.response.start", "status": status,
                "headers": [(b"content-type", kind), (b"content-length", str(len(body)).encode()),
                            *_security_headers(scope)]})
    await send({"type": "http.response.body", "body": body})
