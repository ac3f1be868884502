"""Many branches at once (:meth:`Repository.commit_branches`) against real bare repositories.

One push for N branches, a lease rejected on one branch failing that branch only, unchanged
branches not pushed, commits identical to the per-branch worktree path (bytes, tree, author,
message cleanup), signatures, and a number of git processes that does not grow with N.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from automator.errors import ConfigError, GitError
from automator.git import Git, verify_commit
from automator.git.signing import Identity, Signing
from automator.git.workspace import BranchChange, BranchUpdate, Repository, TreeFile
from tests.servers.git_http import GIT_ENV, count_pushes, read_file, write_commit

BOT = Identity("Image Bot", "bot@example.com")
N = 6


def git_cmd(*args: str, cwd: Path | None = None) -> str:
    proc = subprocess.run(
        ["git", *args], cwd=cwd, env={**os.environ, **GIT_ENV}, capture_output=True, text=True, check=False
    )
    assert proc.returncode == 0, f"git {' '.join(args)}: {proc.stderr}"
    return proc.stdout.strip()


@pytest.fixture
def git() -> Git:
    return Git(extra_env=GIT_ENV)


@pytest.fixture
def remote(tmp_path: Path) -> Path:
    bare = tmp_path / "remote.git"
    git_cmd("init", "-q", "--bare", "-b", "main", str(bare))
    git_cmd("config", "uploadpack.allowFilter", "true", cwd=bare)
    files: dict[str, str | None] = {f"apps/app-{i}.yaml": f"image: app-{i}:1.0\n" for i in range(N)}
    files["apps/crlf.yaml"] = "a: 1\r\nimage: crlf:1.0\r\n"
    write_commit(bare, files, "initial")
    return bare


@pytest.fixture
def cache(tmp_path: Path) -> Path:
    return tmp_path / "cache"


def url(bare: Path) -> str:
    return f"file://{bare}"


def change(repo: Repository, i: int, version: str, message: str = "") -> BranchChange:
    """Branch ``automator/app-<i>`` bumping app-<i> to ``version``, read from the base tip's blob."""
    path = f"apps/app-{i}.yaml"
    blob = repo.read_files(repo.tip("main") or "", [path]).files[path]
    data = blob.data.replace(b":1.0", f":{version}".encode())
    return BranchChange(f"automator/app-{i}", (TreeFile(path, blob.mode, data),), message or f"Update app-{i}")


def statuses(results: dict[str, BranchUpdate | Exception]) -> dict[str, str]:
    return {b: r.status if isinstance(r, BranchUpdate) else type(r).__name__ for b, r in results.items()}


def test_every_branch_goes_out_in_one_push(git: Git, remote: Path, cache: Path) -> None:
    pushes = count_pushes(remote)
    with Repository(git, url(remote), cache, author=BOT) as repo:
        results = repo.commit_branches(repo.tip("main") or "", [change(repo, i, "1.1") for i in range(N)])
    assert set(statuses(results).values()) == {"pushed"}
    assert pushes() == 1
    for i in range(N):
        branch = f"automator/app-{i}"
        assert read_file(remote, branch, f"apps/app-{i}.yaml") == f"image: app-{i}:1.1\n"
        assert git_cmd("--git-dir", str(remote), "log", "-1", "--format=%an <%ae>|%cn <%ce>|%s", branch) == (
            f"{BOT}|{BOT}|Update app-{i}"
        )
        assert git_cmd("--git-dir", str(remote), "rev-parse", f"{branch}^") == git_cmd(
            "--git-dir", str(remote), "rev-parse", "main"
        )
    # the cache knows where the branches are now, and no scratch ref is left behind
    with Repository(git, url(remote), cache, author=BOT) as repo:
        assert set(repo.branches()) == {f"automator/app-{i}" for i in range(N)}
        assert "refs/automator" not in git_cmd("for-each-ref", cwd=repo.path)


def test_unchanged_branches_are_not_pushed_and_no_change_is_told(git: Git, remote: Path, cache: Path) -> None:
    pushes = count_pushes(remote)
    with Repository(git, url(remote), cache, author=BOT) as repo:
        base = repo.tip("main") or ""
        repo.commit_branches(base, [change(repo, i, "1.1") for i in range(3)])
        tips = repo.branches()
        same = [change(repo, i, "1.1") for i in range(3)]
        noop = change(repo, 4, "1.0")  # rewrites the file to what it holds: nothing to propose
        results = repo.commit_branches(base, [*same, noop, BranchChange("automator/app-5", (), "Update app-5")])
    assert statuses(results) == {
        "automator/app-0": "unchanged",
        "automator/app-1": "unchanged",
        "automator/app-2": "unchanged",
        "automator/app-4": "no-change",
        "automator/app-5": "no-change",
    }
    assert {b: r.sha for b, r in results.items() if isinstance(r, BranchUpdate) and r.sha} == tips
    assert pushes() == 1


