"""Git-like storage behind the loopback Hub: content-addressed blobs, LFS objects, commits with real git ids, refs.

Blob ids are git blob ids (``sha1("blob <size>\\0" + content)``), tree and commit ids are computed from real git tree
and commit objects, so every id the client sees has the same form (and, for blobs, the same value) as on the Hub.
A file uploaded through LFS is stored once under ``lfs/<sha256>``; the commit holds its git-lfs pointer, as on the Hub.
Everything is kept as plain files under one folder, so a server restarted on the same folder serves the same repos.
"""

from __future__ import annotations

import hashlib
import json
import re
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

GITATTRIBUTES = (
    "*.bin filter=lfs diff=lfs merge=lfs -text\n"
    "*.ckpt filter=lfs diff=lfs merge=lfs -text\n"
    "*.h5 filter=lfs diff=lfs merge=lfs -text\n"
    "*.npy filter=lfs diff=lfs merge=lfs -text\n"
    "*.onnx filter=lfs diff=lfs merge=lfs -text\n"
    "*.pt filter=lfs diff=lfs merge=lfs -text\n"
    "*.pth filter=lfs diff=lfs merge=lfs -text\n"
    "*.safetensors filter=lfs diff=lfs merge=lfs -text\n"
    "*.zip filter=lfs diff=lfs merge=lfs -text\n"
)
REPO_TYPES = ("model", "dataset", "space")
LFS_POINTER = "version https://git-lfs.github.com/spec/v1\noid sha256:{oid}\nsize {size}\n"
_LFS_POINTER = re.compile(r"version https://git-lfs\.github\.com/spec/v1\noid sha256:([0-9a-f]{64})\nsize (\d+)\n")
_REPO_PART = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,95}")


