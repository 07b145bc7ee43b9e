"""A Nightscout-compatible read API on 127.0.0.1, for demos and for testing clients over HTTP.

It serves generated data (any range, up to now) or a file loaded with `load_file`, speaks the
v1 query language (see `cascade.demo.query`), checks `api-secret`/`token` like Nightscout, and
can misbehave on purpose: injected error statuses and a slow-response delay.
"""

from __future__ import annotations

import contextlib
import hashlib
import hmac
import json
import socketserver
import threading
import time
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, urlsplit

from cascade.demo.personalities import PERSONALITIES, personality
from cascade.demo.query import QueryError
from cascade.demo.stamps import iso_ms
from cascade.demo.store import FileStore, GeneratedStore, Store, select
from cascade.sources.files import load_file

HOST = "127.0.0.1"
API_PREFIX = "/api/v1/"
NIGHTSCOUT_VERSION = "15.0.2"
_POLL_SECONDS = 0.05  # how soon stop() is noticed (http.server's default waits up to 0.5 s)
# resource -> (collection, entry type the path selects)
_LISTS = {
    "entries": ("entries", None),
    "entries/sgv": ("entries", "sgv"),
    "entries/mbg": ("entries", "mbg"),
    "entries/cal": ("entries", "cal"),
    "treatments": ("treatments", None),
    "devicestatus": ("devicestatus", None),
}

Response = tuple[int, str, bytes]
# the uploaders many demo people cycle through (person-001 uses Loop, person-002 Trio, ...)
PEOPLE_UPLOADERS = ("loop", "trio", "aaps", "xdrip", "default")
MAX_PEOPLE = 9999


@dataclass(frozen=True)
class Person:
    """One of a many-people demo server's sites: `/person-NNN/`, its own seed and uploader."""

    slug: str
    seed: str
    uploader: str

    @property
    def zone(self) -> str:
        return PERSONALITIES[self.uploader].zone


def people(count: int, seed: str = "demo") -> list[Person]:
    """The `count` deterministic people a server with `sites=count` serves."""
    slugs = [f"person-{i:03d}" for i in range(1, count + 1)]
    return [
        Person(slug, f"{seed}-{slug}", PEOPLE_UPLOADERS[i % len(PEOPLE_UPLOADERS)])
        for i, slug in enumerate(slugs)
    ]


@dataclass
class _Fault:
    path_substring: str
    status: int
    remaining: int
    body: str | None


def _json(status: int, payload: Any) -> Response:
    body = json.dumps(payload, separators=(",", ":")).encode()
    return status, "application/json; charset=utf-8", body


def _error(status: int) -> Response:
    try:
        message = HTTPStatus(status).phrase
    except ValueError:  # a non-standard status injected by a test
        message = "Error"
    return _json(status, {"status": status, "message": message})


