"""The ``/api/...`` routes of the loopback Hub: accounts, repos, refs, trees, preupload and commits."""

from __future__ import annotations

import base64
import json
import re
from datetime import datetime, timezone
from typing import TYPE_CHECKING

import yaml

from hub_server.lfs_routes import MAX_REGULAR_SIZE, upload_mode
from hub_server.store import REPO_TYPES, Commit, Repo, StoreError, git_tree_id

if TYPE_CHECKING:
    from hub_server.handler import HubRequestHandler

_FRONT_MATTER = re.compile(r"^(\s*---[\r\n]+)([\S\s]*?)([\r\n]+---(\r\n|\n|$))")
NO_XET = (
    "this loopback Hub has no Xet storage: set HF_HUB_DISABLE_XET=1 so that the client uploads large files through LFS"
)


def _iso(timestamp: int) -> str:
    return datetime.fromtimestamp(timestamp, tz=timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.000Z")


def card_data(text: str) -> dict | None:
    """The YAML front matter of a README, or None when there is none; raises yaml.YAMLError when it is invalid."""
    match = _FRONT_MATTER.search(text)
    if match is None:
        return None
    data = yaml.safe_load(match.group(2))
    if data is not None and not isinstance(data, dict):
        raise yaml.YAMLError("the metadata block must be a mapping")
    return data or {}


def handle(handler: HubRequestHandler, method: str, parts: list[str], query: dict[str, str]) -> None:
    store = handler.hub.store
    if parts == ["whoami-v2"] and method == "GET":
        user = handler.user(required=True)
        access = {"displayName": "loopback", "role": "write"}
        auth = {"type": "access_token", "accessToken": access}
        return handler.json({"type": "user", "id": user, "name": user, "fullname": user, "orgs": [], "auth": auth})
    if parts == ["repos", "create"] and method == "POST":
        return _create_repo(handler)
    if parts == ["repos", "delete"] and method == "DELETE":
        user = handler.user(required=True)
        payload = handler.json_body()
        store.delete_repo(payload.get("type") or "model", f"{payload.get('organization') or user}/{payload['name']}")
        return handler.json({})
    if parts == ["validate-yaml"] and method == "POST":
        return _validate_yaml(handler)
    if len(parts) < 3 or parts[0].rstrip("s") not in REPO_TYPES:
        raise StoreError(404, f"unknown API route /api/{'/'.join(parts)}")
    repo_type, repo_id, rest = parts[0][:-1], f"{parts[1]}/{parts[2]}", parts[3:]
    action = rest[0] if rest else ""
    if method == "GET" and (not rest or action == "revision"):
        repo = handler.readable(repo_type, repo_id)
        return handler.json(_repo_info(handler, repo, repo.resolve(rest[1] if rest else "main")))
    if method == "GET" and action == "tree":
        repo = handler.readable(repo_type, repo_id)
        return handler.json(_tree(handler, repo.resolve(rest[1]), "/".join(rest[2:]), query))
    if method == "GET" and action == "refs":
        return handler.json(_refs(handler.readable(repo_type, repo_id), bool(query.get("include_prs"))))
    if method == "GET" and action == "commits":
        repo = handler.readable(repo_type, repo_id)
        return handler.json([_commit_entry(commit) for commit in store.history(repo, rest[1])])
    if method == "GET" and action in ("xet-write-token", "xet-read-token"):
        raise StoreError(501, NO_XET)
    if method == "POST" and action == "preupload":
        repo, _ = handler.writable(repo_type, repo_id)
        return handler.json(_preupload(handler, repo, rest[1]))
    if method == "POST" and action == "commit":
        return _commit(handler, repo_type, repo_id, rest[1], query)
    if method == "POST" and action == "branch":
        repo, _ = handler.writable(repo_type, repo_id)
        store.create_branch(repo, "/".join(rest[1:]), handler.json_body().get("startingPoint"))
        return handler.json({})
    raise StoreError(404, f"unknown API route {method} /api/{'/'.join(parts)}")


def _create_repo(handler: HubRequestHandler) -> None:
    user = handler.user(required=True)
    payload = handler.json_body()
    repo_type = payload.get("type") or "model"
    repo_id = f"{payload.get('organization') or user}/{payload['name']}"
    private = payload.get("visibility") == "private" or bool(payload.get("private"))
    prefix = "" if repo_type == "model" else f"{repo_type}s/"
    url = f"{handler.endpoint}/{prefix}{repo_id}"
    try:
        handler.hub.store.create_repo(repo_type, repo_id, private=private, sdk=payload.get("sdk"), author=user)
    except StoreError as error:
        if error.status != 409:
            raise
        # the Hub answers a conflict with the existing repo's url (create_repo(exist_ok=True) reads it)
        return handler.json({"error": error.message, "url": url}, 409, {"X-Error-Message": error.message})
    handler.json({"url": url, "name": repo_id, "id": repo_id})


def _validate_yaml(handler: HubRequestHandler) -> None:
    try:
        data = card_data(handler.json_body().get("content", ""))
    except yaml.YAMLError as error:
        return handler.json({"errors": [{"message": f"Invalid YAML metadata: {error}"}]}, 400)
    warnings = [] if data else [{"message": "empty or missing yaml metadata in repo card"}]
    return handler.json({"errors": [], "warnings": warnings})


def _repo_info(handler: HubRequestHandler, repo: Repo, commit: Commit) -> dict:
    store = handler.hub.store
    card: dict = {}
    if "README.md" in commit.files:
        try:
            card = card_data(store.file_path(commit.files["README.md"]).read_text(errors="replace")) or {}
        except yaml.YAMLError:
            card = {}
    siblings = []
    for path, oid in commit.files.items():
        sibling = {"rfilename": path, "size": store.file_size(oid), "blobId": oid}
        lfs = store.lfs_info(oid)
        if lfs is not None:
            sibling["lfs"] = {"sha256": lfs[0], "size": lfs[1], "pointerSize": store.blob_size(oid)}
        siblings.append(sibling)
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
        "siblings": siblings,
    }
    if repo.repo_type == "model":
        info.update(modelId=repo.repo_id, library_name=card.get("library_name"), pipeline_tag=card.get("pipeline_tag"))
        if "model-index" in card:
            info["model-index"] = card["model-index"]
    if repo.repo_type == "space":
        info["sdk"] = card.get("sdk") or repo.sdk
    return info


