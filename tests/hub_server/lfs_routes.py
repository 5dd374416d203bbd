"""The LFS side of the loopback Hub: which files go through LFS, the batch API, uploads (single and multipart), verify.

The flow the real ``huggingface_hub`` client follows for a large or binary file (with ``HF_HUB_DISABLE_XET=1``):
preupload answers ``"lfs"`` -> ``POST /{repo}.git/info/lfs/objects/batch`` answers an upload action (a signed URL on
this server, no token needed, like a presigned storage URL) and a verify action -> ``PUT`` of the bytes (or of each
part, then a completion ``POST``) -> ``POST .../verify`` -> the commit names the object by sha256 and size
(``lfsFile``).
"""

from __future__ import annotations

import fnmatch
import hashlib
import hmac
import math
from typing import TYPE_CHECKING

from hub_server.store import REPO_TYPES, StoreError

if TYPE_CHECKING:
    from hub_server.handler import HubRequestHandler

MAX_REGULAR_SIZE = 10 * 1024 * 1024  # the Hub stores larger files through LFS
UPLOAD_ROUTE = "lfs-upload"


def upload_mode(path: str, size: int, sample: bytes, gitattributes: str) -> str:
    """``"lfs"`` for a file the Hub keeps in LFS: 10 MiB or more, binary (a NUL byte in its first 512 bytes), or
    matched by a ``filter=lfs`` pattern of the repo's .gitattributes; ``"regular"`` otherwise (and when empty)."""
    if size == 0:
        return "regular"
    if size >= MAX_REGULAR_SIZE or b"\0" in sample:
        return "lfs"
    name = path.rsplit("/", 1)[-1]
    for line in gitattributes.splitlines():
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        pattern, *attributes = line.split()
        if "filter=lfs" in attributes and fnmatch.fnmatchcase(path if "/" in pattern else name, pattern):
            return "lfs"
    return "regular"


def handles(parts: list[str]) -> bool:
    """True for the LFS batch / verify routes of a repo and for the upload URLs this server hands out."""
    return (bool(parts) and parts[0] == UPLOAD_ROUTE) or parts[-4:-1] == ["info", "lfs", "objects"]


def handle(handler: HubRequestHandler, method: str, parts: list[str], query: dict[str, str]) -> None:
    if parts[0] == UPLOAD_ROUTE:
        return _upload(handler, method, parts[1:], query)
    repo_type = "model"
    if parts[0] in ("datasets", "spaces"):
        repo_type, parts = parts[0][:-1], parts[1:]
    if repo_type not in REPO_TYPES or len(parts) != 6 or not parts[1].endswith(".git") or method != "POST":
        raise StoreError(404, f"unknown LFS route {method} {handler.path}")
    repo, _ = handler.writable(repo_type, f"{parts[0]}/{parts[1][: -len('.git')]}")
    if parts[5] == "batch":
        return _batch(handler, repo.url_prefix + repo.repo_id)
    if parts[5] == "verify":
        request = handler.json_body()
        if not handler.hub.store.has_lfs_object(str(request.get("oid")), int(request.get("size", -1))):
            raise StoreError(404, f"LFS object {request.get('oid')} ({request.get('size')} bytes) is not stored")
        return handler.json({"message": "verified"})
    raise StoreError(404, f"unknown LFS route {handler.path}")


def _signature(handler: HubRequestHandler, oid: str, size: int) -> str:
    return hmac.new(handler.hub.upload_secret, f"{oid}:{size}".encode(), hashlib.sha256).hexdigest()


def _batch(handler: HubRequestHandler, repo_path: str) -> None:
    """Answer the client's ``upload`` batch: actions for objects not stored yet, none for those already there."""
    request = handler.json_body()
    if request.get("operation") != "upload":
        raise StoreError(400, f"the loopback Hub only accepts LFS uploads, not {request.get('operation')!r}")
    if "basic" not in (request.get("transfers") or ["basic"]):
        raise StoreError(400, f"no common LFS transfer adapter in {request.get('transfers')}")
    store, chunk_size = handler.hub.store, handler.hub.multipart_chunk_size
    answers = []
    for announced in request.get("objects", []):
        oid, size = str(announced.get("oid")), int(announced.get("size", -1))
        store.lfs_path(oid)  # refuses an oid that is not a sha256
        answer: dict = {"oid": oid, "size": size, "authenticated": True}
        if size < 0:
            answer["error"] = {"code": 422, "message": f"invalid size {size}"}
        elif not store.has_lfs_object(oid, size):
            query = f"size={size}&sig={_signature(handler, oid, size)}"
            upload: dict = {"href": f"{handler.endpoint}/{UPLOAD_ROUTE}/{oid}?{query}"}
            if chunk_size and size > chunk_size:
                parts = math.ceil(size / chunk_size)
                upload["header"] = {"chunk_size": str(chunk_size)} | {
                    str(n): f"{handler.endpoint}/{UPLOAD_ROUTE}/{oid}/part/{n}?{query}" for n in range(1, parts + 1)
                }
            verify = {"href": f"{handler.endpoint}/{repo_path}.git/info/lfs/objects/verify"}
            answer["actions"] = {"upload": upload, "verify": verify}
        answers.append(answer)
    handler.json({"transfer": "basic", "objects": answers, "hash_algo": "sha256"}, 200,
                 {"Content-Type": "application/vnd.git-lfs+json"})  # fmt: skip


def _upload(handler: HubRequestHandler, method: str, parts: list[str], query: dict[str, str]) -> None:
    """``PUT /lfs-upload/{oid}`` (the whole object), ``PUT /lfs-upload/{oid}/part/{n}`` (one part, answered with an
    ETag) and ``POST /lfs-upload/{oid}`` (completion: the parts, in order, become the object)."""
    oid, size = parts[0] if parts else "", int(query.get("size", -1))
    if not hmac.compare_digest(query.get("sig", ""), _signature(handler, oid, size)):
        raise StoreError(403, "invalid or missing signature on the LFS upload URL")
    hub = handler.hub
    if method == "PUT" and len(parts) == 1:
        hub.store.put_lfs_object(oid, size, handler.read_body())
        return handler.send(200, b"", "text/plain")
    if method == "PUT" and len(parts) == 3 and parts[1] == "part":
        body = handler.read_body()
        with hub.lock:
            hub.pending_parts.setdefault(oid, {})[int(parts[2])] = body
        return handler.send(200, b"", "text/plain", {"ETag": f'"{hashlib.md5(body).hexdigest()}"'})
    if method == "POST" and len(parts) == 1:
        completion = handler.json_body()
        with hub.lock:
            received = hub.pending_parts.pop(oid, {})
        listed = completion.get("parts", [])
        if [p.get("partNumber") for p in listed] != sorted(received) or any(
            p.get("etag", "").strip('"') != hashlib.md5(received[p["partNumber"]]).hexdigest() for p in listed
        ):
            raise StoreError(400, f"LFS object {oid}: the completion does not list the parts that were uploaded")
        hub.store.put_lfs_object(oid, size, b"".join(received[n] for n in sorted(received)))
        return handler.json({"message": "completed"})
    raise StoreError(404, f"unknown LFS upload route {method} {handler.path}")
