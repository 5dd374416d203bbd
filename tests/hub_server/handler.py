"""The HTTP side of the loopback Hub: request plumbing, tokens, routing, and file downloads (``/resolve``)."""

from __future__ import annotations

import json
import logging
import re
import traceback
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qs, unquote, urlsplit

from hub_server import api_routes, lfs_routes
from hub_server.store import Repo, StoreError

if TYPE_CHECKING:
    from hub_server.server import LoopbackHub

logger = logging.getLogger("hub_server")


class HubHTTPServer(ThreadingHTTPServer):
    daemon_threads = True
    hub: LoopbackHub


class HubRequestHandler(BaseHTTPRequestHandler):
    """Routes ``/api/...`` to api_routes, LFS transfers to lfs_routes, ``/{repo}/resolve/...`` to :meth:`resolve`."""

    protocol_version = "HTTP/1.1"
    server: HubHTTPServer

    # -- plumbing ------------------------------------------------------------------------------------------------
    def log_message(self, format: str, *args: Any) -> None:
        logger.debug("loopback hub: " + format, *args)

    def do_GET(self) -> None:
        self._dispatch("GET")

    def do_HEAD(self) -> None:
        self._dispatch("HEAD")

    def do_POST(self) -> None:
        self._dispatch("POST")

    def do_PUT(self) -> None:
        self._dispatch("PUT")

    def do_DELETE(self) -> None:
        self._dispatch("DELETE")

    @property
    def hub(self) -> LoopbackHub:
        return self.server.hub

    def _dispatch(self, method: str) -> None:
        self._body_cache: bytes | None = None
        with self.hub.lock:
            self.hub.requests.append((method, urlsplit(self.path).path))
        try:
            url = urlsplit(self.path)
            parts = [unquote(part) for part in url.path.split("/")[1:]]
            query = {key: values[-1] for key, values in parse_qs(url.query).items()}
            if parts and parts[0] == "api":
                api_routes.handle(self, method, parts[1:], query)
            elif lfs_routes.handles(parts):
                lfs_routes.handle(self, method, parts, query)
            else:
                self.resolve(method, parts)
        except StoreError as error:
            self.read_body()  # keep the connection usable
            self.error(error.status, error.message, error.error_code)
        except Exception as error:  # a bug in the server must still answer, not hang the client
            logger.error("loopback hub: %s %s failed\n%s", method, self.path, traceback.format_exc())
            self.error(500, f"loopback hub internal error: {error}")

    def read_body(self) -> bytes:
        if self._body_cache is not None:
            return self._body_cache
        if self.headers.get("Transfer-Encoding", "").lower() == "chunked":
            chunks = []
            while True:
                size = int(self.rfile.readline().split(b";")[0].strip(), 16)
                if size == 0:
                    self.rfile.readline()
                    break
                chunks.append(self.rfile.read(size))
                self.rfile.readline()
            body = b"".join(chunks)
        else:
            body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        self._body_cache = body
        return body

    def json_body(self) -> Any:
        body = self.read_body()
        try:
            return json.loads(body or b"{}")
        except json.JSONDecodeError as error:
            raise StoreError(400, f"invalid JSON body: {error}") from error

    def send(self, status: int, body: bytes, content_type: str, headers: dict[str, str] | None = None) -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        for key, value in (headers or {}).items():
            self.send_header(key, value)
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    def json(self, data: Any, status: int = 200, headers: dict[str, str] | None = None) -> None:
        self.send(status, json.dumps(data).encode(), "application/json; charset=utf-8", headers)

    def error(self, status: int, message: str, error_code: str | None = None) -> None:
        headers = {"X-Error-Message": message}
        if error_code:
            headers["X-Error-Code"] = error_code
        self.json({"error": message}, status, headers)

    @property
    def endpoint(self) -> str:
        """The base URL the client used (so that URLs handed back reach this server)."""
        return f"http://{self.headers.get('Host') or self.hub.host_port}"

    # -- tokens --------------------------------------------------------------------------------------------------
    def user(self, required: bool) -> str | None:
        header = self.headers.get("Authorization", "")
        token = header[7:].strip() if header.lower().startswith("bearer ") else ""
        if token:
            if self.hub.token is not None and token != self.hub.token:
                raise StoreError(401, "Invalid credentials in Authorization header")
            return self.hub.user
        if required:
            raise StoreError(401, "Invalid credentials in Authorization header")
        return None

    def readable(self, repo_type: str, repo_id: str) -> Repo:
        repo = self.hub.store.get(repo_type, repo_id)
        if repo.private and self.user(required=False) is None:
            raise StoreError(401, "Repository not found", "RepoNotFound")
        return repo

    def writable(self, repo_type: str, repo_id: str) -> tuple[Repo, str]:
        user = self.user(required=True)
        return self.hub.store.get(repo_type, repo_id), user  # type: ignore[return-value]

    # -- /{repo}/resolve/{rev}/{path} ----------------------------------------------------------------------------
    def resolve(self, method: str, parts: list[str]) -> None:
        """Serve a file; an LFS file is served with ``X-Linked-Etag`` (its sha256) and ``X-Linked-Size``, as the Hub
        does, so that the client caches it under its sha256."""
        if method not in ("GET", "HEAD"):
            raise StoreError(405, f"{method} is not allowed on {self.path}")
        repo_type = "model"
        if parts and parts[0] in ("datasets", "spaces"):
            repo_type, parts = parts[0][:-1], parts[1:]
        if len(parts) < 5 or parts[2] != "resolve":
            raise StoreError(404, f"no such page: {self.path}")
        store = self.hub.store
        repo = self.readable(repo_type, f"{parts[0]}/{parts[1]}")
        commit = repo.resolve(parts[3])
        oid = commit.files.get("/".join(parts[4:]))
        headers = {"X-Repo-Commit": commit.oid}
        if oid is None:
            self.read_body()
            headers.update({"X-Error-Code": "EntryNotFound", "X-Error-Message": "Entry not found"})
            return self.send(404, b"Entry not found", "text/plain; charset=utf-8", headers)
        headers.update({"ETag": f'"{oid}"', "Accept-Ranges": "bytes"})
        lfs = store.lfs_info(oid)
        if lfs is not None:
            headers.update({"X-Linked-Etag": f'"{lfs[0]}"', "X-Linked-Size": str(lfs[1])})
        content = store.file_path(oid).read_bytes()
        status, ranged = self._byte_range(content)
        if status == 206:
            headers["Content-Range"] = f"bytes {ranged[0]}-{ranged[1] - 1}/{len(content)}"
        self.send(status, content[ranged[0] : ranged[1]], "application/octet-stream", headers)

    def _byte_range(self, content: bytes) -> tuple[int, tuple[int, int]]:
        match = re.fullmatch(r"bytes=(\d+)-(\d*)", self.headers.get("Range", "").strip())
        if not match:
            return 200, (0, len(content))
        start = int(match.group(1))
        end = int(match.group(2)) + 1 if match.group(2) else len(content)
        if start >= len(content):
            raise StoreError(416, "Requested range not satisfiable")
        return 206, (start, min(end, len(content)))
