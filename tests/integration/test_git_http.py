"""The git write side against a token-authenticated smart-HTTP remote (``git http-backend``).

The token travels only as an ``Authorization`` header: never in a URL, a log line, an error,
a ``repr`` or the cache on disk.
"""

from __future__ import annotations

import logging
import os
import socket
import subprocess
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from automator.errors import GitAuthError, PushRejected
from automator.git import Credentials, Git
from automator.git.signing import Identity
from automator.git.workspace import Repository
from tests.servers.git_http import GIT_ENV, GitHttpServer, git_http_server, read_file, write_commit

TOKEN = "ghp_http5ecretT0kenValue"
BOT = Identity("Image Bot", "bot@example.com")


@pytest.fixture
def server(tmp_path: Path) -> Iterator[GitHttpServer]:
    with git_http_server(tmp_path / "srv", token=TOKEN, lifetime=120) as srv:
        yield srv


@pytest.fixture
def remote(server: GitHttpServer) -> Path:
    bare = server.create_repo("org/config.git")
    write_commit(bare, {"apps/web.yaml": "image: web:1.0\n", "apps/db.yaml": "image: db:1.0\n"}, "initial")
    return bare


def authed(token: str = TOKEN) -> Git:
    return Git(Credentials(token=token), extra_env=GIT_ENV)


def web(version: str) -> Callable[[Path], bool]:
    def apply(root: Path) -> bool:
        (root / "apps/web.yaml").write_text(f"image: web:{version}\n")
        return True

    return apply


def everything_printed(caplog: pytest.LogCaptureFixture, *extra: object) -> str:
    return "\n".join([*(r.getMessage() for r in caplog.records), *map(str, extra), *map(repr, extra)])


def test_clone_commit_push_over_http_with_the_token_only_in_a_header(
    server: GitHttpServer, remote: Path, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG, logger="automator")
    git = authed()
    with Repository(git, server.url("org/config.git"), tmp_path / "cache", author=BOT) as repo:
        assert repo.synced == "cloned"
        assert repo.partial
        direct = repo.commit_direct(web("1.1"), "web 1.1")
        branch = repo.commit_branch("automator/db", lambda root: (root / "apps/db.yaml").write_text("db 2\n"), "db")
        shown = everything_printed(caplog, repo, git.credentials, direct, branch)
    assert read_file(remote, "main", "apps/web.yaml") == "image: web:1.1\n"
    assert read_file(remote, "automator/db", "apps/db.yaml") == "db 2\n"

    assert TOKEN not in shown
    assert server.url("org/config.git") in shown  # the URL is printed, the token is not
    on_disk = b"".join(p.read_bytes() for p in (tmp_path / "cache").rglob("*") if p.is_file())
    assert TOKEN.encode() not in on_disk
    assert all(TOKEN not in r.path + r.query for r in server.requests)
    assert {r.status for r in server.requests} == {200}
    assert all(r.user == "x-access-token" for r in server.requests)
    assert any(r.path.endswith("git-receive-pack") for r in server.requests)


def test_a_wrong_token_is_a_clear_auth_error_without_the_token(
    server: GitHttpServer, remote: Path, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG, logger="automator")
    wrong = "ghp_wrongT0kenValue9876"
    repo = Repository(authed(wrong), server.url("org/config.git"), tmp_path / "cache")
    with pytest.raises(GitAuthError) as info:
        repo.__enter__()
    message = str(info.value)
    assert "refused our credentials" in message
    assert "check that the token" in message
    assert server.url("org/config.git") in message
    assert wrong not in everything_printed(caplog, info.value, repo)
    assert [r.status for r in server.requests] == [401]
    assert not list((tmp_path / "cache").glob("*.git"))  # no half-made cache left behind


def test_no_token_at_all_is_the_same_clear_error(server: GitHttpServer, remote: Path, tmp_path: Path) -> None:
    with pytest.raises(GitAuthError, match="refused our credentials"):
        Repository(Git(extra_env=GIT_ENV), server.url("org/config.git"), tmp_path / "cache").__enter__()


