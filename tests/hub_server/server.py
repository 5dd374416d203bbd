"""A loopback Hugging Face Hub: the HTTP endpoints the ``huggingface_hub`` client uses, served on 127.0.0.1.

It lets the real client (``HfApi``, ``hf_hub_download``, ``from_pretrained``, ``ModelCard.load``) create repos, commit,
branch and download without the internet, for tests and for offline demos::

    python -m umedpt_hf.hub.loopback_server --root ./loopback-hub --port 8765
    HF_ENDPOINT=http://127.0.0.1:8765 HF_TOKEN=anything umedpt push outputs/final me/umedpt-mini

or in Python::

    with LoopbackHub() as hub:            # a temporary folder, a free port
        os.environ.update(hub.client_env())  # before huggingface_hub is imported

Files are always "regular" uploads (base64 inside the commit), so there is no LFS/Xet storage to emulate.
"""

from __future__ import annotations

import argparse
import base64
import json
import logging
import re
import shutil
import sys
import tempfile
import threading
import time
import traceback
from datetime import datetime, timezone
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, unquote, urlsplit

import yaml

from umedpt_hf.hub.loopback_store import REPO_TYPES, Commit, LoopbackStore, Repo, StoreError, git_tree_id

logger = logging.getLogger(__name__)

_FRONT_MATTER = re.compile(r"^(\s*---[\r\n]+)([\S\s]*?)([\r\n]+---(\r\n|\n|$))")


