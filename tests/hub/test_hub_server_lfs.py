"""Large and binary files travel through LFS, as on the real Hub: preupload says "lfs", the client asks the LFS batch
API, PUTs the bytes to the upload URL, verifies, and the commit holds the git-lfs pointer (sha256, size)."""

from __future__ import annotations

import base64
import hashlib
import json
import urllib.error
import urllib.request
from pathlib import Path

import pytest
from hub_server import LoopbackHub, git_blob_id, lfs_pointer
from huggingface_hub import HfApi, hf_hub_download

from umedpt_hf.hub import push_to_hub


def _sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _routes(hub: LoopbackHub) -> list[str]:
    """The client's requests, one word each, in order (repeated words collapsed)."""
    words = []
    for method, path in hub.requests:
        for word in ("preupload", "objects/batch", "objects/verify", "lfs-upload", "/commit/"):
            if word in path:
                words.append(f"{method} {word.strip('/')}")
    return [w for i, w in enumerate(words) if i == 0 or words[i - 1] != w]


def test_a_pushed_model_safetensors_travels_through_lfs(loopback_hub, tiny_model_dir, tmp_path):
    weights = (tiny_model_dir / "model.safetensors").read_bytes()
    commit = push_to_hub(tiny_model_dir, "loopback-user/lfs-model")
    # the client asked which files are LFS, asked the batch API for upload URLs, uploaded, verified, then committed
    assert _routes(loopback_hub) == ["POST preupload", "POST objects/batch", "PUT lfs-upload", "POST objects/verify",
                                     "POST commit"]  # fmt: skip
    # the bytes sit in the LFS store under their sha256; the git tree holds the pointer
    assert (loopback_hub.root / "lfs" / _sha256(weights)).read_bytes() == weights
    entries = {entry.path: entry for entry in HfApi().list_repo_tree("loopback-user/lfs-model", revision=commit.oid)}
    model_entry = entries["model.safetensors"]
    assert model_entry.lfs is not None and model_entry.lfs.sha256 == _sha256(weights)
    assert model_entry.size == len(weights) == model_entry.lfs.size
    assert model_entry.blob_id == git_blob_id(lfs_pointer(_sha256(weights), len(weights)))
    assert entries["config.json"].lfs is None and entries["README.md"].lfs is None  # text stays a regular git blob
    assert entries["modeling_umedpt.py"].lfs is None
    # a download returns the exact bytes, cached under the sha256 as an LFS file is
    downloaded = Path(hf_hub_download("loopback-user/lfs-model", "model.safetensors"))
    assert downloaded.read_bytes() == weights
    assert downloaded.resolve().name == _sha256(weights)
    # pushing the same weights again uploads nothing: the batch API answers that the object is already stored
    loopback_hub.requests.clear()
    push_to_hub(tiny_model_dir, "loopback-user/lfs-model-copy")
    assert "PUT lfs-upload" not in _routes(loopback_hub) and "POST objects/batch" in _routes(loopback_hub)


def test_multipart_lfs_upload_and_binary_detection(hub_client, tmp_path):
    data = bytes(range(256)) * 10_000  # 2.56 MB, binary
    with LoopbackHub(tmp_path / "store", token="t", multipart_chunk_size=1_000_000) as hub:
        api = HfApi(endpoint=hub.endpoint, token="t")
        repo_id = api.create_repo("parts").repo_id
        api.upload_file(path_or_fileobj=data, path_in_repo="volume.raw", repo_id=repo_id)
        parts = [f"/lfs-upload/{_sha256(data)}/part/{n}" for n in (1, 2, 3)]
        assert [path for method, path in hub.requests if method == "PUT"] == parts
        assert ("POST", f"/lfs-upload/{_sha256(data)}") in hub.requests  # the completion
        info = api.model_info(repo_id, files_metadata=True)
        sibling = {s.rfilename: s for s in info.siblings}["volume.raw"]
        assert sibling.lfs.sha256 == _sha256(data) and sibling.size == len(data)
        local = hf_hub_download(repo_id, "volume.raw", endpoint=hub.endpoint, token="t", cache_dir=tmp_path / "c")
        assert Path(local).read_bytes() == data


def _post(hub: LoopbackHub, path: str, body: bytes | dict, method: str = "POST") -> urllib.error.HTTPError | None:
    data = body if isinstance(body, bytes) else json.dumps(body).encode()
    headers = {"Authorization": "Bearer t", "Content-Type": "application/json"}
    request = urllib.request.Request(f"{hub.endpoint}{path}", data=data, method=method, headers=headers)
    try:
        urllib.request.urlopen(request).read()
    except urllib.error.HTTPError as error:
        return error
    return None


def _commit_line(key: str, value: dict) -> bytes:
    header = {"key": "header", "value": {"summary": "raw"}}
    return (json.dumps(header) + "\n" + json.dumps({"key": key, "value": value}) + "\n").encode()


def test_the_server_refuses_what_the_real_hub_refuses(hub_client, tmp_path):
    data = b"\0\1\2" * 1000
    with LoopbackHub(tmp_path / "store", token="t") as hub:
        HfApi(endpoint=hub.endpoint, token="t").create_repo("strict")
        # binary content inline in a commit (not through LFS)
        inline = {"path": "w.bin", "encoding": "base64", "content": base64.b64encode(data).decode()}
        refused = _post(hub, "/api/models/loopback-user/strict/commit/main", _commit_line("file", inline))
        assert refused.code == 400 and "upload it with LFS" in refused.headers["X-Error-Message"]
        # a commit naming an LFS object that was never uploaded
        pointer = {"path": "w.bin", "algo": "sha256", "oid": _sha256(data), "size": len(data)}
        refused = _post(hub, "/api/models/loopback-user/strict/commit/main", _commit_line("lfsFile", pointer))
        assert refused.code == 400 and "never uploaded" in refused.headers["X-Error-Message"]
        # an upload URL without its signature, and signed bytes that are not the announced object
        assert _post(hub, f"/lfs-upload/{_sha256(data)}?size={len(data)}", data, "PUT").code == 403
        batch = {"operation": "upload", "transfers": ["basic"], "objects": [{"oid": _sha256(data), "size": len(data)}]}
        batch_url = f"{hub.endpoint}/loopback-user/strict.git/info/lfs/objects/batch"
        request = urllib.request.Request(batch_url, json.dumps(batch).encode(), {"Authorization": "Bearer t"})
        href = json.loads(urllib.request.urlopen(request).read())["objects"][0]["actions"]["upload"]["href"]
        refused = _post(hub, href.removeprefix(hub.endpoint), data[:-1] + b"x", "PUT")
        assert refused.code == 400 and "another sha256" in refused.headers["X-Error-Message"]
        assert not list((tmp_path / "store" / "lfs").iterdir())


def test_without_hf_hub_disable_xet_the_client_is_told_why(hub_client, tmp_path, monkeypatch):
    """huggingface_hub uploads through Xet whenever hf_xet is installed; this server has no Xet storage."""
    pytest.importorskip("hf_xet")
    monkeypatch.setattr(hub_client, "HF_HUB_DISABLE_XET", False)
    monkeypatch.setenv("HF_HUB_DISABLE_PROGRESS_BARS", "1")
    with LoopbackHub(tmp_path / "store", token="t") as hub:
        api = HfApi(endpoint=hub.endpoint, token="t")
        repo_id = api.create_repo("xet").repo_id
        with pytest.raises(ConnectionError, match=r"501 Not Implemented.*xet-write-token"):
            api.upload_file(path_or_fileobj=b"\0binary" * 100, path_in_repo="w.safetensors", repo_id=repo_id)
