"""Helpers shared by the web apps (``nicegan serve``, ``nicegan user-study serve``): the extra they need, the
address they listen on, and running them with uvicorn.

FastAPI and uvicorn are imported only inside functions, so ``import nicegan.web`` costs nothing without them.
"""

from __future__ import annotations

import contextlib
import html
import ipaddress
import json
import logging
import re
import socket
import threading
from collections import OrderedDict
from collections.abc import Callable
from typing import Any

from nicegan.core.errors import NiceganError

log = logging.getLogger("nicegan")

#: security headers every page and JSON answer carries: no MIME sniffing, no referrer leaving the machine
BASE_HEADERS = {"X-Content-Type-Options": "nosniff", "Referrer-Policy": "no-referrer"}

#: the pages may talk to their own server only; inline script and style because each is one self-contained file
PAGE_POLICY = ("default-src 'none'; script-src 'unsafe-inline'; style-src 'unsafe-inline'; "
               "img-src 'self' data: blob:; connect-src 'self'; base-uri 'none'; form-action 'none'; "
               "frame-ancestors 'none'")


def require_web(what: str = "the web app") -> None:
    """A one-line :class:`NiceganError` naming the extra to install when FastAPI, uvicorn or python-multipart is
    missing (``what`` says which command needs them)."""
    from importlib.util import find_spec

    # python-multipart (the form parser) is python_multipart since 0.0.13, multipart before; find_spec does not
    # import it (importing the old name warns)
    needed = {"fastapi": ("fastapi",), "uvicorn": ("uvicorn",), "python-multipart": ("python_multipart", "multipart")}
    for name, modules in needed.items():
        if not any(find_spec(m) for m in modules):
            raise NiceganError(f"{what} needs the web extra ({name} is missing): pip install \"nicegan[web]\"")


