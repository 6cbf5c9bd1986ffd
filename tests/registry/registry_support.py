"""Helpers shared by the registry tests: a live server in a thread, small model folders."""

from __future__ import annotations

import socket
import threading
import time
from pathlib import Path

import numpy as np
import uvicorn

from modelward.registry.app import create_app
from modelward.registry.service import Registry


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class Live:
    """A registry served by uvicorn on loopback in this process."""

    def __init__(self, registry: Registry) -> None:
        self.registry = registry
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        config = uvicorn.Config(create_app(registry), host="127.0.0.1", port=self.port,
                                log_level="warning")
        self.server = uvicorn.Server(config)
        self.thread = threading.Thread(target=self.server.run, daemon=True)
        self.thread.start()
        deadline = time.monotonic() + 20
        while not self.server.started:
            if time.monotonic() > deadline:
                raise RuntimeError("server did not start")
            time.sleep(0.02)

    def stop(self) -> None:
        self.server.should_exit = True
        self.thread.join(10)


def clean_model(root: Path, seed: int = 0) -> Path:
    """A small benign model folder: config and a numeric NumPy array."""
    root.mkdir(parents=True)
    (root / "config.json").write_text('{"model_type": "bert", "hidden_size": 8}')
    np.save(root / "weights.npy", np.arange(16, dtype=np.float32) + seed)
    (root / "sub").mkdir()
    (root / "sub" / "vocab.txt").write_text("a\nb\nc\n")
    return root


def malicious_model(root: Path, command: str) -> Path:
    """A model folder with a pickle that would run `command` (never loaded)."""
    root.mkdir(parents=True)
    (root / "config.json").write_text('{"model_type": "bert"}')
    payload = b"cos\nsystem\n(S'" + command.encode() + b"'\ntR."
    (root / "model.pkl").write_bytes(payload)
    return root
