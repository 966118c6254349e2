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
        raise NiceganError(f"--host {host}: {e.strerror}") from None
    family, kind, proto, _, addr = infos[0]
    with socket.socket(family, kind, proto) as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind(addr)
        except OSError as e:
            raise NiceganError(f"cannot listen on {host}:{port}: {e.strerror or e} (another server there? pass "
                               "--port)") from None


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
    server = Server(uvicorn.Config(app, host=host, port=port, log_level="warning", access_log=False))
    with contextlib.suppress(KeyboardInterrupt):  # uvicorn re-raises the Ctrl-C it handled: a normal end
        server.run()
    if not server.started and not server.should_exit:  # uvicorn logged why (check_port caught the usual causes)
        raise NiceganError(f"the server could not start on {host}:{port}")


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