class StoreError(Exception):
    """A request the store refuses; carries the HTTP status and the Hub's ``X-Error-Code``."""

    def __init__(self, status: int, message: str, error_code: str | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.error_code = error_code


def lfs_pointer(oid: str, size: int) -> bytes:
    """The git-lfs pointer file that stands in the git tree for an LFS object."""
    return LFS_POINTER.format(oid=oid, size=size).encode()


def parse_lfs_pointer(content: bytes) -> tuple[str, int] | None:
    """``(sha256, size)`` of a git-lfs pointer, or None for ordinary content."""
    if len(content) > 200:
        return None
    match = _LFS_POINTER.fullmatch(content.decode("utf-8", errors="replace"))
    return (match.group(1), int(match.group(2))) if match else None


def git_blob_id(content: bytes) -> str:
    """The id git (and the Hub) gives a file's content."""
    return hashlib.sha1(b"blob %d\0" % len(content) + content).hexdigest()


def git_tree_id(files: dict[str, str]) -> str:
    """The git tree id of a flat ``{path: blob id}`` mapping (sub-folders become sub-trees)."""
    entries: dict[str, tuple[str, str]] = {}  # name -> (mode, id)
    children: dict[str, dict[str, str]] = {}
    for path, oid in files.items():
        head, _, rest = path.partition("/")
        if rest:
            children.setdefault(head, {})[rest] = oid
        else:
            entries[head] = ("100644", oid)
    for name, sub in children.items():
        entries[name] = ("40000", git_tree_id(sub))
    # git sorts folder names as if they ended with "/"
    ordered = sorted(entries.items(), key=lambda item: item[0] + ("/" if item[1][0] == "40000" else ""))
    body = b"".join(f"{mode} {name}".encode() + b"\0" + bytes.fromhex(oid) for name, (mode, oid) in ordered)
    return hashlib.sha1(b"tree %d\0" % len(body) + body).hexdigest()


def git_commit_id(tree: str, parent: str | None, author: str, timestamp: int, message: str) -> str:
    """The git commit id of a commit object with one author who is also the committer."""
    lines = [f"tree {tree}"]
    if parent:
        lines.append(f"parent {parent}")
    signature = f"{author} <{author}@users.noreply.huggingface.co> {timestamp} +0000"
    lines += [f"author {signature}", f"committer {signature}", "", message]
    body = ("\n".join(lines) + "\n").encode()
    return hashlib.sha1(b"commit %d\0" % len(body) + body).hexdigest()


@dataclass
class Commit:
    """One commit: its full file listing ``{path: blob id}`` and its metadata."""

    oid: str
    parent: str | None
    files: dict[str, str]
    title: str
    message: str
    author: str
    timestamp: int


@dataclass
class Repo:
    """A repository: refs (branches and PR refs) pointing at commits."""

    repo_type: str
    repo_id: str
    private: bool
    sdk: str | None = None
    created: int = 0
    refs: dict[str, str] = field(default_factory=dict)
    commits: dict[str, Commit] = field(default_factory=dict)

    def resolve(self, revision: str) -> Commit:
        """A branch, PR ref, full or abbreviated (>= 7 hex digits) commit id -> commit."""
        if revision in self.refs:
            return self.commits[self.refs[revision]]
        if revision in self.commits:
            return self.commits[revision]
        if len(revision) >= 7:
            matches = [oid for oid in self.commits if oid.startswith(revision)]
            if len(matches) == 1:
                return self.commits[matches[0]]
        raise StoreError(404, f"Invalid rev id: {revision}", "RevisionNotFound")

    @property
    def url_prefix(self) -> str:
        """Path prefix of the repo's web pages: '' for models, 'datasets/' or 'spaces/' otherwise."""
        return "" if self.repo_type == "model" else f"{self.repo_type}s/"


class LoopbackStore:
    """All repos of one loopback Hub, kept under ``root``: blobs/, lfs/ and repos/<type>/<namespace>/<name>.json."""

    def __init__(self, root: str | Path) -> None:
        self.root = Path(root)
        (self.root / "blobs").mkdir(parents=True, exist_ok=True)
        (self.root / "lfs").mkdir(exist_ok=True)
        self.lock = threading.RLock()
        self.repos: dict[tuple[str, str], Repo] = {}
        for path in sorted((self.root / "repos").glob("*/*/*.json")):
            repo = self._load(path)
            self.repos[(repo.repo_type, repo.repo_id)] = repo

    # -- blobs ---------------------------------------------------------------------------------------------------
    def put_blob(self, content: bytes) -> str:
        oid = git_blob_id(content)
        path = self.root / "blobs" / oid
        if not path.exists():
            tmp = path.with_suffix(".tmp")
            tmp.write_bytes(content)
            tmp.replace(path)
        return oid

    def blob_path(self, oid: str) -> Path:
        return self.root / "blobs" / oid

    def blob_size(self, oid: str) -> int:
        return self.blob_path(oid).stat().st_size

    def lfs_info(self, oid: str) -> tuple[str, int] | None:
        """``(sha256, size)`` when the blob ``oid`` is the pointer of a stored LFS object, else None."""
        pointer = parse_lfs_pointer(self.blob_path(oid).read_bytes()) if self.blob_size(oid) <= 200 else None
        return pointer if pointer and self.lfs_path(pointer[0]).is_file() else None

    def file_size(self, oid: str) -> int:
        """The size of the file a blob stands for: the LFS object's size for a pointer."""
        lfs = self.lfs_info(oid)
        return lfs[1] if lfs else self.blob_size(oid)

    def file_path(self, oid: str) -> Path:
        """Where the content of the file a blob stands for lies: the LFS object for a pointer."""
        lfs = self.lfs_info(oid)
        return self.lfs_path(lfs[0]) if lfs else self.blob_path(oid)

    # -- LFS objects ---------------------------------------------------------------------------------------------
    def lfs_path(self, sha256: str) -> Path:
        if not re.fullmatch(r"[0-9a-f]{64}", sha256):
            raise StoreError(400, f"invalid LFS oid {sha256!r}: expected 64 hex digits (sha256)")
        return self.root / "lfs" / sha256

    def has_lfs_object(self, sha256: str, size: int) -> bool:
        path = self.lfs_path(sha256)
        return path.is_file() and path.stat().st_size == size

    def put_lfs_object(self, sha256: str, size: int, content: bytes) -> None:
        """Store an uploaded LFS object after checking that it is what the batch request announced."""
        if len(content) != size:
            raise StoreError(400, f"LFS object {sha256}: received {len(content)} bytes, announced {size}")
        if hashlib.sha256(content).hexdigest() != sha256:
            raise StoreError(400, f"LFS object {sha256}: the uploaded bytes have another sha256")
        path = self.lfs_path(sha256)
        tmp = path.with_suffix(f".{threading.get_ident()}.tmp")
        tmp.write_bytes(content)
        tmp.replace(path)

    # -- repos ---------------------------------------------------------------------------------------------------
    def get(self, repo_type: str, repo_id: str) -> Repo:
        repo = self.repos.get((repo_type, repo_id))
        if repo is None:
            raise StoreError(404, f"Repository {repo_id} not found", "RepoNotFound")
        return repo

    def create_repo(self, repo_type: str, repo_id: str, *, private: bool, sdk: str | None, author: str) -> Repo:
        if repo_type not in REPO_TYPES:
            raise StoreError(400, f"Invalid repo type {repo_type!r}")
        parts = repo_id.split("/")
        if len(parts) != 2 or not all(_REPO_PART.fullmatch(part) and ".." not in part for part in parts):
            raise StoreError(
                400, f"Invalid repo id {repo_id!r}: use namespace/name with letters, digits, '-', '_', '.'"
            )
        with self.lock:
            if (repo_type, repo_id) in self.repos:
                raise StoreError(409, f"You already created this {repo_type} repo")
            repo = Repo(repo_type, repo_id, private=private, sdk=sdk, created=int(time.time()))
            files = {".gitattributes": self.put_blob(GITATTRIBUTES.encode())}
            if repo_type == "space":
                readme = f"---\ntitle: {repo_id.split('/')[-1]}\nsdk: {sdk}\n---\n"
                files["README.md"] = self.put_blob(readme.encode())
            self._add_commit(repo, "main", None, files, "initial commit", "", author)
            self.repos[(repo_type, repo_id)] = repo
            self._save(repo)
            return repo

    def delete_repo(self, repo_type: str, repo_id: str) -> None:
        with self.lock:
            self.get(repo_type, repo_id)
            del self.repos[(repo_type, repo_id)]
            self._repo_file(repo_type, repo_id).unlink(missing_ok=True)

    def create_branch(self, repo: Repo, branch: str, starting_point: str | None) -> None:
        with self.lock:
            if branch in repo.refs:
                raise StoreError(409, f"Reference already exists: refs/heads/{branch}")
            repo.refs[branch] = repo.resolve(starting_point or "main").oid
            self._save(repo)

    def commit(
        self,
        repo: Repo,
        revision: str,
        *,
        additions: dict[str, bytes],
        lfs_additions: dict[str, tuple[str, int]] | None = None,
        deletions: list[str],
        title: str,
        description: str,
        author: str,
        parent_commit: str | None = None,
        create_pr: bool = False,
    ) -> tuple[Commit, int | None]:
        """Apply additions (content, or ``(sha256, size)`` of an uploaded LFS object) and deletions on top of
        ``revision``; return the commit and the PR number, if any."""
        with self.lock:
            head = repo.resolve(revision)
            if parent_commit and not head.oid.startswith(parent_commit):
                raise StoreError(412, f"A commit has happened since. Parent commit is {head.oid}, not {parent_commit}")
            if revision not in repo.refs and not create_pr:
                raise StoreError(400, f"Can only commit to a branch, not to {revision!r}", "RevisionNotFound")
            files = dict(head.files)
            for path in deletions:
                folder = path.rstrip("/") + "/"
                matched = [name for name in files if name == path or name.startswith(folder)]
                if not matched:
                    raise StoreError(404, f"A file with this name doesn't exist: {path}", "EntryNotFound")
                for name in matched:
                    del files[name]
            for path, content in additions.items():
                files[path] = self.put_blob(content)
            for path, (sha256, size) in (lfs_additions or {}).items():
                if not self.has_lfs_object(sha256, size):
                    raise StoreError(400, f"{path}: LFS object {sha256} ({size} bytes) was never uploaded")
                files[path] = self.put_blob(lfs_pointer(sha256, size))
            pr_number = None
            ref = revision
            if create_pr:
                pr_number = 1 + sum(name.startswith("refs/pr/") for name in repo.refs)
                ref = f"refs/pr/{pr_number}"
                repo.refs[ref] = head.oid
            commit = self._add_commit(repo, ref, head.oid, files, title, description, author)
            self._save(repo)
            return commit, pr_number

    def history(self, repo: Repo, revision: str) -> list[Commit]:
        commit: Commit | None = repo.resolve(revision)
        out = []
        while commit is not None:
            out.append(commit)
            commit = repo.commits.get(commit.parent) if commit.parent else None
        return out

    # -- internals -----------------------------------------------------------------------------------------------
    def _add_commit(
        self, repo: Repo, ref: str, parent: str | None, files: dict[str, str], title: str, description: str, author: str
    ) -> Commit:
        timestamp = int(time.time())
        message = title + (f"\n\n{description}" if description else "")
        oid = git_commit_id(git_tree_id(files), parent, author, timestamp, message)
        commit = Commit(oid, parent, dict(sorted(files.items())), title, message, author, timestamp)
        repo.commits[oid] = commit
        repo.refs[ref] = oid
        return commit

    def _repo_file(self, repo_type: str, repo_id: str) -> Path:
        return self.root / "repos" / repo_type / f"{repo_id}.json"

    def _save(self, repo: Repo) -> None:
        path = self._repo_file(repo.repo_type, repo.repo_id)
        path.parent.mkdir(parents=True, exist_ok=True)
        data = {
            "repo_type": repo.repo_type,
            "repo_id": repo.repo_id,
            "private": repo.private,
            "sdk": repo.sdk,
            "created": repo.created,
            "refs": repo.refs,
            "commits": [vars(commit) for commit in repo.commits.values()],
        }
        tmp = path.with_suffix(".tmp")
        tmp.write_text(json.dumps(data, indent=1))
        tmp.replace(path)

    @staticmethod
    def _load(path: Path) -> Repo:
        data = json.loads(path.read_text())
        commits = {c["oid"]: Commit(**c) for c in data.pop("commits")}
        return Repo(**data, commits=commits)