def test_a_lease_rejected_on_one_branch_fails_that_branch_only(git: Git, remote: Path, cache: Path) -> None:
    with Repository(git, url(remote), cache, author=BOT) as repo:
        base = repo.tip("main") or ""
        repo.commit_branches(base, [change(repo, i, "1.1") for i in range(3)])
        # someone pushes a fix-up to one of our branches after we listed them
        theirs = write_commit(remote, {"apps/app-1.yaml": "image: app-1:1.1 # pinned\n"}, branch="automator/app-1")
        pushes = count_pushes(remote)
        results = repo.commit_branches(base, [change(repo, i, "1.2") for i in range(3)])
    assert statuses(results) == {
        "automator/app-0": "pushed",
        "automator/app-1": "PushRejected",
        "automator/app-2": "pushed",
    }
    assert "moved since we fetched it" in str(results["automator/app-1"])
    assert pushes() == 1
    assert git_cmd("--git-dir", str(remote), "rev-parse", "automator/app-1") == theirs
    assert read_file(remote, "automator/app-0", "apps/app-0.yaml") == "image: app-0:1.2\n"
    assert read_file(remote, "automator/app-2", "apps/app-2.yaml") == "image: app-2:1.2\n"


def test_a_branch_that_is_not_ours_fails_alone(git: Git, remote: Path, cache: Path) -> None:
    with Repository(git, url(remote), cache, author=BOT) as repo:
        ours = change(repo, 0, "1.1")
        results = repo.commit_branches(
            repo.tip("main") or "",
            [ours, BranchChange("main", ours.files, "x"), BranchChange("automator/empty", ours.files, "  \n")],
        )
    assert isinstance(results["main"], GitError)
    assert isinstance(results["automator/empty"], ConfigError)
    assert statuses(results)["automator/app-0"] == "pushed"


MESSAGES = [
    "Update app\n\n\n\nbody   \n# not a comment to strip\n\n",
    "\n\n  leading blanks\r\n\ttabs\t\nno final newline",
    "Ünïcødé — 更新\n",
]


@pytest.mark.parametrize("message", MESSAGES)
def test_the_commit_is_the_one_a_worktree_commit_makes(git: Git, remote: Path, cache: Path, message: str) -> None:
    new = b"a: 1\r\nimage: crlf:1.1\r\n"

    def apply(root: Path) -> bool:
        (root / "apps/crlf.yaml").write_bytes(new)
        return True

    with Repository(git, url(remote), cache, author=BOT) as repo:
        base = repo.tip("main") or ""
        slow = repo.commit_branch("automator/slow", apply, message)
        blob = repo.read_files(base, ["apps/crlf.yaml"]).files["apps/crlf.yaml"]
        assert blob.data == b"a: 1\r\nimage: crlf:1.0\r\n"  # bytes as stored, CRLF kept
        fast = repo.commit_branches(
            base, [BranchChange("automator/fast", (TreeFile(blob.path, blob.mode, new),), message)]
        )
    fast_sha = fast["automator/fast"]
    assert isinstance(fast_sha, BranchUpdate) and fast_sha.sha is not None and slow.sha is not None

    def raw(sha: str, what: str) -> str:
        return git_cmd("--git-dir", str(remote), "show", "-s", f"--format={what}", sha)

    for what in ("%T", "%P", "%an <%ae>", "%cn <%ce>", "%B"):
        assert raw(fast_sha.sha, what) == raw(slow.sha, what), what


def test_an_executable_file_keeps_its_mode(git: Git, remote: Path, cache: Path) -> None:
    git_cmd("--git-dir", str(remote), "config", "core.fileMode", "true")
    with Repository(git, url(remote), cache, author=BOT) as repo:
        base = repo.tip("main") or ""
        blob = repo.read_files(base, ["apps/app-0.yaml"]).files["apps/app-0.yaml"]
        repo.commit_branches(base, [BranchChange("automator/x", (TreeFile(blob.path, "100755", b"x\n"),), "m")])
    assert git_cmd("--git-dir", str(remote), "ls-tree", "automator/x", "apps/app-0.yaml").startswith("100755 ")