class DemoServer:
    """A Nightscout look-alike on 127.0.0.1 (port 0 picks a free port; see `url`).

    With `sites=N` it serves N distinct people instead of one, each under its own path
    (`site_urls`: `<url>/person-001` ...), as sites behind a reverse proxy are.
    """

    def __init__(
        self,
        port: int = 0,
        api_secret: str | None = None,
        token: str | None = None,
        file: Path | None = None,
        seed: str = "demo",
        now: datetime | None = None,
        delay_seconds: float = 0.0,
        uploader: str = "default",
        sites: int = 0,
    ) -> None:
        personality(uploader)  # an unknown uploader fails here, not on the first request
        if not 0 <= sites <= MAX_PEOPLE or (sites and file is not None):
            raise ValueError(f"sites must be 0..{MAX_PEOPLE}, and cannot be used with a file")
        self.store: Store = (
            FileStore(load_file(Path(file)))
            if file is not None
            else GeneratedStore(seed, now, uploader=uploader)
        )
        self.people = people(sites, seed)
        self._stores: dict[str, Store] = {
            p.slug: GeneratedStore(p.seed, now, uploader=p.uploader) for p in self.people
        }
        # records answered per request path, so tests can see what a refresh cost each site
        self.records_served: dict[str, int] = {}
        self._secret_sha1 = hashlib.sha1(api_secret.encode()).hexdigest() if api_secret else None
        self._token = token or None
        self.delay_seconds = delay_seconds
        self.request_log: list[tuple[str, dict[str, str]]] = []
        self._faults: list[_Fault] = []
        self._lock = threading.Lock()
        self._stopping = threading.Event()
        self._thread: threading.Thread | None = None
        self._httpd = _HTTPServer((HOST, port), self)

    @property
    def url(self) -> str:
        """`http://127.0.0.1:<port>`, with the port actually bound."""
        return f"http://{HOST}:{self._httpd.server_address[1]}"

    @property
    def site_urls(self) -> list[str]:
        """The base URL of each person of a many-people server (`<url>/person-001`, ...)."""
        return [f"{self.url}/{p.slug}" for p in self.people]

    def set_now(self, now: datetime) -> None:
        """Move the present of every generated site (the hourly refresh of a test)."""
        stores = [self.store, *self._stores.values()]
        for store in stores:
            if isinstance(store, GeneratedStore):
                store._now = now if now.tzinfo else now.replace(tzinfo=UTC)

    def start(self) -> DemoServer:
        """Serve on a background thread; returns self."""
        self._thread = threading.Thread(
            target=self._httpd.serve_forever,
            args=(_POLL_SECONDS,),
            name="nightscout-demo",
            daemon=True,
        )
        self._thread.start()
        return self

    def serve_forever(self) -> None:
        """Serve on the calling thread until interrupted or stopped."""
        self._httpd.serve_forever(_POLL_SECONDS)

    def stop(self) -> None:
        """Stop serving and release the port (waits for the serving thread)."""
        self._stopping.set()
        if self._thread is not None:
            self._httpd.shutdown()
            self._thread.join()
            self._thread = None
        self._httpd.server_close()

    def __enter__(self) -> DemoServer:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    def inject_faults(
        self, path_substring: str, status: int, times: int, body: str | None = None
    ) -> None:
        """Answer the next `times` requests whose path contains `path_substring` with `status`
        (and `body` as the page, e.g. a proxy's HTML error page) instead of data."""
        with self._lock:
            self._faults.append(_Fault(path_substring, status, times, body))

    def handle(self, path: str, params: Mapping[str, str], headers: Mapping[str, str]) -> Response:
        """The response to one GET request: (status, content type, body)."""
        with self._lock:
            self.request_log.append((path, dict(params)))
        if self.delay_seconds > 0:
            self._stopping.wait(self.delay_seconds)
        fault = self._take_fault(path)
        if fault is not None:
            if fault.body is None:
                return _error(fault.status)
            kind = "text/html" if fault.body.lstrip().startswith("<") else "text/plain"
            return fault.status, f"{kind}; charset=utf-8", fault.body.encode()
        if not self._authorized(params, headers):
            return _error(401)
        store, route = self.store, path
        if self.people:
            slug, _, rest = path.lstrip("/").partition("/")
            if slug not in self._stores:
                return _error(404)
            store, route = self._stores[slug], f"/{rest}"
        response, records = self._route(store, route, params)
        with self._lock:
            self.records_served[path] = self.records_served.get(path, 0) + records
        return response

    def _take_fault(self, path: str) -> _Fault | None:
        with self._lock:
            for fault in self._faults:
                if fault.remaining > 0 and fault.path_substring in path:
                    fault.remaining -= 1
                    return fault
        return None

    def _authorized(self, params: Mapping[str, str], headers: Mapping[str, str]) -> bool:
        if self._secret_sha1 is None and self._token is None:
            return True
        secret = (headers.get("api-secret") or "").strip().lower()
        if self._secret_sha1 and hmac.compare_digest(secret.encode(), self._secret_sha1.encode()):
            return True
        token = params.get("token") or ""
        return bool(self._token) and hmac.compare_digest(token.encode(), self._token.encode())

    def _route(self, store: Store, path: str, params: Mapping[str, str]) -> tuple[Response, int]:
        """The response and how many records it carries."""
        if not path.startswith(API_PREFIX):
            return _error(404), 0
        resource = path[len(API_PREFIX) :].removesuffix("/").removesuffix(".json")
        if resource == "status":
            return _json(200, self._status(store)), 0
        if resource == "profile":
            documents = store.profiles()
            return _json(200, documents), len(documents)
        if resource not in _LISTS:
            return _error(404), 0
        name, entry_type = _LISTS[resource]
        try:
            records = select(store, name, params, entry_type)
        except QueryError as error:
            return _json(400, {"status": 400, "message": str(error)}), 0
        return _json(200, records), len(records)

    def _status(self, store: Store) -> dict:
        now = store.now_ms() if isinstance(store, GeneratedStore) else round(time.time() * 1000)
        return {
            "status": "ok",
            "name": "cascade-demo",
            "version": NIGHTSCOUT_VERSION,
            "serverTime": iso_ms(now),
            "serverTimeEpoch": now,
            "apiEnabled": True,
            "careportalEnabled": False,
            "settings": {"units": "mg/dl"},
        }


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive: a paging client reuses one connection
    server: _HTTPServer

    def do_GET(self) -> None:
        parts = urlsplit(self.path)
        params = dict(parse_qsl(parts.query, keep_blank_values=True))
        self._send(*self.server.demo.handle(parts.path, params, self.headers))

    def do_POST(self) -> None:
        self._send(*_error(405))

    do_PUT = do_DELETE = do_POST

    def _send(self, status: int, content_type: str, body: bytes) -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        # a client that hung up (its timeout, a killed load) has no one to read an answer
        with contextlib.suppress(BrokenPipeError, ConnectionResetError):
            self.wfile.write(body)

    def log_message(self, format: str, *args: Any) -> None:
        """Silent: request lines can carry `?token=`, which must not reach a terminal or log."""


class _HTTPServer(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, address: tuple[str, int], demo: DemoServer) -> None:
        self.demo = demo
        super().__init__(address, _Handler)

    def server_bind(self) -> None:
        # HTTPServer.server_bind resolves the host's FQDN, which can stall without DNS.
        socketserver.TCPServer.server_bind(self)
        self.server_name, self.server_port = self.server_address[:2]


def sites_option(command):
    """The `--sites N` option of `cascade demo-server` (pass its value to `main(sites=...)`)."""
    import click

    return click.option(
        "--sites",
        type=click.IntRange(0, MAX_PEOPLE),
        default=0,
        show_default=True,
        help="Serve N people at /person-001/ ... /person-NNN/ instead of one site at /.",
    )(command)


def main(
    port: int,
    api_secret: str | None,
    file: Path | None,
    uploader: str = "default",
    sites: int = 0,
) -> None:
    """Run the demo server in the foreground until Ctrl-C (the `cascade demo-server` command).

    With `sites` > 0 it serves that many people, one per path, and prints their URLs.
    """
    server = DemoServer(port=port, api_secret=api_secret, file=file, uploader=uploader, sites=sites)
    print(f"Nightscout demo server on {server.url}", flush=True)
    for person, url in zip(server.people, server.site_urls, strict=True):
        print(f"  {url}  ({person.uploader}, {person.zone})", flush=True)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.stop()
