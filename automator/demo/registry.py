"""Run Debian's ``docker-registry`` (distribution 2.8) on loopback for the embedded demo."""

from __future__ import annotations

import http.client
import shutil
import socket
import subprocess
import time
from pathlib import Path
from types import TracebackType

from automator.errors import ConfigError

_CONFIG = """\
version: 0.1
log:
  level: error
  accesslog:
    disabled: true
storage:
  filesystem:
    rootdirectory: {root}
  delete:
    enabled: true
http:
  addr: 127.0.0.1:{port}
"""


def free_port() -> int:
    """A TCP port on 127.0.0.1 that was free a moment ago."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


class LocalRegistry:
    """A docker-registry process serving ``storage`` on 127.0.0.1; a context manager."""

    def __init__(self, storage: Path, workdir: Path) -> None:
        self.storage, self.workdir = storage, workdir
        self.port = 0
        self._proc: subprocess.Popen[bytes] | None = None

    @property
    def host(self) -> str:
        return f"127.0.0.1:{self.port}"

    def __enter__(self) -> LocalRegistry:
        binary = shutil.which("docker-registry")
        if binary is None:
            raise ConfigError(
                "the demo needs Debian's docker-registry package: run `make demo` (it installs it) "
                "or `apt-get install docker-registry`"
            )
        self.port = free_port()
        config = self.workdir / "registry.yml"
        config.write_text(_CONFIG.format(root=self.storage, port=self.port))
        log = (self.workdir / "registry.log").open("wb")
        self._proc = subprocess.Popen([binary, "serve", str(config)], stdout=log, stderr=subprocess.STDOUT)
        self._wait_ready(deadline=time.monotonic() + 20)
        return self

    def _wait_ready(self, deadline: float) -> None:
        while time.monotonic() < deadline:
            if self._proc is not None and self._proc.poll() is not None:
                raise ConfigError(f"docker-registry exited early; see {self.workdir / 'registry.log'}")
            try:
                conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=1)
                conn.request("GET", "/v2/")
                if conn.getresponse().status == 200:
                    return
            except OSError:
                pass
            time.sleep(0.05)
        raise ConfigError(f"docker-registry did not become ready; see {self.workdir / 'registry.log'}")

    def __exit__(self, et: type[BaseException] | None, ev: BaseException | None, tb: TracebackType | None) -> None:
        if self._proc is not None:
            self._proc.terminate()
            try:
                self._proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self._proc.kill()
                self._proc.wait()