def _iso(timestamp: int) -> str:
    return datetime.fromtimestamp(timestamp, tz=timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.000Z")


def _card_data(text: str) -> dict | None:
    """The YAML front matter of a README, or None when there is none; raises yaml.YAMLError when it is invalid."""
    match = _FRONT_MATTER.search(text)
    if match is None:
        return None
    data = yaml.safe_load(match.group(2))
    if data is not None and not isinstance(data, dict):
        raise yaml.YAMLError("the metadata block must be a mapping")
    return data or {}


class _HubRequestHandler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: _HubHTTPServer

    # -- plumbing ------------------------------------------------------------------------------------------------
    def log_message(self, format: str, *args: Any) -> None:
        logger.debug("loopback hub: " + format, *args)

    def do_GET(self) -> None:
        self._dispatch("GET")

    def do_HEAD(self) -> None:
        self._dispatch("HEAD")

    def do_POST(self) -> None:
        self._dispatch("POST")

    def do_DELETE(self) -> None:
        self._dispatch("DELETE")

    def _dispatch(self, method: str) -> None:
        self._body_cache: bytes | None = None
        try:
            url = urlsplit(self.path)
            parts = [unquote(part) for part in url.path.split("/")[1:]]
            query = {key: values[-1] for key, values in parse_qs(url.query).items()}
            if parts and parts[0] == "api":
                self._api(method, parts[1:], query)
            else:
                self._resolve(method, parts)
        except StoreError as error:
            self._read_body()  # keep the connection usable
            self._error(error.status, error.message, error.error_code)
        except Exception as error:  # a bug in the server must still answer, not hang the client
            logger.error("loopback hub: %s %s failed\n%s", method, self.path, traceback.format_exc())
            self._error(500, f"loopback hub internal error: {error}")

    def _read_body(self) -> bytes:
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

    def _json_body(self) -> Any:
        body = self._read_body()
        try:
            return json.loads(body or b"{}")
        except json.JSONDecodeError as error:
            raise StoreError(400, f"invalid JSON body: {error}") from error

    def _send(self, status: int, body: bytes, content_type: str, headers: dict[str, str] | None = None) -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        for key, value in (headers or {}).items():
            self.send_header(key, value)
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    def _json(self, data: Any, status: int = 200, headers: dict[str, str] | None = None) -> None:
        self._send(status, json.dumps(data).encode(), "application/json; charset=utf-8", headers)

    def _error(self, status: int, message: str, error_code: str | None = None) -> None:
        headers = {"X-Error-Message": message}
        if error_code:
            headers["X-Error-Code"] = error_code
        self._json({"error": message}, status, headers)

    @property
    def _endpoint(self) -> str:
        return f"http://{self.headers.get('Host') or self.server.hub.host_port}"

    # -- auth ----------------------------------------------------------------------------------------------------
    def _user(self, required: bool) -> str | None:
        header = self.headers.get("Authorization", "")
        token = header[7:].strip() if header.lower().startswith("bearer ") else ""
        if token:
            if self.server.hub.token is not None and token != self.server.hub.token:
                raise StoreError(401, "Invalid credentials in Authorization header")
            return self.server.hub.user
        if required:
            raise StoreError(401, "Invalid credentials in Authorization header")
        return None

    def _readable(self, repo_type: str, repo_id: str) -> Repo:
        repo = self.server.hub.store.get(repo_type, repo_id)
        if repo.private and self._user(required=False) is None:
            raise StoreError(401, "Repository not found", "RepoNotFound")
        return repo

    def _writable(self, repo_type: str, repo_id: str) -> tuple[Repo, str]:
        user = self._user(required=True)
        return self.server.hub.store.get(repo_type, repo_id), user  # type: ignore[return-value]

    # -- /api/... ------------------------------------------------------------------------------------------------
    def _api(self, method: str, parts: list[str], query: dict[str, str]) -> None:
        store = self.server.hub.store
        if parts == ["whoami-v2"] and method == "GET":
            user = self._user(required=True)
            access = {"displayName": "loopback", "role": "write"}
            return self._json(
                {
                    "type": "user",
                    "id": user,
                    "name": user,
                    "fullname": user,
                    "orgs": [],
                    "auth": {"type": "access_token", "accessToken": access},
                }
            )
        if parts == ["repos", "create"] and method == "POST":
            return self._create_repo()
        if parts == ["repos", "delete"] and method == "DELETE":
            user = self._user(required=True)
            payload = self._json_body()
            store.delete_repo(
                payload.get("type") or "model", f"{payload.get('organization') or user}/{payload['name']}"
            )
            return self._json({})
        if parts == ["validate-yaml"] and method == "POST":
            return self._validate_yaml()
        if len(parts) < 3 or parts[0].rstrip("s") not in REPO_TYPES:
            raise StoreError(404, f"unknown API route /api/{'/'.join(parts)}")
        repo_type, repo_id, rest = parts[0][:-1], f"{parts[1]}/{parts[2]}", parts[3:]
        action = rest[0] if rest else ""
        if method == "GET" and (not rest or action == "revision"):
            repo = self._readable(repo_type, repo_id)
            return self._json(self._repo_info(repo, repo.resolve(rest[1] if rest else "main")))
        if method == "GET" and action == "tree":
            repo = self._readable(repo_type, repo_id)
            return self._json(self._tree(repo.resolve(rest[1]), "/".join(rest[2:]), query))
        if method == "GET" and action == "refs":
            return self._json(self._refs(self._readable(repo_type, repo_id), bool(query.get("include_prs"))))
        if method == "GET" and action == "commits":
            repo = self._readable(repo_type, repo_id)
            return self._json([self._commit_entry(commit) for commit in store.history(repo, rest[1])])
        if method == "POST" and action == "preupload":
            repo, _ = self._writable(repo_type, repo_id)
            return self._json(self._preupload(repo, rest[1]))
        if method == "POST" and action == "commit":
            return self._commit(repo_type, repo_id, rest[1], query)
        if method == "POST" and action == "branch":
            repo, _ = self._writable(repo_type, repo_id)
            store.create_branch(repo, "/".join(rest[1:]), self._json_body().get("startingPoint"))
            return self._json({})
        raise StoreError(404, f"unknown API route {method} /api/{'/'.join(parts)}")

    def _create_repo(self) -> None:
        user = self._user(required=True)
        payload = self._json_body()
        repo_type = payload.get("type") or "model"
        repo_id = f"{payload.get('organization') or user}/{payload['name']}"
        private = payload.get("visibility") == "private" or bool(payload.get("private"))
        prefix = "" if repo_type == "model" else f"{repo_type}s/"
        url = f"{self._endpoint}/{prefix}{repo_id}"
        try:
            self.server.hub.store.create_repo(
                repo_type, repo_id, private=private, sdk=payload.get("sdk"), author=user or "loopback"
            )
        except StoreError as error:
            if error.status != 409:
                raise
            # the Hub answers a conflict with the existing repo's url (create_repo(exist_ok=True) reads it)
            return self._json({"error": error.message, "url": url}, 409, {"X-Error-Message": error.message})
        self._json({"url": url, "name": repo_id, "id": repo_id})

    def _validate_yaml(self) -> None:
        payload = self._json_body()
        try:
            data = _card_data(payload.get("content", ""))
        except yaml.YAMLError as error:
            return self._json({"errors": [{"message": f"Invalid YAML metadata: {error}"}]}, 400)
        warnings = [] if data else [{"message": "empty or missing yaml metadata in repo card"}]
        return self._json({"errors": [], "warnings": warnings})

    def _repo_info(self, repo: Repo, commit: Commit) -> dict:
        store = self.server.hub.store
        card: dict = {}
        if "README.md" in commit.files:
            try:
                card = _card_data(store.blob_path(commit.files["README.md"]).read_text(errors="replace")) or {}
            except yaml.YAMLError:
                card = {}
        info = {
            "_id": commit.oid[:24],
            "id": repo.repo_id,
            "author": repo.repo_id.split("/")[0],
            "sha": commit.oid,
            "private": repo.private,
            "gated": False,
            "disabled": False,
            "downloads": 0,
            "likes": 0,
            "createdAt": _iso(repo.created),
            "lastModified": _iso(commit.timestamp),
            "tags": list(card.get("tags") or []),
            "cardData": card or None,
            "siblings": [
                {"rfilename": path, "size": store.blob_size(oid), "blobId": oid} for path, oid in commit.files.items()
            ],
        }
        if repo.repo_type == "model":
            info.update(
                modelId=repo.repo_id, library_name=card.get("library_name"), pipeline_tag=card.get("pipeline_tag")
            )
            if "model-index" in card:
                info["model-index"] = card["model-index"]
        if repo.repo_type == "space":
            info["sdk"] = card.get("sdk") or repo.sdk
        return info

    def _tree(self, commit: Commit, folder: str, query: dict[str, str]) -> list[dict]:
        store = self.server.hub.store
        recursive = query.get("recursive", "").lower() in ("1", "true")
        prefix = folder.strip("/") + "/" if folder.strip("/") else ""
        below = {path[len(prefix) :]: oid for path, oid in commit.files.items() if path.startswith(prefix)}
        if prefix and not below:
            raise StoreError(404, f"{folder} does not exist on this revision", "EntryNotFound")
        entries: dict[str, dict] = {}
        for rel, oid in below.items():
            segments = rel.split("/")
            depth = len(segments) if recursive else 1
            for level in range(1, min(depth, len(segments) - 1) + 1):  # folders on the way
                sub = "/".join(segments[:level])
                if sub not in entries:
                    sub_files = {p[len(sub) + 1 :]: o for p, o in below.items() if p.startswith(sub + "/")}
                    entries[sub] = {"type": "directory", "oid": git_tree_id(sub_files), "size": 0, "path": prefix + sub}
            if recursive or len(segments) == 1:
                entries[rel] = {"type": "file", "oid": oid, "size": store.blob_size(oid), "path": prefix + rel}
        return [entries[key] for key in sorted(entries)]

    def _refs(self, repo: Repo, include_prs: bool) -> dict:
        def ref(name: str, full: str) -> dict:
            return {"name": name, "ref": full, "targetCommit": repo.refs[name]}

        refs = {
            "branches": [ref(name, f"refs/heads/{name}") for name in repo.refs if not name.startswith("refs/")],
            "converts": [],
            "tags": [],
        }
        if include_prs:
            refs["pullRequests"] = [ref(name, name) for name in repo.refs if name.startswith("refs/pr/")]
        return refs

    @staticmethod
    def _commit_entry(commit: Commit) -> dict:
        return {
            "id": commit.oid,
            "authors": [{"user": commit.author}],
            "date": _iso(commit.timestamp),
            "title": commit.title,
            "message": commit.message,
        }

    def _preupload(self, repo: Repo, revision: str) -> dict:
        head = repo.resolve(revision)
        files = self._json_body().get("files", [])
        return {
            "commitOid": head.oid,
            "files": [
                {"path": f["path"], "uploadMode": "regular", "shouldIgnore": False, "oid": head.files.get(f["path"])}
                for f in files
            ],
        }

    def _commit(self, repo_type: str, repo_id: str, revision: str, query: dict[str, str]) -> None:
        repo, user = self._writable(repo_type, repo_id)
        header: dict = {}
        additions: dict[str, bytes] = {}
        deletions: list[str] = []
        for line in self._read_body().splitlines():
            if not line.strip():
                continue
            item = json.loads(line)
            key, value = item.get("key"), item.get("value", {})
            if key == "header":
                header = value
            elif key == "file":
                content = value.get("content", "")
                if value.get("encoding", "base64") == "base64":
                    additions[value["path"]] = base64.b64decode(content)
                else:
                    additions[value["path"]] = content.encode()
            elif key in ("deletedFile", "deletedFolder"):
                deletions.append(value["path"] + ("/" if key == "deletedFolder" else ""))
            elif key == "lfsFile":
                raise StoreError(400, "the loopback Hub stores every file as a regular upload; LFS is not supported")
            else:
                raise StoreError(400, f"unknown commit operation {key!r}")
        if not header.get("summary"):
            raise StoreError(400, "the commit needs a header with a summary")
        create_pr = query.get("create_pr") in ("1", "true")
        commit, pr_number = self.server.hub.store.commit(
            repo,
            revision,
            additions=additions,
            deletions=deletions,
            title=header["summary"],
            description=header.get("description", ""),
            author=user,
            parent_commit=header.get("parentCommit"),
            create_pr=create_pr,
        )
        base = f"{self._endpoint}/{repo.url_prefix}{repo.repo_id}"
        self._json(
            {
                "success": True,
                "commitOid": commit.oid,
                "commitUrl": f"{base}/commit/{commit.oid}",
                "pullRequestUrl": f"{base}/discussions/{pr_number}" if pr_number else None,
                "hookOutput": "",
            }
        )

    # -- /{repo}/resolve/{rev}/{path} ----------------------------------------------------------------------------
    def _resolve(self, method: str, parts: list[str]) -> None:
        if method not in ("GET", "HEAD"):
            raise StoreError(405, f"{method} is not allowed on {self.path}")
        repo_type = "model"
        if parts and parts[0] in ("datasets", "spaces"):
            repo_type, parts = parts[0][:-1], parts[1:]
        if len(parts) < 5 or parts[2] != "resolve":
            raise StoreError(404, f"no such page: {self.path}")
        repo = self._readable(repo_type, f"{parts[0]}/{parts[1]}")
        commit = repo.resolve(parts[3])
        path = "/".join(parts[4:])
        oid = commit.files.get(path)
        headers = {"X-Repo-Commit": commit.oid}
        if oid is None:
            self._read_body()
            return self._send(
                404,
                b"Entry not found",
                "text/plain; charset=utf-8",
                {**headers, "X-Error-Code": "EntryNotFound", "X-Error-Message": "Entry not found"},
            )
        content = self.server.hub.store.blob_path(oid).read_bytes()
        headers.update({"ETag": f'"{oid}"', "Accept-Ranges": "bytes"})
        status, ranged = self._byte_range(content)
        if status == 206:
            headers["Content-Range"] = f"bytes {ranged[0]}-{ranged[1] - 1}/{len(content)}"
        self._send(status, content[ranged[0] : ranged[1]], "application/octet-stream", headers)

    def _byte_range(self, content: bytes) -> tuple[int, tuple[int, int]]:
        match = re.fullmatch(r"bytes=(\d+)-(\d*)", self.headers.get("Range", "").strip())
        if not match:
            return 200, (0, len(content))
        start = int(match.group(1))
        end = int(match.group(2)) + 1 if match.group(2) else len(content)
        if start >= len(content):
            raise StoreError(416, "Requested range not satisfiable")
        return 206, (start, min(end, len(content)))


class _HubHTTPServer(ThreadingHTTPServer):
    daemon_threads = True
    hub: LoopbackHub


class LoopbackHub:
    """A Hub on 127.0.0.1 that the real huggingface_hub client can push to and download from.

    Args:
        root: folder holding the repos (kept between runs); a temporary folder, removed on ``stop()``, when None.
        host: interface to bind; keep the default loopback address.
        port: 0 picks a free port.
        token: the only token accepted; None accepts any token (every request with a token is ``user``).
        user: the account the token belongs to (the namespace of repos created without an organisation).
    """

    def __init__(
        self,
        root: str | Path | None = None,
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        token: str | None = None,
        user: str = "loopback-user",
    ) -> None:
        self._temporary = root is None
        self.root = Path(tempfile.mkdtemp(prefix="umedpt-loopback-hub-")) if root is None else Path(root)
        self.store = LoopbackStore(self.root)
        self.token = token
        self.user = user
        self._server = _HubHTTPServer((host, port), _HubRequestHandler)
        self._server.hub = self
        self._thread: threading.Thread | None = None

    @property
    def host_port(self) -> str:
        host, port = self._server.server_address[:2]
        return f"{host}:{port}"

    @property
    def endpoint(self) -> str:
        """The value for ``HF_ENDPOINT``."""
        return f"http://{self.host_port}"

    def client_env(self) -> dict[str, str]:
        """Environment variables that point a huggingface_hub client (started after they are set) at this Hub."""
        return {
            "HF_ENDPOINT": self.endpoint,
            "HF_TOKEN": self.token or "hf_loopback_token",
            "HF_HUB_DISABLE_TELEMETRY": "1",
        }

    def start(self) -> LoopbackHub:
        """Serve in a background thread."""
        self._thread = threading.Thread(target=self._server.serve_forever, name="loopback-hub", daemon=True)
        self._thread.start()
        return self

    def serve_forever(self) -> None:
        """Serve in this thread until interrupted."""
        self._server.serve_forever()

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()
        if self._thread is not None:
            self._thread.join(timeout=5)
        if self._temporary:
            shutil.rmtree(self.root, ignore_errors=True)

    def __enter__(self) -> LoopbackHub:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description="Serve a loopback Hugging Face Hub on 127.0.0.1 (offline demos, tests)"
    )
    parser.add_argument("--root", default="loopback-hub", help="folder that keeps the repos (default: ./loopback-hub)")
    parser.add_argument("--port", type=int, default=0, help="port to listen on (default: a free one)")
    parser.add_argument("--token", default=None, help="the only token accepted (default: any)")
    parser.add_argument("--user", default="loopback-user", help="account name the token belongs to")
    args = parser.parse_args(argv)
    hub = LoopbackHub(args.root, port=args.port, token=args.token, user=args.user)
    print(f"Loopback Hub serving {Path(args.root).resolve()} at {hub.endpoint}", flush=True)
    print(f"  export HF_ENDPOINT={hub.endpoint} HF_TOKEN={args.token or 'anything'}", flush=True)
    try:
        hub.serve_forever()
    except KeyboardInterrupt:
        time.sleep(0)
    finally:
        hub._server.server_close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
