"""Fetching Omniglot, against a local HTTP server (127.0.0.1 only, never the internet).

The server serves copies of the course's shared zips. Those are repacked, so their md5s
differ from the originals': a download with the original checksums must reject them, and
the tests that need a download to succeed pass the copies' md5s, computed here with
hashlib.
"""

from __future__ import annotations

import ast
import hashlib
import os
import shutil
import socket
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest
import torch
from PIL import Image

from mamllib.data import (
    DataNotFoundError,
    OmniglotData,
    download_omniglot,
    find_omniglot,
    load_omniglot,
)
from mamllib.data import download as download_module
from mamllib.data import omniglot as omniglot_module

REPO = Path(__file__).resolve().parents[1]
ZIPS = ("images_background.zip", "images_evaluation.zip")
ORIGINAL_BACKGROUND_MD5 = "68d2efa1b9178cc56df9314c21c6e718"
RETRY = "python -m mamllib.data omniglot"


def assert_one_line_error(error: pytest.ExceptionInfo, *needed: str) -> str:
    message = str(error.value)
    assert "\n" not in message
    for text in (RETRY, "MAMLLIB_DATA", *needed):
        assert text in message
    return message


# --------------------------------------------------------------------------- success


def test_both_zips_arrive_verified_with_progress(server, repacked_md5, shared, tmp_path, capsys):
    folder = tmp_path / "omniglot"
    assert download_omniglot(folder, base_url=server.url, checksums=repacked_md5) == folder
    out, err = capsys.readouterr()
    assert out == (
        "Fetching Omniglot: images_background.zip and images_evaluation.zip, about 16 MB, "
        f"from {server.url} into {folder}\n"
    )
    for name in ZIPS:
        assert (folder / name).read_bytes() == (shared / name).read_bytes()
        assert f"{name}: 100%" in err, "a progress bar per file, named after it"
    assert sorted(p.name for p in folder.iterdir()) == sorted(ZIPS), "no .part left"
    assert server.requests == [f"/{name}" for name in ZIPS]
    assert find_omniglot(folder) == folder


def test_no_progress_bar_when_asked(server, repacked_md5, tmp_path, capsys):
    download_omniglot(tmp_path, base_url=server.url, checksums=repacked_md5, progress=False)
    assert capsys.readouterr().err == ""


def test_present_zips_are_kept(server, repacked_md5, shared, tmp_path, capsys):
    for name in ZIPS:
        shutil.copy(shared / name, tmp_path / name)
    assert download_omniglot(tmp_path, base_url=server.url, checksums=repacked_md5) == tmp_path
    assert server.requests == [] and capsys.readouterr().out == ""

    (tmp_path / "images_evaluation.zip").unlink()
    kept = (tmp_path / "images_background.zip").stat().st_mtime_ns
    download_omniglot(tmp_path, base_url=server.url, checksums=repacked_md5)
    assert server.requests == ["/images_evaluation.zip"]
    assert (tmp_path / "images_background.zip").stat().st_mtime_ns == kept
    assert "Fetching Omniglot: images_evaluation.zip from" in capsys.readouterr().out


def test_stale_part_file_is_replaced(server, repacked_md5, tmp_path):
    (tmp_path / "images_background.zip.part").write_bytes(b"left by an interrupted download")
    download_omniglot(tmp_path, base_url=server.url, checksums=repacked_md5, progress=False)
    digest = hashlib.md5((tmp_path / "images_background.zip").read_bytes()).hexdigest()
    assert digest == repacked_md5["images_background.zip"]
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(ZIPS)


def test_default_folder_and_mirror_from_the_environment(
    server, repacked_md5, tmp_path, monkeypatch
):
    monkeypatch.setenv("MAMLLIB_DATA", str(tmp_path))
    monkeypatch.setenv("MAMLLIB_OMNIGLOT_URL", server.url)
    folder = download_omniglot(checksums=repacked_md5, progress=False)
    assert folder == tmp_path / "omniglot" and server.requests == [f"/{n}" for n in ZIPS]
    assert find_omniglot() == folder


