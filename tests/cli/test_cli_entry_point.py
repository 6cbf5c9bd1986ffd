"""The installed ``modelward`` script, run as a real process: piped and on a terminal."""

from __future__ import annotations

import os
import pty
import select
import subprocess
import sys
import time
from pathlib import Path

import pytest

SCRIPT = Path(sys.executable).parent / "modelward"
pytestmark = pytest.mark.skipif(not SCRIPT.exists(), reason="modelward is not installed")


def _env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in {"NO_COLOR", "FORCE_COLOR"}}
    env.update(TERM="xterm-256color", COLUMNS="100", **extra)
    return env


@pytest.fixture
def many_files(tmp_path: Path) -> Path:
    folder = tmp_path / "many"
    folder.mkdir()
    for i in range(30):  # above the progress bar's threshold of 20 files
        (folder / f"blob{i:02}.xyz").write_bytes(b"\x00unknown %d" % i)
    return folder


def test_piped_output_has_no_progress_and_no_ansi(many_files: Path, tmp_path: Path) -> None:
    done = subprocess.run([str(SCRIPT), "scan", str(many_files), "--fail-on", "info"],
                          capture_output=True, env=_env(), cwd=tmp_path, timeout=120, check=False)
    assert done.returncode == 1
    assert b"\x1b" not in done.stdout and b"\x1b" not in done.stderr
    assert done.stderr == b""
    assert done.stdout.decode().rstrip("\n").splitlines()[-1].startswith("30 files, 0 critical")


def test_python_dash_m(tmp_path: Path) -> None:
    done = subprocess.run([sys.executable, "-m", "modelward", "--version"], capture_output=True,
                          env=_env(), cwd=tmp_path, timeout=60, check=False)
    assert done.returncode == 0 and done.stdout.startswith(b"modelward ")


def _run_with_terminal_stderr(args: list[str], cwd: Path) -> tuple[int, bytes, bytes]:
    """Run with stderr on a pseudo-terminal and stdout on a pipe; return code, out, err."""
    master, slave = pty.openpty()
    proc = subprocess.Popen(args, stdout=subprocess.PIPE, stderr=slave, stdin=subprocess.DEVNULL,
                            env=_env(), cwd=cwd)
    os.close(slave)
    chunks: list[bytes] = []
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        ready, _, _ = select.select([master], [], [], 0.1)
        if ready:
            try:
                data = os.read(master, 65536)
            except OSError:  # EIO: the child closed the terminal
                break
            if not data:
                break
            chunks.append(data)
        elif proc.poll() is not None:
            break
    assert proc.stdout is not None
    out = proc.stdout.read()
    code = proc.wait(timeout=30)
    os.close(master)
    return code, out, b"".join(chunks)


def test_progress_bar_on_a_terminal_only(many_files: Path, tmp_path: Path) -> None:
    code, out, err = _run_with_terminal_stderr([str(SCRIPT), "scan", str(many_files)], tmp_path)
    assert code == 0
    assert b"scanning" in err and b"/30 files" in err  # the bar went to the terminal
    assert b"\x1b" not in out and b"scanning" not in out  # stdout (a pipe) stayed clean
    assert out.decode().rstrip("\n").splitlines()[-1].startswith("30 files, 0 critical")
    code, _, err = _run_with_terminal_stderr(
        [str(SCRIPT), "scan", str(many_files), "--no-progress"], tmp_path)
    assert code == 0 and b"scanning" not in err


def test_small_scan_gets_no_bar(tmp_path: Path) -> None:
    (tmp_path / "one.xyz").write_bytes(b"\x00z")
    code, _, err = _run_with_terminal_stderr([str(SCRIPT), "scan", str(tmp_path / "one.xyz")],
                                             tmp_path)
    assert code == 0 and b"scanning" not in err