def test_read_files_leaves_symlinks_out_and_tells_of_gitattributes(git: Git, remote: Path, cache: Path) -> None:
    env = {**os.environ, **GIT_ENV, "GIT_DIR": str(remote)}
    link = subprocess.run(
        ["git", "hash-object", "-w", "--stdin"], input="app-0.yaml", env=env, capture_output=True, text=True, check=True
    ).stdout.strip()
    tree = git_cmd("--git-dir", str(remote), "rev-parse", "main^{tree}")
    index = remote / "scratch-index"
    subprocess.run(["git", "read-tree", tree], env={**env, "GIT_INDEX_FILE": str(index)}, check=True)
    subprocess.run(
        ["git", "update-index", "--add", "--cacheinfo", f"120000,{link},apps/link.yaml"],
        env={**env, "GIT_INDEX_FILE": str(index)},
        check=True,
    )
    new_tree = subprocess.run(
        ["git", "write-tree"], env={**env, "GIT_INDEX_FILE": str(index)}, capture_output=True, text=True, check=True
    ).stdout.strip()
    main = git_cmd("--git-dir", str(remote), "rev-parse", "main")
    commit = subprocess.run(
        ["git", "commit-tree", new_tree, "-p", main, "-m", "link"],
        env={
            **env,
            "GIT_AUTHOR_NAME": "a",
            "GIT_AUTHOR_EMAIL": "a@a",
            "GIT_COMMITTER_NAME": "a",
            "GIT_COMMITTER_EMAIL": "a@a",
        },
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()
    git_cmd("--git-dir", str(remote), "update-ref", "refs/heads/main", commit)
    with Repository(git, url(remote), cache, author=BOT) as repo:
        read = repo.read_files(repo.tip("main") or "", ["apps/link.yaml", "apps/app-0.yaml", "apps/absent.yaml"])
        assert set(read.files) == {"apps/app-0.yaml"}
        assert not read.attributes
    write_commit(remote, {"apps/.gitattributes": "*.yaml text eol=crlf\n"})
    with Repository(git, url(remote), cache, author=BOT) as repo:
        assert repo.read_files(repo.tip("main") or "", ["apps/app-0.yaml"]).attributes


def test_git_processes_do_not_grow_with_the_number_of_branches(remote: Path, tmp_path: Path) -> None:
    def processes(n: int) -> int:
        git = Git(extra_env=GIT_ENV)
        with Repository(git, url(remote), tmp_path / f"cache-{n}", author=BOT) as repo:
            base = repo.tip("main") or ""
            read = repo.read_files(base, [f"apps/app-{i}.yaml" for i in range(n)])
            changes = [
                BranchChange(f"automator/n{n}-{i}", (TreeFile(f.path, f.mode, f.data + b"# bumped\n"),), f"Update {i}")
                for i, f in enumerate(read.files.values())
            ]
            before = git.processes
            results = repo.commit_branches(base, changes)
            assert set(statuses(results).values()) == {"pushed"}
            return git.processes - before

    assert processes(2) == processes(N) <= 8


@pytest.fixture
def ssh_key(tmp_path: Path) -> tuple[Path, Path]:
    key = tmp_path / "keys" / "id_ed25519"
    key.parent.mkdir()
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", "bot", "-f", str(key)], check=True)
    allowed = tmp_path / "keys" / "allowed_signers"
    allowed.write_text(f"{BOT.email} {key.with_suffix('.pub').read_text()}")
    return key, allowed


def test_ssh_signed_batch_commits_verify(git: Git, remote: Path, cache: Path, ssh_key: tuple[Path, Path]) -> None:
    key, allowed = ssh_key
    pushes = count_pushes(remote)
    with Repository(git, url(remote), cache, author=BOT, signing=Signing.ssh(key)) as repo:
        results = repo.commit_branches(repo.tip("main") or "", [change(repo, i, "1.1") for i in range(3)])
    assert pushes() == 1
    for result in results.values():
        assert isinstance(result, BranchUpdate) and result.sha is not None
        assert "Good" in verify_commit(git, remote, result.sha, allowed_signers=allowed)
        assert read_file(remote, result.sha, "apps/app-0.yaml") is not None


@pytest.fixture
def gnupg(tmp_path: Path) -> Iterator[tuple[Path, str, Path]]:
    if shutil.which("gpg") is None:
        pytest.skip("gpg is not installed (scripts/bootstrap.sh installs gnupg)")
    home = tmp_path / "gnupg"
    home.mkdir(mode=0o700)
    env = {**os.environ, "GNUPGHOME": str(home)}

    def gpg(*args: str) -> str:
        return subprocess.run(["gpg", "--batch", *args], env=env, capture_output=True, text=True, check=True).stdout

    gpg("--passphrase", "", "--quick-generate-key", f"{BOT} ", "ed25519", "sign", "never")
    fingerprint = next(
        line.split(":")[9] for line in gpg("--with-colons", "--list-secret-keys").splitlines() if line.startswith("fpr")
    )
    public = tmp_path / "bot.asc"
    public.write_text(gpg("--armor", "--export", fingerprint))
    try:
        yield home, fingerprint, public
    finally:
        subprocess.run(["gpgconf", "--kill", "gpg-agent"], env=env, capture_output=True, check=False)


def test_gpg_signed_batch_commits_verify(git: Git, remote: Path, cache: Path, gnupg: tuple[Path, str, Path]) -> None:
    home, fingerprint, public = gnupg
    signing = Signing.gpg(fingerprint, gnupg_home=home)
    with Repository(git, url(remote), cache, author=BOT, signing=signing) as repo:
        results = repo.commit_branches(repo.tip("main") or "", [change(repo, i, "1.1") for i in range(2)])
    for result in results.values():
        assert isinstance(result, BranchUpdate) and result.sha is not None
        assert fingerprint[-16:] in verify_commit(git, remote, result.sha, gpg_keys=[public])


def test_a_signing_failure_fails_the_branches_and_pushes_nothing(git: Git, remote: Path, cache: Path) -> None:
    pushes = count_pushes(remote)
    signing = Signing.gpg("0000000000000000DEADBEEF", program="false")
    with Repository(git, url(remote), cache, author=BOT, signing=signing) as repo:
        results = repo.commit_branches(repo.tip("main") or "", [change(repo, 0, "1.1")])
        assert repo.branches() == {}
    assert "check the signing key" in str(results["automator/app-0"])
    assert pushes() == 0


def test_odd_paths_are_written_where_they_belong(git: Git, remote: Path, cache: Path) -> None:
    odd = ["apps/with space.yaml", 'apps/"quoted".yaml', "apps/back\\slash.yaml", "apps/ünï.yaml"]
    write_commit(remote, dict.fromkeys(odd, "image: x:1.0\n"), "odd names")
    with Repository(git, url(remote), cache, author=BOT) as repo:
        base = repo.tip("main") or ""
        read = repo.read_files(base, odd)
        assert set(read.files) == set(odd)
        files = tuple(TreeFile(f.path, f.mode, f.data.replace(b"1.0", b"1.1")) for f in read.files.values())
        results = repo.commit_branches(base, [BranchChange("automator/odd", files, "odd")])
    assert statuses(results) == {"automator/odd": "pushed"}
    for path in odd:
        assert read_file(remote, "automator/odd", path) == "image: x:1.1\n", path
    changed = git_cmd("--git-dir", str(remote), "diff", "--name-only", "-z", "main", "automator/odd")
    assert sorted(changed.strip("\0").split("\0")) == sorted(odd)


def test_authors_of_many_branches_in_one_go_match_one_by_one(git: Git, remote: Path, cache: Path) -> None:
    with Repository(git, url(remote), cache, author=BOT) as repo:
        repo.commit_branches(repo.tip("main") or "", [change(repo, i, "1.1") for i in range(3)])
    write_commit(remote, {"x": "1\n"}, "fix-up", branch="automator/app-1", author="Dev <dev@example.com>")
    write_commit(remote, {"y": "1\n"}, "shared", branch="automator/app-9", start="automator/app-1")
    write_commit(remote, {"z": "1\n"}, "on main", author="Main <main@example.com>")
    with Repository(git, url(remote), cache, author=BOT) as repo:
        names = ["automator/app-0", "automator/app-1", "automator/app-2", "automator/app-9", "automator/absent"]
        many = repo.authors_since(names, "main")
        assert many == {b: repo.authors(b, since="main") for b in names}
        assert many["automator/app-9"] == {BOT.email, "dev@example.com", "else@example.com"}
        assert many["automator/app-0"] == {BOT.email}
        assert many["automator/absent"] == set()
        assert repo.authors_since(names, "no-such-base") == {name: set() for name in names}