def test_load_omniglot_downloads_when_asked(server, repacked_md5, tmp_path, monkeypatch):
    monkeypatch.setenv("MAMLLIB_DATA", str(tmp_path / "data"))
    monkeypatch.setenv("MAMLLIB_OMNIGLOT_URL", server.url)
    with pytest.raises(DataNotFoundError, match="is not in"):
        load_omniglot(cache_dir=tmp_path / "cache")
    assert server.requests == [], "no download unless asked"
    # the original md5s reject the repacked copy...
    with pytest.raises(DataNotFoundError, match="the mirror serves other files"):
        load_omniglot(cache_dir=tmp_path / "cache", download=True)
    # ...so stand the copy's md5s in for them; decoding is tested elsewhere
    for name, md5 in repacked_md5.items():
        monkeypatch.setitem(download_module.ORIGINAL_MD5, name, md5)
    tiny = OmniglotData(
        torch.zeros(1, 20, 2, 2, dtype=torch.uint8), ["a"], ["c"], torch.ones(1, dtype=torch.bool)
    )
    monkeypatch.setattr(omniglot_module, "_decode", lambda *args, **kwargs: tiny)
    assert load_omniglot(cache_dir=tmp_path / "cache", download=True) is tiny
    assert find_omniglot() == tmp_path / "data" / "omniglot"


# --------------------------------------------------------------------------- failures


def test_original_checksums_reject_the_repacked_copy(server, repacked_md5, tmp_path):
    with pytest.raises(DataNotFoundError) as error:
        download_omniglot(tmp_path, base_url=server.url, progress=False)
    got = repacked_md5["images_background.zip"]
    assert_one_line_error(
        error,
        f"{server.url}images_background.zip has md5 {got}, expected {ORIGINAL_BACKGROUND_MD5}: "
        "the download is corrupt or the mirror serves other files.",
        f"`{RETRY} --dir {tmp_path} --url {server.url}`",
    )
    assert list(tmp_path.iterdir()) == [], "neither a zip nor a .part is left"


def test_refused_connection(tmp_path, closed_port):
    url = f"http://127.0.0.1:{closed_port}/"
    with pytest.raises(DataNotFoundError) as error:
        download_omniglot(tmp_path, base_url=url, progress=False)
    assert_one_line_error(error, f"Could not fetch {url}images_background.zip (", "refused")
    assert list(tmp_path.iterdir()) == []


def test_http_404(server, tmp_path):
    with pytest.raises(DataNotFoundError) as error:
        download_omniglot(tmp_path, base_url=server.url + "elsewhere/", progress=False)
    assert_one_line_error(error, "(HTTP 404 ")
    assert list(tmp_path.iterdir()) == []


def test_truncated_download_leaves_nothing(server, repacked_md5, tmp_path):
    with pytest.raises(DataNotFoundError, match="the download is corrupt"):
        download_omniglot(
            tmp_path, base_url=server.url + "truncated/", checksums=repacked_md5, progress=False
        )
    assert list(tmp_path.iterdir()) == []


def test_stalled_server_times_out(tmp_path, monkeypatch):
    monkeypatch.setattr(download_module, "TIMEOUT_S", 0.5)
    with socket.socket() as silent:  # accepts connections (the backlog), never answers
        silent.bind(("127.0.0.1", 0))
        silent.listen()
        url = f"http://127.0.0.1:{silent.getsockname()[1]}/"
        with pytest.raises(DataNotFoundError) as error:
            download_omniglot(tmp_path, base_url=url, progress=False)
    assert_one_line_error(error, "timed out")
    assert list(tmp_path.iterdir()) == []


def test_interrupted_download_leaves_nothing(tmp_path, monkeypatch):
    def interrupted(url, part, progress):
        part.write_bytes(b"the first bytes")
        raise KeyboardInterrupt

    monkeypatch.setattr(download_module, "_stream", interrupted)
    with pytest.raises(KeyboardInterrupt):
        download_omniglot(tmp_path, base_url="http://127.0.0.1:9/", progress=False)
    assert list(tmp_path.iterdir()) == []


