"""A private redis-server for tests and benchmarks: its own port, its own data, no disk.

Never the machine's shared Redis: :class:`RedisServer` starts ``redis-server`` on a free
loopback port with persistence off, and can stop and restart it for fault tests.
"""

from __future__ import annotations

import shutil
import socket
import subprocess
import tempfile
import time
from datetime import datetime
from pathlib import Path
from typing import Any

import redis

_START_TIMEOUT_SECONDS = 10.0


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def redis_server_binary() -> str | None:
    found = shutil.which("redis-server")
    if found:
        return found
    fallback = Path("/usr/bin/redis-server")
    return str(fallback) if fallback.exists() else None


class RedisServer:
    """A private redis-server process on a fixed port, restartable for fault tests."""

    def __init__(self, binary: str, port: int, directory: Path) -> None:
        self.binary = binary
        self.port = port
        self.directory = directory
        self.url = f"redis://127.0.0.1:{port}/0"
        self._process: subprocess.Popen[bytes] | None = None

    @property
    def running(self) -> bool:
        return self._process is not None and self._process.poll() is None

    def start(self) -> None:
        if self.running:
            return
        log_file = self.directory / "redis-server.log"
        self._process = subprocess.Popen(
            [self.binary, "--port", str(self.port), "--bind", "127.0.0.1",
             "--save", "", "--appendonly", "no", "--dir", str(self.directory),
             "--daemonize", "no", "--logfile", str(log_file)],
            stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        deadline = time.monotonic() + _START_TIMEOUT_SECONDS
        last_error: Exception | None = None
        while time.monotonic() < deadline:
            if self._process.poll() is not None:
                break
            client = redis.Redis(host="127.0.0.1", port=self.port, socket_timeout=0.5,
                                 socket_connect_timeout=0.5)
            try:
                if client.ping():
                    return
            except redis.RedisError as exc:
                last_error = exc
            finally:
                client.close()
            time.sleep(0.05)
        log = log_file.read_text(errors="replace")[-2000:] if log_file.exists() else ""
        self.stop()
        raise RuntimeError(f"redis-server on port {self.port} did not answer PING within "
                           f"{_START_TIMEOUT_SECONDS}s (last error: {last_error}); log:\n{log}")

    def stop(self) -> None:
        process, self._process = self._process, None
        if process is None or process.poll() is not None:
            return
        stop_process(process)

    def flushall(self) -> None:
        client = redis.Redis(host="127.0.0.1", port=self.port, socket_timeout=2)
        try:
            client.flushall()
        finally:
            client.close()


def stop_process(process: subprocess.Popen[bytes], timeout_seconds: float = 10) -> None:
    """Terminate a child process, and kill it if it does not exit in time."""
    process.terminate()
    try:
        process.wait(timeout=timeout_seconds)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait(timeout=timeout_seconds)


def stored_json(state: dict[str, Any]) -> bytes:
    """The JSON a loaded state was stored as: its revision lives in the header, not there."""
    from memory_core.state import dump_json

    return dump_json({k: v for k, v in state.items() if k != "state_revision"})


def seed_buyers(memory: Any, count: int, *, seed: int = 1, now: datetime | None = None,
                **options: Any) -> list[Any]:
    """Generate ``count`` QA buyers deterministically and save them; returns the buyers."""
    from memory_core.seeding import SeedOptions, generate_buyers

    buyers = list(generate_buyers(SeedOptions(count=count, seed=seed, **options), now=now))
    written = memory.save_many([buyer.as_save_item() for buyer in buyers])
    if written != count:
        raise RuntimeError(f"seeded {written} of {count} buyers")
    return buyers


def start_private_server(directory: Path | None = None) -> RedisServer:
    """Start a private redis-server on a free port; raises RuntimeError if it cannot."""
    binary = redis_server_binary()
    if binary is None:
        raise RuntimeError("redis-server is not installed (apt-get install redis-server)")
    server = RedisServer(binary, free_port(),
                         directory or Path(tempfile.mkdtemp(prefix="memory-core-redis-")))
    server.start()
    return server
