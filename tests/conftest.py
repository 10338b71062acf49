"""Fixtures shared by several test files."""

from __future__ import annotations

import hashlib
import shutil
import socket
import sys
import threading
from collections.abc import Iterator
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import NamedTuple

import pytest

from mamllib.data import find_omniglot

ZIPS = ("images_background.zip", "images_evaluation.zip")


class Server(NamedTuple):
    url: str  # ends with "/"
    folder: Path  # what it serves
    requests: list[str]  # paths asked for, in order


@pytest.fixture(scope="session")
def shared() -> Path:
    return find_omniglot()


@pytest.fixture(scope="session")
def repacked_md5(shared) -> dict[str, str]:
    return {name: hashlib.md5((shared / name).read_bytes()).hexdigest() for name in ZIPS}


@pytest.fixture(scope="session")
def mirror(shared, tmp_path_factory) -> Iterator[Server]:
    """A threaded HTTP server on 127.0.0.1; ``/truncated/<zip>`` sends half a file."""
    folder = tmp_path_factory.mktemp("mirror")
    for name in ZIPS:
        shutil.copy(shared / name, folder / name)
    requests: list[str] = []

    class Handler(SimpleHTTPRequestHandler):
        def __init__(self, *args, **kwargs):
            super().__init__(*args, directory=str(folder), **kwargs)

        def do_GET(self):
            requests.append(self.path)
            if not self.path.startswith("/truncated/"):
                return super().do_GET()
            body = (folder / Path(self.path).name).read_bytes()
            self.send_response(200)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body[: len(body) // 2])
            self.close_connection = True

        def log_message(self, format, *args):
            pass  # keep the test output clean; requests are recorded above

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield Server(f"http://127.0.0.1:{server.server_address[1]}/", folder, requests)
    finally:
        server.shutdown()
        server.server_close()


@pytest.fixture
def server(mirror) -> Server:
    mirror.requests.clear()
    return mirror


@pytest.fixture
def closed_port() -> int:
    """A port nothing listens on (bound, then released): a machine without network."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture(autouse=True)
def _close_figures():
    """Every test starts without the figures of the tests before it."""
    yield
    if "matplotlib.pyplot" in sys.modules:
        sys.modules["matplotlib.pyplot"].close("all")


@pytest.fixture
def figures(monkeypatch):
    """Every figure a dashboard shows, in order (the Agg backend draws nothing on screen)."""
    import matplotlib.pyplot as plt

    shown = []
    monkeypatch.setattr(plt, "show", lambda *args, **kwargs: shown.append(plt.gcf()))
    return shown