def _tree(handler: HubRequestHandler, commit: Commit, folder: str, query: dict[str, str]) -> list[dict]:
    store = handler.hub.store
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
            entry = {"type": "file", "oid": oid, "size": store.file_size(oid), "path": prefix + rel}
            lfs = store.lfs_info(oid)
            if lfs is not None:
                entry["lfs"] = {"oid": lfs[0], "size": lfs[1], "pointerSize": store.blob_size(oid)}
            entries[rel] = entry
    return [entries[key] for key in sorted(entries)]


def _refs(repo: Repo, include_prs: bool) -> dict:
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


def _commit_entry(commit: Commit) -> dict:
    authors = [{"user": commit.author}]
    return {"id": commit.oid, "authors": authors, "date": _iso(commit.timestamp), "title": commit.title,
            "message": commit.message}  # fmt: skip


def _preupload(handler: HubRequestHandler, repo: Repo, revision: str) -> dict:
    """For each announced file: "lfs" (binary, large, or named in .gitattributes) or "regular", and its current oid."""
    head = repo.resolve(revision)
    store = handler.hub.store
    gitattributes = store.file_path(head.files[".gitattributes"]).read_text() if ".gitattributes" in head.files else ""
    answers = []
    for announced in handler.json_body().get("files", []):
        sample = base64.b64decode(announced.get("sample", ""))
        mode = upload_mode(announced["path"], int(announced.get("size", 0)), sample, gitattributes)
        answers.append({"path": announced["path"], "uploadMode": mode, "shouldIgnore": False,
                        "oid": head.files.get(announced["path"])})  # fmt: skip
    return {"commitOid": head.oid, "files": answers}


def _commit(handler: HubRequestHandler, repo_type: str, repo_id: str, revision: str, query: dict[str, str]) -> None:
    repo, user = handler.writable(repo_type, repo_id)
    header: dict = {}
    additions: dict[str, bytes] = {}
    lfs_additions: dict[str, tuple[str, int]] = {}
    deletions: list[str] = []
    for line in handler.read_body().splitlines():
        if not line.strip():
            continue
        item = json.loads(line)
        key, value = item.get("key"), item.get("value", {})
        if key == "header":
            header = value
        elif key == "file":
            content = value.get("content", "")
            data = base64.b64decode(content) if value.get("encoding", "base64") == "base64" else content.encode()
            if len(data) > MAX_REGULAR_SIZE or b"\0" in data[:512]:
                raise StoreError(400, f"Your push was rejected because {value['path']} is binary or larger than "
                                      "10 MiB: upload it with LFS (preupload said so)")  # fmt: skip
            additions[value["path"]] = data
        elif key == "lfsFile":
            if value.get("algo", "sha256") != "sha256":
                raise StoreError(400, f"unsupported LFS hash algorithm {value.get('algo')!r}")
            size = value.get("size")  # absent when the client copies a file that is already stored
            if size is None:
                stored = handler.hub.store.lfs_path(value["oid"])
                size = stored.stat().st_size if stored.is_file() else -1
            lfs_additions[value["path"]] = (value["oid"], int(size))
        elif key in ("deletedFile", "deletedFolder"):
            deletions.append(value["path"] + ("/" if key == "deletedFolder" else ""))
        else:
            raise StoreError(400, f"unknown commit operation {key!r}")
    if not header.get("summary"):
        raise StoreError(400, "the commit needs a header with a summary")
    create_pr = query.get("create_pr") in ("1", "true")
    commit, pr_number = handler.hub.store.commit(
        repo,
        revision,
        additions=additions,
        lfs_additions=lfs_additions,
        deletions=deletions,
        title=header["summary"],
        description=header.get("description", ""),
        author=user,
        parent_commit=header.get("parentCommit"),
        create_pr=create_pr,
    )
    base = f"{handler.endpoint}/{repo.url_prefix}{repo.repo_id}"
    pull_request = f"{base}/discussions/{pr_number}" if pr_number else None
    handler.json({"success": True, "commitOid": commit.oid, "commitUrl": f"{base}/commit/{commit.oid}",
                  "pullRequestUrl": pull_request, "hookOutput": ""})  # fmt: skip