def test_a_token_that_stops_working_fails_the_push_with_an_auth_error(
    server: GitHttpServer, remote: Path, tmp_path: Path
) -> None:
    with Repository(authed(), server.url("org/config.git"), tmp_path / "cache", author=BOT) as repo:
        server.token = "rotated-on-the-server"
        with pytest.raises(GitAuthError) as info:
            repo.commit_branch("automator/web", web("1.1"), "web 1.1")
    assert TOKEN not in str(info.value)
    assert not isinstance(info.value, PushRejected)
    assert (
        "automator/web"
        not in subprocess.run(
            ["git", "--git-dir", str(remote), "branch", "--list"], capture_output=True, text=True, check=True
        ).stdout
    )


def test_the_second_run_fetches_instead_of_cloning(server: GitHttpServer, remote: Path, tmp_path: Path) -> None:
    cache = tmp_path / "cache"
    with Repository(authed(), server.url("org/config.git"), cache) as repo:
        assert repo.synced == "cloned"
    clone_requests = len(server.requests)
    new_tip = write_commit(remote, {"apps/web.yaml": "image: web:3\n"}, "moved")
    with Repository(authed(), server.url("org/config.git"), cache) as again:
        assert again.synced == "fetched"
        assert again.tip("main") == new_tip
    fetch = server.requests[clone_requests:]
    assert [(r.method, r.path.rsplit("/", 1)[-1]) for r in fetch][:1] == [("GET", "refs")]
    assert len(fetch) <= 3  # ref advertisement + one or two negotiation rounds, not a new clone


def test_a_server_without_filter_support_gets_a_full_clone(server: GitHttpServer, tmp_path: Path) -> None:
    bare = server.create_repo("org/plain.git", allow_filter=False)
    write_commit(bare, {"a.yaml": "a: 1\n"}, "initial")
    with Repository(authed(), server.url("org/plain.git"), tmp_path / "cache", author=BOT) as repo:
        assert not repo.partial
        missing = subprocess.run(
            ["git", "rev-list", "--objects", "--missing=print", "--all"],
            cwd=repo.path,
            capture_output=True,
            text=True,
            check=True,
        ).stdout
        assert "?" not in missing
        result = repo.commit_direct(lambda root: (root / "a.yaml").write_text("a: 2\n"), "a 2")
    assert result.sha is not None
    assert read_file(bare, "main", "a.yaml") == "a: 2\n"


def test_large_pushes_and_many_refs_go_through_chunked_and_gzip_bodies(
    server: GitHttpServer, remote: Path, tmp_path: Path
) -> None:
    for i in range(60):  # enough "want" lines that git gzips the negotiation request
        write_commit(remote, {f"f{i}": f"{i}\n"}, f"c{i}", branch=f"automator/b{i:02d}")
    noise = os.urandom(3 * 1024 * 1024).hex()  # incompressible: the pack is larger than http.postBuffer

    with Repository(authed(), server.url("org/config.git"), tmp_path / "cache", author=BOT) as repo:
        assert len(repo.branches()) == 60
        update = repo.commit_branch("automator/big", lambda root: (root / "big.txt").write_text(noise), "big")
    assert update.status == "pushed"
    assert read_file(remote, "automator/big", "big.txt") == noise
    assert any(r.chunked and r.path.endswith("git-receive-pack") for r in server.requests)
    assert any(r.content_encoding == "gzip" for r in server.requests)
    assert {r.status for r in server.requests} == {200}


def test_the_server_stops_by_itself(tmp_path: Path) -> None:
    with git_http_server(tmp_path / "srv", lifetime=0.2) as srv:
        assert srv.stopped.wait(10)
        with pytest.raises(OSError):
            socket.create_connection(("127.0.0.1", srv.port), timeout=5).close()