def test_retry_advice_for_the_default_place(tmp_path, monkeypatch, closed_port):
    monkeypatch.setenv("MAMLLIB_DATA", str(tmp_path))
    monkeypatch.setenv("MAMLLIB_OMNIGLOT_URL", f"http://127.0.0.1:{closed_port}/")
    with pytest.raises(DataNotFoundError) as error:
        download_omniglot(progress=False)
    assert f"Retry with `{RETRY}`, or copy" in str(error.value)


# --------------------------------------------------------------------------- command line


def run(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": str(REPO), **(env or {})}
    return subprocess.run(
        [sys.executable, *args], capture_output=True, text=True, env=env, timeout=300
    )


def test_command_line_checksum_mismatch(server, tmp_path):
    done = run("-m", "mamllib.data", "omniglot", "--dir", str(tmp_path), "--url", server.url)
    assert done.returncode == 2
    assert "Traceback" not in done.stderr
    errors = [line for line in done.stderr.splitlines() if line.startswith("error:")]
    assert len(errors) == 1 and "has md5" in errors[0] and "mirror serves other files" in errors[0]
    assert done.stderr.rstrip("\n").endswith(errors[0]), "the error line comes last"
    assert list(tmp_path.iterdir()) == []


def test_command_line_with_the_zips_in_place(shared):
    """The session's decoded cache ($MAMLLIB_CACHE) matches the shared zips: no decoding."""
    done = run("-m", "mamllib.data", "omniglot", "--dir", str(shared))
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith(f"Omniglot is ready in {shared}: 1623 characters x 20 drawings")
    assert f"MAMLLIB_DATA={shared}" in done.stdout


def test_command_line_without_a_data_set_shows_usage(capsys):
    from mamllib.data.__main__ import main

    with pytest.raises(SystemExit) as exited:
        main([])
    assert exited.value.code == 2
    assert capsys.readouterr().err.startswith("usage: python -m mamllib.data")


# --------------------------------------------------------------------------- a fresh process

SCRIPT = """\
# a student's plain script: no `if __name__ == "__main__":` guard
import sys
from mamllib.data import download_omniglot, load_omniglot

folder = download_omniglot(sys.argv[1], base_url=sys.argv[2], checksums={checksums!r})
data = load_omniglot(folder, image_size=8)
print(tuple(data.images.shape))
print(data.images[0, 0].flatten().tolist())
print(data.images[-1, -1].flatten().tolist())
"""


def pil_reference(archive: Path, first: bool) -> list[int]:
    """The first drawing of the first character, or the last of the last, at 8×8."""
    with zipfile.ZipFile(archive) as zipped:
        names = sorted(n for n in zipped.namelist() if n.endswith(".png"))
        with Image.open(zipped.open(names[0 if first else -1])) as png:
            grey = png.convert("L").resize((8, 8), Image.Resampling.LANCZOS)
    return [255 - value for value in grey.tobytes()]


@pytest.mark.slow
def test_download_then_decode_in_a_plain_script(server, repacked_md5, shared, tmp_path):
    """Downloaded zips load; the decoder runs in a script without a ``__main__`` guard
    (a spawned process pool crashed there) and in a fresh cache, so it really decodes."""
    script = tmp_path / "student.py"
    script.write_text(SCRIPT.format(checksums=repacked_md5))
    folder = tmp_path / "omniglot"
    done = run(str(script), str(folder), server.url, env={"MAMLLIB_CACHE": str(tmp_path / "cache")})
    assert done.returncode == 0, done.stderr
    shape, first, last = done.stdout.strip().splitlines()[-3:]
    assert shape == "(1623, 20, 8, 8)"
    assert ast.literal_eval(first) == pil_reference(shared / "images_background.zip", first=True)
    assert ast.literal_eval(last) == pil_reference(shared / "images_evaluation.zip", first=False)
    assert (tmp_path / "cache" / "omniglot_8.pt").is_file()
