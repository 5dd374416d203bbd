"""The loopback Hub answers the real huggingface_hub client, with git-identical object ids."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
import urllib.error
import urllib.request
from pathlib import Path

import pytest
from hub_server import LoopbackHub, git_blob_id, git_tree_id
from huggingface_hub import HfApi, hf_hub_download
from huggingface_hub.errors import EntryNotFoundError, HfHubHTTPError, RepositoryNotFoundError, RevisionNotFoundError

SERVER_SCRIPT = Path(__file__).resolve().parents[1] / "hub_server" / "server.py"


def _folder(tmp_path):
    folder = tmp_path / "upload"
    (folder / "sub" / "deeper").mkdir(parents=True)
    (folder / "a.txt").write_text("alpha\n")
    (folder / "sub" / "b.bin").write_bytes(bytes(range(256)) * 40)
    (folder / "sub" / "deeper" / "c.json").write_text('{"c": 1}\n')
    return folder


@pytest.mark.skipif(shutil.which("git") is None, reason="needs the git binary to compare ids")
def test_blob_and_tree_ids_are_the_ones_git_computes(tmp_path):
    folder = _folder(tmp_path)
    subprocess.run(["git", "init", "-q", str(folder)], check=True)
    subprocess.run(["git", "-C", str(folder), "add", "."], check=True)
    git_tree = subprocess.run(["git", "-C", str(folder), "write-tree"], check=True, capture_output=True, text=True)
    files = {str(p.relative_to(folder)): git_blob_id(p.read_bytes()) for p in folder.rglob("*") if p.is_file()}
    files = {k: v for k, v in files.items() if not k.startswith(".git/")}
    blob = subprocess.run(["git", "hash-object", str(folder / "a.txt")], check=True, capture_output=True, text=True)
    assert files["a.txt"] == blob.stdout.strip()
    assert git_tree_id(files) == git_tree.stdout.strip()


def test_create_upload_list_download_roundtrip(loopback_hub, tmp_path):
    api = HfApi()
    assert api.whoami()["name"] == "loopback-user"
    repo_id = api.create_repo("roundtrip").repo_id
    assert repo_id == "loopback-user/roundtrip"
    with pytest.raises(HfHubHTTPError):
        api.create_repo("roundtrip")
    api.create_repo("roundtrip", exist_ok=True)
    commit = api.upload_folder(folder_path=_folder(tmp_path), repo_id=repo_id, commit_message="add files")

    info = api.model_info(repo_id)
    assert info.sha == commit.oid and len(commit.oid) == 40
    assert sorted(s.rfilename for s in info.siblings) == [".gitattributes", "a.txt", "sub/b.bin", "sub/deeper/c.json"]
    top = {entry.path: type(entry).__name__ for entry in api.list_repo_tree(repo_id)}
    assert top == {".gitattributes": "RepoFile", "a.txt": "RepoFile", "sub": "RepoFolder"}
    assert "sub/deeper" in [e.path for e in api.list_repo_tree(repo_id, recursive=True)]
    assert [e.path for e in api.list_repo_tree(repo_id, "sub/deeper")] == ["sub/deeper/c.json"]

    path = hf_hub_download(repo_id, "sub/b.bin")
    assert Path(path).read_bytes() == bytes(range(256)) * 40
    with pytest.raises(EntryNotFoundError):
        hf_hub_download(repo_id, "missing.txt")
    with pytest.raises(RevisionNotFoundError):
        hf_hub_download(repo_id, "a.txt", revision="no-such-branch")
    assert [c.title for c in api.list_repo_commits(repo_id)] == ["add files", "initial commit"]


def test_branches_prs_deletions_and_unchanged_files(loopback_hub):
    api = HfApi()
    repo_id = api.create_repo("branches").repo_id
    api.upload_file(path_or_fileobj=b"v1", path_in_repo="x.txt", repo_id=repo_id, commit_message="v1")
    api.create_branch(repo_id, branch="dev")
    api.upload_file(path_or_fileobj=b"v2", path_in_repo="x.txt", repo_id=repo_id, revision="dev", commit_message="v2")
    assert Path(hf_hub_download(repo_id, "x.txt")).read_bytes() == b"v1"
    assert Path(hf_hub_download(repo_id, "x.txt", revision="dev")).read_bytes() == b"v2"
    refs = api.list_repo_refs(repo_id)
    assert {b.name for b in refs.branches} == {"main", "dev"}

    head = api.model_info(repo_id).sha
    again = api.upload_file(path_or_fileobj=b"v1", path_in_repo="x.txt", repo_id=repo_id, commit_message="same")
    assert again.oid == head  # nothing changed: the client skips the commit thanks to the blob ids of preupload

    pr = api.upload_file(
        path_or_fileobj=b"v3", path_in_repo="x.txt", repo_id=repo_id, create_pr=True, commit_message="pr"
    )
    assert pr.pr_num == 1
    assert Path(hf_hub_download(repo_id, "x.txt", revision="refs/pr/1")).read_bytes() == b"v3"
    api.delete_file("x.txt", repo_id, revision="dev")
    assert "x.txt" not in api.list_repo_files(repo_id, revision="dev")


def test_private_repos_need_the_token(loopback_hub):
    api = HfApi()
    repo_id = api.create_repo("secret", private=True).repo_id
    assert api.model_info(repo_id).private is True
    with pytest.raises(RepositoryNotFoundError):
        HfApi(token=False).model_info(repo_id)
    with pytest.raises(HfHubHTTPError, match="401"):
        HfApi(token="hf_wrong").model_info(repo_id)
    with pytest.raises(RepositoryNotFoundError):
        HfApi().model_info("loopback-user/does-not-exist")


def test_repo_names_cannot_escape_the_storage_folder(loopback_hub):
    request = urllib.request.Request(  # the client refuses such names itself: speak raw HTTP
        f"{loopback_hub.endpoint}/api/repos/create",
        data=json.dumps({"name": "escape", "organization": ".."}).encode(),
        headers={"Authorization": "Bearer hf_loopback_test_token", "Content-Type": "application/json"},
    )
    with pytest.raises(urllib.error.HTTPError) as refused:
        urllib.request.urlopen(request)
    assert refused.value.code == 400 and "Invalid repo id" in refused.value.headers["X-Error-Message"]
    assert not list(loopback_hub.root.rglob("escape*"))


def test_invalid_card_metadata_is_refused_before_upload(loopback_hub):
    api = HfApi()
    repo_id = api.create_repo("badcard").repo_id
    with pytest.raises(ValueError, match="Invalid metadata"):
        api.upload_file(path_or_fileobj=b"---\nlicense: [unclosed\n---\n", path_in_repo="README.md", repo_id=repo_id)


def test_repos_survive_a_restart_on_the_same_folder(loopback_hub, tmp_path):
    with LoopbackHub(tmp_path / "store", token="t") as hub:
        api = HfApi(endpoint=hub.endpoint, token="t")
        repo_id = api.create_repo("kept", repo_type="space", space_sdk="gradio").repo_id
        sha = api.upload_file(path_or_fileobj=b"print(1)\n", path_in_repo="app.py", repo_id=repo_id, repo_type="space",
                              commit_message="app").oid  # fmt: skip
    with LoopbackHub(tmp_path / "store", token="t") as hub:
        api = HfApi(endpoint=hub.endpoint, token="t")
        info = api.space_info(repo_id)
        assert info.sha == sha and info.sdk == "gradio"
        assert "app.py" in api.list_repo_files(repo_id, repo_type="space")


def test_the_server_runs_as_a_command_for_offline_demos(hub_client, tmp_path):
    root = tmp_path / "demo-hub"
    started = subprocess.run([sys.executable, str(SERVER_SCRIPT), "--root", str(root), "--token", "t", "--background"],
                             capture_output=True, text=True, timeout=60)  # fmt: skip
    assert started.returncode == 0, started.stderr
    try:
        endpoint = re.search(r"at (http://127\.0\.0\.1:\d+)", started.stdout).group(1)
        assert f"export HF_ENDPOINT={endpoint} HF_TOKEN=t HF_HUB_DISABLE_XET=1" in started.stdout
        api = HfApi(endpoint=endpoint, token="t")
        assert api.whoami()["name"] == "loopback-user"
        assert api.create_repo("offline-demo").repo_id == "loopback-user/offline-demo"
    finally:
        stopped = subprocess.run([sys.executable, str(SERVER_SCRIPT), "--root", str(root), "--stop"],
                                 capture_output=True, text=True, timeout=30)  # fmt: skip
    assert stopped.returncode == 0 and "stopped" in stopped.stdout, stopped.stderr
    assert (root / "repos" / "model" / "loopback-user" / "offline-demo.json").is_file()
    assert not (root / "server.json").exists()
    with pytest.raises(Exception, match=r"Connection refused|ConnectError"):
        HfApi(endpoint=endpoint, token="t").whoami()
