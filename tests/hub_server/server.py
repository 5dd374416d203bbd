"""A loopback Hugging Face Hub: the HTTP endpoints the ``huggingface_hub`` client uses, served on 127.0.0.1.

Test support, not part of ``umedpt_hf``: the real client (``HfApi``, ``hf_hub_download``, ``from_pretrained``,
``ModelCard.load``) creates repos, commits (small text files inline, binary and large files through the LFS batch
and upload endpoints), branches and downloads without the internet. From a checkout::

    python tests/hub_server/server.py --root ./hub --port 8765 --background   # returns once it listens
    export HF_ENDPOINT=http://127.0.0.1:8765 HF_TOKEN=hf_anything HF_HUB_DISABLE_XET=1
    umedpt push outputs/umedpt_mini/final me/umedpt-mini
    python tests/hub_server/server.py --root ./hub --stop

or in a test (``tests/`` is on ``sys.path``)::

    with LoopbackHub() as hub:               # a temporary folder, a free port
        os.environ.update(hub.client_env())  # before huggingface_hub is imported

``HF_HUB_DISABLE_XET=1`` is needed because ``huggingface_hub`` uploads through Xet whenever ``hf_xet`` is installed
(the client decides, not the server); this server has no Xet storage and answers its token route with a clear 501.
"""

from __future__ import annotations

import argparse
import json
import os
import secrets
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

if __package__ in (None, ""):  # run as a script: make `hub_server` importable from tests/
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from hub_server.handler import HubHTTPServer, HubRequestHandler
from hub_server.store import LoopbackStore

STATE_FILE = "server.json"  # written in --root by a running server: its endpoint and process id


class LoopbackHub:
    """A Hub on 127.0.0.1 that the real huggingface_hub client can push to and download from.

    Args:
        root: folder holding the repos (kept between runs); a temporary folder, removed on ``stop()``, when None.
        host: interface to bind; keep the default loopback address.
        port: 0 picks a free port.
        token: the only token accepted; None accepts any token (every request with a token is ``user``).
        user: the account the token belongs to (the namespace of repos created without an organisation).
        multipart_chunk_size: LFS objects larger than this are uploaded in parts of this size (None: one part).
    """

    def __init__(
        self,
        root: str | Path | None = None,
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        token: str | None = None,
        user: str = "loopback-user",
        multipart_chunk_size: int | None = None,
    ) -> None:
        self._temporary = root is None
        self.root = Path(tempfile.mkdtemp(prefix="loopback-hub-")) if root is None else Path(root)
        self.store = LoopbackStore(self.root)
        self.token = token
        self.user = user
        self.multipart_chunk_size = multipart_chunk_size
        self.upload_secret = secrets.token_bytes(32)  # signs the LFS upload URLs handed out by the batch API
        self.pending_parts: dict[str, dict[int, bytes]] = {}
        self.requests: list[tuple[str, str]] = []  # (method, path) of every request, in order: what the client did
        self.lock = threading.Lock()
        self._server = HubHTTPServer((host, port), HubRequestHandler)
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
            "HF_HUB_DISABLE_XET": "1",
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


def _client_env_line(endpoint: str, token: str | None) -> str:
    return f"  export HF_ENDPOINT={endpoint} HF_TOKEN={token or 'hf_anything'} HF_HUB_DISABLE_XET=1"


def _serve(args: argparse.Namespace) -> int:
    hub = LoopbackHub(args.root, port=args.port, token=args.token, user=args.user)
    state = Path(args.root) / STATE_FILE
    state.write_text(json.dumps({"endpoint": hub.endpoint, "pid": os.getpid()}))
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    print(f"Loopback Hub serving {Path(args.root).resolve()} at {hub.endpoint}", flush=True)
    print(_client_env_line(hub.endpoint, args.token), flush=True)
    try:
        hub.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        hub._server.server_close()
        state.unlink(missing_ok=True)
    return 0


def _start_in_background(args: argparse.Namespace, argv: list[str]) -> int:
    """Start the server as a detached process and return once it listens (its log: ROOT/server.log)."""
    state = Path(args.root) / STATE_FILE
    state.unlink(missing_ok=True)
    command = [sys.executable, str(Path(__file__).resolve()), *[a for a in argv if a != "--background"]]
    with (Path(args.root) / "server.log").open("ab") as log:
        process = subprocess.Popen(command, stdout=log, stderr=log, stdin=subprocess.DEVNULL, start_new_session=True)
    deadline = time.monotonic() + 60
    while not state.is_file():
        if process.poll() is not None or time.monotonic() > deadline:
            print(f"the loopback Hub did not start; see {Path(args.root) / 'server.log'}", file=sys.stderr)
            return 1
        time.sleep(0.05)
    endpoint = json.loads(state.read_text())["endpoint"]
    print(f"Loopback Hub (process {process.pid}) serving {Path(args.root).resolve()} at {endpoint}")
    print(_client_env_line(endpoint, args.token))
    return 0


def _stop(args: argparse.Namespace) -> int:
    state = Path(args.root) / STATE_FILE
    if not state.is_file():
        print(f"no loopback Hub is running for {args.root} (no {state})", file=sys.stderr)
        return 1
    pid = int(json.loads(state.read_text())["pid"])
    try:
        os.kill(pid, signal.SIGTERM)
    except ProcessLookupError:
        state.unlink(missing_ok=True)
        return 0
    deadline = time.monotonic() + 10
    while state.is_file() and time.monotonic() < deadline:
        time.sleep(0.05)
    print(f"stopped the loopback Hub (process {pid})")
    return 0


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    parser = argparse.ArgumentParser(description="Serve a loopback Hugging Face Hub on 127.0.0.1 (tests, demos)")
    parser.add_argument("--root", default="loopback-hub", help="folder that keeps the repos (default: ./loopback-hub)")
    parser.add_argument("--port", type=int, default=0, help="port to listen on (default: a free one)")
    parser.add_argument("--token", default=None, help="the only token accepted (default: any)")
    parser.add_argument("--user", default="loopback-user", help="account name the token belongs to")
    mode = parser.add_mutually_exclusive_group()
    mode.add_argument("--background", action="store_true", help="start detached; return once it listens")
    mode.add_argument("--stop", action="store_true", help="stop the server started with --background on --root")
    args = parser.parse_args(argv)
    Path(args.root).mkdir(parents=True, exist_ok=True)
    if args.stop:
        return _stop(args)
    if args.background:
        return _start_in_background(args, argv)
    return _serve(args)


if __name__ == "__main__":
    sys.exit(main())