def is_loopback(host: str) -> bool:
    """Whether ``host`` is reachable from this machine only (127.0.0.0/8, ::1, localhost)."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def browser_url(host: str, port: int) -> str:
    """The address a user opens in a browser for a server listening on ``host``: the loopback address for a
    wildcard bind, IPv6 addresses in brackets."""
    if host in ("0.0.0.0", "::", ""):
        host = "127.0.0.1"
    return f"http://{f'[{host}]' if ':' in host else host}:{port}/"


def check_port(host: str, port: int) -> None:
    """A one-line error when ``host:port`` cannot be listened on (uvicorn would only log it and exit)."""
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except socket.gaierror as e:
        raise NiceganError(f"host {host}: {e.strerror}", option="host") from None
    family, kind, proto, _, addr = infos[0]
    with socket.socket(family, kind, proto) as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind(addr)
        except OSError as e:
            raise NiceganError(f"cannot listen on {host}:{port}: {e.strerror or e} (another server there? choose "
                               "another port)", option="port") from None


def run_app(app: Any, host: str, port: int, on_stop: Callable[[], None] | None = None) -> None:
    """Serve ``app`` with uvicorn until Ctrl-C or SIGTERM (a normal end, not an error); on a loopback address only
    requests naming a loopback host are answered (:func:`loopback_hosts_only`).

    ``on_stop`` is called from the signal handler as soon as a stop is asked: uvicorn then waits for the requests
    in flight, so an app whose requests can take long (a full-resolution translation) ends them there.
    """
    import uvicorn

    class Server(uvicorn.Server):
        def handle_exit(self, sig: int, frame: Any) -> None:
            if on_stop is not None:
                on_stop()
            super().handle_exit(sig, frame)

    if is_loopback(host):
        app = loopback_hosts_only(app)
    server = Server(server_config(app, host, port))
    with contextlib.suppress(KeyboardInterrupt):  # uvicorn re-raises the Ctrl-C it handled: a normal end
        server.run()
    if not server.started and not server.should_exit:  # uvicorn logged why (check_port caught the usual causes)
        raise NiceganError(f"the server could not start on {host}:{port}")


#: the longest a connection may take to send a request's line and headers (slowloris connections that drip a few
#: bytes at a time are answered 408 and closed after this), and to send the next request once an answer is sent
HEADER_TIMEOUT_S = 10.0
KEEP_ALIVE_S = 5.0
#: the largest request line plus headers: past it, 414 (a URL that long) or 431 (headers that large), not a drop
MAX_HEAD_BYTES = 64 * 1024
#: open connections past which new requests are answered 503 at once (each costs a socket and a little memory)
MAX_CONNECTIONS = 512


def server_config(app: Any, host: str, port: int, *, max_connections: int = MAX_CONNECTIONS, **options: Any) -> Any:
    """The uvicorn configuration of every nicegan web server: the h11 protocol with :func:`guarded_protocol`'s
    limits (head size, head time), the keep-alive time and the connection limit (``max_connections``: a request
    arriving while that many connections are open, its own included, is answered 503 and its connection closed)."""
    import uvicorn

    return uvicorn.Config(head_limits(app), host=host, port=port, log_level="warning", access_log=False,
                          http=guarded_protocol(),
                          h11_max_incomplete_event_size=MAX_HEAD_BYTES, timeout_keep_alive=int(KEEP_ALIVE_S),
                          limit_concurrency=max_connections, **options)


#: the most header fields a request may carry
MAX_HEADERS = 100


def head_limits(app: Any) -> Any:
    """ASGI wrapper answering 414 to a request whose target is over :data:`MAX_HEAD_BYTES` and 431 to one whose
    headers are (or that carries over :data:`MAX_HEADERS` of them): h11 bounds only a head that arrives in pieces,
    not one that arrives whole."""

    async def limited(scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] == "http":
            headers = scope.get("headers") or []
            target = len(scope.get("raw_path") or b"") + len(scope.get("query_string") or b"")
            status, message = 0, ""
            if target > MAX_HEAD_BYTES:
                status, message = 414, f"the request's URL is over {MAX_HEAD_BYTES:,} bytes"
            elif len(headers) > MAX_HEADERS or sum(len(k) + len(v) + 4 for k, v in headers) > MAX_HEAD_BYTES:
                status, message = 431, (f"the request's headers are over {MAX_HEADERS} fields or "
                                        f"{MAX_HEAD_BYTES:,} bytes")
            if status:
                body = json.dumps({"error": message}).encode()
                await send({"type": "http.response.start", "status": status,
                            "headers": [(b"content-type", b"application/json"), (b"connection", b"close"),
                                        (b"content-length", str(len(body)).encode())]})
                await send({"type": "http.response.body", "body": body})
                return
        await app(scope, receive, send)

    return limited


def guarded_protocol() -> type:
    """uvicorn's h11 protocol with two promises added: a request whose line and headers are not complete within
    :data:`HEADER_TIMEOUT_S` of the connection (or of the previous answer) is answered 408 and closed, and a head
    over :data:`MAX_HEAD_BYTES` is answered 414 (the request line is that long) or 431 (the headers are), where
    uvicorn says 400 or drops the connection. The class is made here: uvicorn is imported only when serving."""
    from uvicorn.protocols.http.h11_impl import H11Protocol

    def answer(protocol: Any, status: int, reason: bytes, message: str) -> None:
        body = json.dumps({"error": message}).encode()
        protocol.transport.write(b"HTTP/1.1 %d %s\r\ncontent-type: application/json\r\nconnection: close\r\n"
                                 b"content-length: %d\r\n\r\n%s" % (status, reason, len(body), body))
        protocol.transport.close()

    class GuardedH11Protocol(H11Protocol):
        _head_timer: Any = None

        def _arm(self) -> None:
            self._disarm()
            self._head_timer = self.loop.call_later(HEADER_TIMEOUT_S, self._head_timeout)

        def _disarm(self) -> None:
            if self._head_timer is not None:
                self._head_timer.cancel()
                self._head_timer = None

        def _head_timeout(self) -> None:
            self._head_timer = None
            if self.transport.is_closing() or (self.cycle is not None and not self.cycle.response_complete):
                return  # a request is being served: its body and work have their own time limits
            if not self.conn.trailing_data[0]:  # nothing sent at all: closed without an answer, as when idle
                self.transport.close()
                return
            answer(self, 408, b"Request Timeout", f"the request's headers were not complete after "
                                                  f"{HEADER_TIMEOUT_S:.0f} s")

        def connection_made(self, transport: Any) -> None:
            super().connection_made(transport)
            self._arm()

        def connection_lost(self, exc: Exception | None) -> None:
            self._disarm()
            super().connection_lost(exc)

        def data_received(self, data: bytes) -> None:
            before = self.cycle
            super().data_received(data)
            if self.cycle is not before:  # a request's head arrived whole
                self._disarm()
            elif self._head_timer is None and not self.transport.is_closing() and (
                    self.cycle is None or self.cycle.response_complete):
                self._arm()  # the next request's head has begun on a kept-alive connection

        def send_400_response(self, msg: str) -> None:
            buffered = bytes(self.conn.trailing_data[0])
            if len(buffered) <= MAX_HEAD_BYTES or (self.cycle is not None and not self.cycle.response_complete):
                super().send_400_response(msg)
                return
            if b"\r\n" not in buffered[:MAX_HEAD_BYTES]:
                answer(self, 414, b"URI Too Long", f"the request line is over {MAX_HEAD_BYTES:,} bytes")
            else:
                answer(self, 431, b"Request Header Fields Too Large",
                       f"the request's headers are over {MAX_HEAD_BYTES:,} bytes")

    return GuardedH11Protocol


#: an HTTP Host header: a name or IPv4 address, or an IPv6 address in brackets, and an optional numeric port
_HOST_RE = re.compile(r"(?:\[(?P<ip6>[0-9a-f:.]+)\]|(?P<name>[a-z0-9._-]+))(?::(?P<port>[0-9]{1,5}))?")


def host_of(header: str) -> str | None:
    """The host of an HTTP ``Host`` header (``[::1]:7860`` -> ``::1``, ``localhost:80`` -> ``localhost``, an empty
    header -> ``""``), or None when the header is not a host and an optional numeric port (``localhost:evil.com``,
    ``localhost:1@evil.com``): what comes before a ``:`` is no host name unless what follows is a port."""
    m = _HOST_RE.fullmatch(header.strip().lower())
    if m is None:
        return "" if not header.strip() else None
    if m["port"] is not None and int(m["port"]) > 65535:
        return None
    if m["ip6"] is not None:
        try:
            ipaddress.IPv6Address(m["ip6"])
        except ValueError:
            return None
        return m["ip6"]
    return m["name"]


def loopback_hosts_only(app: Any) -> Any:
    """ASGI wrapper answering 421 to HTTP requests whose ``Host`` is not a loopback name or address, and 400 to
    those whose ``Host`` is not a host and optional port at all (or that carry more than one).

    A server on 127.0.0.1 is out of other machines' reach, but a web page the user visits could point a name it
    controls at 127.0.0.1 (DNS rebinding) and drive the app from the user's browser; such requests carry that
    name as their Host and are refused here.
    """

    async def refuse(send: Any, status: int, message: str) -> None:
        body = json.dumps({"error": message}).encode()
        await send({"type": "http.response.start", "status": status,
                    "headers": [(b"content-type", b"application/json"),
                                (b"content-length", str(len(body)).encode())]})
        await send({"type": "http.response.body", "body": body})

    async def guarded(scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] == "http":
            values = [v.decode("latin-1") for k, v in scope.get("headers") or [] if k.lower() == b"host"]
            if len(values) > 1:
                await refuse(send, 400, "the request carries more than one Host header")
                return
            text = values[0] if values else ""
            host = host_of(text)
            if host is None:
                await refuse(send, 400, f"the Host header {text[:60]!r} is not a host name or address with an "
                                        "optional port")
                return
            if not is_loopback(host):
                await refuse(send, 421, f"this server answers requests for 127.0.0.1 or localhost only, not "
                                        f"{host[:60]!r}")
                return
        await app(scope, receive, send)

    return guarded


class ByteBoundedCache:
    """A thread-safe least-recently-used cache bounded by the total size of its values in bytes (an entry count
    does not bound memory when values range from kilobytes to megabytes)."""

    def __init__(self, max_bytes: int) -> None:
        self.max_bytes = max_bytes
        self._items: OrderedDict[Any, bytes] = OrderedDict()
        self._size = 0
        self._lock = threading.Lock()

    def get(self, key: Any, make: Callable[[], bytes]) -> bytes:
        """The cached value of ``key``, made with ``make()`` (outside the lock) when missing."""
        with self._lock:
            if key in self._items:
                self._items.move_to_end(key)
                return self._items[key]
        value = make()
        with self._lock:
            if key not in self._items and len(value) <= self.max_bytes:
                self._items[key] = value
                self._size += len(value)
                while self._size > self.max_bytes:
                    self._size -= len(self._items.popitem(last=False)[1])
        return value


def html_escape(text: str) -> str:
    """``text`` safe inside HTML text and attribute values."""
    return html.escape(text, quote=True)


def script_json(value: Any) -> str:
    """``value`` as JSON safe inside a ``<script>`` element (no ``</script>`` or ``<!--`` can be formed)."""
    return json.dumps(value).replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026")
