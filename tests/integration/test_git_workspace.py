"""The automator's git write side against real bare repositories on disk.

Clone cache reuse, worktree isolation, author and signatures, leases on our branches, the base
branch never forced, direct mode under a concurrent push, and a rerun that pushes nothing.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from automator.errors import ConfigError, CredentialError, GitError, PushRejected, VerificationError
from automator.git import Git, verify_commit
from automator.git.signing import Identity, Signing
from automator.git.workspace import Repository
from tests.servers.git_http import GIT_ENV, read_file, write_commit

BOT = Identity("Image Bot", "bot@example.com")


def git_cmd(*args: str, cwd: Path | None = None, env: dict[str, str] | None = None) -> str:
    proc = subprocess.run(
        ["git", *args],
        cwd=cwd,
        env={**os.environ, **GIT_ENV, **(env or {})},
        capture_output=True,
        text=True,
        check=False,
    )
    assert proc.returncode == 0, f"git {' '.join(args)}: {proc.stderr}"
    return proc.stdout.strip()


@pytest.fixture
def git() -> Git:
    # No ~/.gitconfig, no system config: the code must set everything it relies on itself.
    return Git(extra_env=GIT_ENV)


@pytest.fixture
def remote(tmp_path: Path) -> Path:
    bare = tmp_path / "remote.git"
    git_cmd("init", "-q", "--bare", "-b", "main", str(bare))
    git_cmd("config", "uploadpack.allowFilter", "true", cwd=bare)
    write_commit(bare, {"apps/web.yaml": "image: web:1.0\n", "apps/db.yaml": "image: db:1.0\n"}, "initial")
    return bare


@pytest.fixture
def cache(tmp_path: Path) -> Path:
    return tmp_path / "cache"


def url(bare: Path) -> str:
    return f"file://{bare}"  # file:// so the partial clone is real (a plain path hard-links everything)


def bump(path: str, text: str) -> Callable[[Path], bool]:
    def apply(root: Path) -> bool:
        target = root / path
        if target.read_text() == text:
            return False
        target.write_text(text)
        return True

    return apply


def log(bare: Path, rev: str = "main", fmt: str = "%s") -> list[str]:
    return git_cmd("--git-dir", str(bare), "log", f"--format={fmt}", rev).splitlines()


# -- the clone cache ----------------------------------------------------------------------------


def test_first_use_is_a_partial_clone_and_later_runs_fetch_into_the_same_cache(
    git: Git, remote: Path, cache: Path
) -> None:
    with Repository(git, url(remote), cache) as repo:
        assert repo.synced == "cloned"
        assert repo.partial
        first_tip = repo.tip("main")
        missing = git_cmd("rev-list", "--objects", "--missing=print", "--all", cwd=repo.path)
        assert sum(line.startswith("?") for line in missing.splitlines()) == 2  # blobs not downloaded
        with repo.worktree(first_tip or "") as tree:
            assert (tree.path / "apps/web.yaml").read_text() == "image: web:1.0\n"  # fetched lazily
    sentinel = repo.path / "automator-test-sentinel"
    sentinel.write_text("same cache\n")
    new_tip = write_commit(remote, {"apps/web.yaml": "image: web:1.1\n"}, "someone else")

    with Repository(git, url(remote), cache) as again:
        assert again.synced == "fetched"
        assert again.path == repo.path
        assert sentinel.is_file()  # not re-cloned
        assert again.tip("main") == new_tip
        assert sorted(p.name for p in cache.iterdir()) == sorted(
            [repo.path.name, repo.path.name.replace(".git", ".lock"), repo.path.name.replace(".git", ".worktrees")]
        )


def test_a_full_clone_when_the_server_does_not_serve_filters(git: Git, remote: Path, cache: Path) -> None:
    git_cmd("config", "uploadpack.allowFilter", "false", cwd=remote)
    with Repository(git, url(remote), cache) as repo:
        assert repo.synced == "cloned"
        assert not repo.partial
        missing = git_cmd("rev-list", "--objects", "--missing=print", "--all", cwd=repo.path)
        assert not any(line.startswith("?") for line in missing.splitlines())
        assert git_cmd("config", "--get-regexp", "^remote\\.origin\\.", cwd=repo.path).count("promisor") == 0
    with Repository(git, url(remote), cache) as again:
        assert again.synced == "fetched"


def test_a_broken_cache_is_replaced_by_a_fresh_clone(git: Git, remote: Path, cache: Path) -> None:
    with Repository(git, url(remote), cache) as repo:
        pass
    (repo.path / "HEAD").unlink()
    with Repository(git, url(remote), cache) as again:
        assert again.synced == "cloned"
        assert again.tip("main") == log(remote, fmt="%H")[0]


def test_git_lock_files_left_by_a_killed_run_do_not_block_the_next(git: Git, remote: Path, cache: Path) -> None:
    with Repository(git, url(remote), cache) as repo:
        pass
    (repo.path / "refs/heads/main.lock").write_text("")  # what a killed `git fetch` leaves behind
    (repo.path / "packed-refs.lock").write_text("")
    new_tip = write_commit(remote, {"apps/web.yaml": "image: web:1.1\n"}, "moved")
    with Repository(git, url(remote), cache) as again:
        assert again.synced == "fetched"
        assert again.tip("main") == new_tip


def test_the_cache_lock_keeps_a_second_user_out(git: Git, remote: Path, cache: Path) -> None:
    with Repository(git, url(remote), cache):
        other = Repository(git, url(remote), cache, lock_timeout=0.2)
        with pytest.raises(GitError, match=rf"locked by another automator process \(pid {os.getpid()}\)"):
            other.__enter__()
    with Repository(git, url(remote), cache, lock_timeout=0.2) as repo:  # released on exit
        assert repo.synced == "fetched"


def test_concurrent_processes_on_one_cache_both_succeed(remote: Path, cache: Path, tmp_path: Path) -> None:
    script = tmp_path / "worker.py"
    script.write_text(
        "import sys\n"
        "from pathlib import Path\n"
        "from automator.git import Git\n"
        "from automator.git.signing import Identity\n"
        "from automator.git.workspace import Repository\n"
        "from tests.servers.git_http import GIT_ENV\n"
        "name = sys.argv[1]\n"
        "def apply(root):\n"
        "    (root / f'{name}.yaml').write_text(name)\n"
        "    return True\n"
        "with Repository(Git(extra_env=GIT_ENV), sys.argv[2], Path(sys.argv[3]), author=Identity('b', 'b@x')) as r:\n"
        "    print(r.commit_branch(f'automator/{name}', apply, name).status)\n"
    )
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).parents[2])}
    procs = [
        subprocess.Popen(
            [sys.executable, str(script), name, url(remote), str(cache)], env=env, stdout=subprocess.PIPE, text=True
        )
        for name in ("one", "two", "three")
    ]
    outputs = [p.communicate(timeout=120)[0].strip() for p in procs]
    assert [p.returncode for p in procs] == [0, 0, 0]
    assert outputs == ["pushed", "pushed", "pushed"]
    branches = git_cmd("--git-dir", str(remote), "for-each-ref", "--format=%(refname:short)", "refs/heads/automator")
    assert sorted(branches.splitlines()) == ["automator/one", "automator/three", "automator/two"]


def test_a_url_with_a_token_in_it_is_refused_without_printing_the_token(git: Git, cache: Path) -> None:
    with pytest.raises(CredentialError) as info:
        Repository(git, "https://bot:ghp_TOKENvalue123@example.com/org/repo.git", cache)
    assert "ghp_TOKENvalue123" not in str(info.value)
    assert "https://bot:***@example.com/org/repo.git" in str(info.value)


def test_a_missing_remote_says_what_to_check(git: Git, tmp_path: Path, cache: Path) -> None:
    with pytest.raises(GitError, match="check the git URL"):
        Repository(git, url(tmp_path / "nope.git"), cache).__enter__()


# -- worktrees ----------------------------------------------------------------------------------


def test_worktrees_are_isolated_and_removed(git: Git, remote: Path, cache: Path) -> None:
    old = log(remote, fmt="%H")[0]
    new = write_commit(remote, {"apps/web.yaml": "image: web:2.0\n"}, "two")
    with Repository(git, url(remote), cache) as repo:
        with repo.worktree(old) as a, repo.worktree("main") as b:
            assert a.path != b.path
            assert (a.head, b.head) == (old, new)
            (a.path / "apps/web.yaml").write_text("edited in a\n")
            (a.path / "new.yaml").write_text("only in a\n")
            assert (b.path / "apps/web.yaml").read_text() == "image: web:2.0\n"
            assert not (b.path / "new.yaml").exists()
            listed = git_cmd("worktree", "list", "--porcelain", cwd=repo.path)
            assert str(a.path) in listed
            assert str(b.path) in listed
        assert repo.tip("main") == new  # nothing committed, nothing moved
    assert not a.path.exists()
    assert not b.path.exists()
    assert git_cmd("worktree", "list", "--porcelain", cwd=repo.path).count("worktree ") == 1


def test_a_reused_worktree_holds_exactly_the_new_base(git: Git, remote: Path, cache: Path) -> None:
    old = log(remote, fmt="%H")[0]
    new = write_commit(remote, {".gitignore": "*.tmp\n", "apps/web.yaml": "image: web:2.0\n"}, "two")
    with Repository(git, url(remote), cache) as repo:
        with repo.worktree(new) as first:
            (first.path / "apps/web.yaml").write_text("edited\n")
            (first.path / "apps/db.yaml").unlink()
            (first.path / "untracked.yaml").write_text("new\n")
            (first.path / "scratch.tmp").write_text("ignored\n")
            (first.path / "nested").mkdir()
            (first.path / "nested/f.yaml").write_text("deep\n")
            first.staged_tree()  # staged changes must not survive either
        for base, web in ((old, "image: web:1.0\n"), (new, "image: web:2.0\n")):
            with repo.worktree(base) as again:
                assert again.path == first.path  # reused, not checked out anew
                assert again.head == base
                assert (again.path / "apps/web.yaml").read_text() == web
                assert (again.path / "apps/db.yaml").read_text() == "image: db:1.0\n"
                tracked = git_cmd("ls-files", cwd=again.path).splitlines()
                present = sorted(
                    str(p.relative_to(again.path)) for p in again.path.rglob("*") if p.is_file() and p.name != ".git"
                )
                assert present == sorted(tracked)
                assert not again.changed()
        with pytest.raises(RuntimeError), repo.worktree(new) as broken:
            raise RuntimeError("apply failed")
        assert not broken.path.exists()  # a worktree whose block raised is not reused


def test_a_worktree_left_by_a_crashed_run_is_pruned_on_start(git: Git, remote: Path, cache: Path) -> None:
    with Repository(git, url(remote), cache) as repo:
        git_cmd("worktree", "add", "-q", "--detach", str(repo._worktrees / "crashed"), "main", cwd=repo.path)
    assert "crashed" in git_cmd("worktree", "list", cwd=repo.path)
    with Repository(git, url(remote), cache) as again:
        assert "crashed" not in git_cmd("worktree", "list", cwd=again.path)
        assert not (again._worktrees / "crashed").exists()


# -- commits ------------------------------------------------------------------------------------


def test_commit_as_the_configured_author_with_the_message_kept(git: Git, remote: Path, cache: Path) -> None:
    message = "Update web to 1.1\n\n#42 is fixed by this tag.\n| image | old | new |\n"
    committer = Identity("Automation", "automation@example.com")
    with Repository(git, url(remote), cache) as repo, repo.worktree("main") as tree:
        assert tree.commit(message, author=BOT) is None  # nothing to commit
        bump("apps/web.yaml", "image: web:1.1\n")(tree.path)
        (tree.path / "apps/db.yaml").unlink()
        sha = tree.commit(message, author=BOT, committer=committer)
        assert sha is not None
        assert sha == tree.head
        shown = git_cmd("log", "-1", "--format=%an|%ae|%cn|%ce|%P%n%B", sha, cwd=repo.path)
    base = log(remote, fmt="%H")[0]
    assert shown.splitlines()[0] == f"Image Bot|bot@example.com|Automation|automation@example.com|{base}"
    assert shown.split("\n", 1)[1].rstrip("\n") == message.rstrip("\n")
    files = git_cmd("diff-tree", "--no-commit-id", "--name-status", "-r", sha, cwd=repo.path)
    assert sorted(files.splitlines()) == ["D\tapps/db.yaml", "M\tapps/web.yaml"]


def test_commit_needs_an_author_and_a_message(git: Git, remote: Path, cache: Path) -> None:
    with pytest.raises(ConfigError, match="email is empty"):
        Identity("Bot", " ")
    with pytest.raises(ConfigError, match="newline"):
        Identity("Bot\nEvil", "bot@example.com")
    with Repository(git, url(remote), cache) as repo:
        with pytest.raises(ConfigError, match="no commit author"):
            repo.commit_direct(bump("apps/web.yaml", "x\n"), "msg")
        with pytest.raises(ConfigError, match="commit message is empty"):
            repo.commit_direct(bump("apps/web.yaml", "x\n"), "  \n", author=BOT)
    assert len(log(remote)) == 1


@pytest.fixture
def ssh_key(tmp_path: Path) -> tuple[Path, Path]:
    key = tmp_path / "keys" / "id_ed25519"
    key.parent.mkdir()
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", "bot", "-f", str(key)], check=True)
    allowed = tmp_path / "keys" / "allowed_signers"
    allowed.write_text(f"{BOT.email} {key.with_suffix('.pub').read_text()}")
    return key, allowed


def test_ssh_signed_commit_verifies_with_the_allowed_signers(
    git: Git, remote: Path, cache: Path, ssh_key: tuple[Path, Path]
) -> None:
    key, allowed = ssh_key
    with Repository(git, url(remote), cache, author=BOT, signing=Signing.ssh(key)) as repo:
        result = repo.commit_direct(bump("apps/web.yaml", "image: web:1.1\n"), "Update web")
    assert result.sha is not None
    assert "Good" in verify_commit(git, remote, result.sha, allowed_signers=allowed)
    with pytest.raises(VerificationError, match="not signed"):
        verify_commit(git, remote, log(remote, fmt="%H")[1], allowed_signers=allowed)


def test_a_missing_ssh_signing_key_is_a_credential_error(tmp_path: Path) -> None:
    with pytest.raises(CredentialError, match="does not exist"):
        Signing.ssh(tmp_path / "absent")


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


def test_gpg_signed_commit_verifies_with_the_public_key(
    git: Git, remote: Path, cache: Path, gnupg: tuple[Path, str, Path]
) -> None:
    home, fingerprint, public = gnupg
    signing = Signing.gpg(fingerprint, gnupg_home=home)
    with Repository(git, url(remote), cache, author=BOT, signing=signing) as repo:
        result = repo.commit_branch("automator/web", bump("apps/web.yaml", "image: web:1.1\n"), "Update web")
    assert result.sha is not None
    assert fingerprint[-16:] in verify_commit(git, remote, result.sha, gpg_keys=[public])


def test_a_signing_failure_says_to_check_the_key(git: Git, remote: Path, cache: Path) -> None:
    signing = Signing.gpg("0000000000000000DEADBEEF", program="false")
    with (
        Repository(git, url(remote), cache, author=BOT, signing=signing) as repo,
        pytest.raises(GitError, match="check the signing key"),
    ):
        repo.commit_direct(bump("apps/web.yaml", "image: web:1.1\n"), "Update web")
    assert len(log(remote)) == 1


# -- our branches: lease, refusal, queries ------------------------------------------------------


def test_force_with_lease_is_rejected_when_someone_else_moved_our_branch(git: Git, remote: Path, cache: Path) -> None:
    with Repository(git, url(remote), cache, author=BOT) as repo:
        first = repo.commit_branch("automator/web", bump("apps/web.yaml", "image: web:1.1\n"), "web 1.1")
        assert first.status == "pushed"
        theirs = write_commit(remote, {"notes.md": "a human fixed something\n"}, "human", branch="automator/web")
        with pytest.raises(PushRejected, match=r"stale info.*moved since we fetched"):
            repo.commit_branch("automator/web", bump("apps/web.yaml", "image: web:1.2\n"), "web 1.2")
        assert repo.tip("automator/web") == first.sha  # what we last saw is unchanged
    assert log(remote, "automator/web", "%H")[0] == theirs  # their commit survived

    with Repository(git, url(remote), cache, author=BOT) as rerun:  # a fetch sees it; the lease is on it now
        update = rerun.commit_branch("automator/web", bump("apps/web.yaml", "image: web:1.2\n"), "web 1.2")
        assert update.status == "pushed"
    assert log(remote, "automator/web") == ["web 1.2", "initial"]


def test_a_new_branch_must_not_exist_yet(git: Git, remote: Path, cache: Path) -> None:
    with Repository(git, url(remote), cache, author=BOT) as repo, repo.worktree("main") as tree:
        bump("apps/web.yaml", "image: web:1.1\n")(tree.path)
        sha = tree.commit("web", author=BOT)
        assert sha is not None
        write_commit(remote, {"x": "y\n"}, "raced", branch="automator/new")
        with pytest.raises(PushRejected):
            repo.push_branch("automator/new", sha, expected=None)
    assert log(remote, "automator/new") == ["raced", "initial"]


def test_the_base_branch_is_never_forced(git: Git, remote: Path, cache: Path) -> None:
    before = log(remote, fmt="%H")
    with Repository(git, url(remote), cache, author=BOT, branch_prefix="") as repo:
        with repo.worktree("main") as tree:
            bump("apps/web.yaml", "image: web:9\n")(tree.path)
            rewritten = tree.commit("rewrite", author=BOT)
        assert rewritten is not None
        for name in ("main", "refs/heads/main"):
            with pytest.raises(GitError, match="refusing to force-push the base branch 'main'"):
                repo.push_branch(name, rewritten)
            with pytest.raises(GitError, match="refusing to delete the base branch"):
                repo.delete_branch(name)
        with pytest.raises(GitError, match="refusing to update the base branch"):
            repo.commit_branch("main", bump("apps/web.yaml", "x\n"), "m")
        # the fast-forward-only path refuses a commit that does not descend from the base tip
        orphan = git_cmd(
            "commit-tree",
            "-m",
            "orphan",
            f"{before[0]}^{{tree}}",
            cwd=repo.path,
            env=BOT.env("AUTHOR") | BOT.env("COMMITTER"),
        )
        with pytest.raises(GitError, match="only ever fast-forwarded"):
            repo.push_base(orphan)
    assert log(remote, fmt="%H") == before


def test_branches_outside_our_prefix_are_not_ours(git: Git, remote: Path, cache: Path) -> None:
    write_commit(remote, {"f": "x\n"}, "feature", branch="feature/x")
    with Repository(git, url(remote), cache, author=BOT) as repo:
        with pytest.raises(GitError, match="does not start with the branch prefix 'automator/'"):
            repo.push_branch("feature/x", repo.tip("main") or "")
        with pytest.raises(GitError, match="does not start with the branch prefix"):
            repo.delete_branch("feature/x")
        with pytest.raises(ConfigError, match="not a valid branch name"):
            repo.tip("automator/..bad")
    assert log(remote, "feature/x") == ["feature", "initial"]


def test_branch_queries_and_deletion(git: Git, remote: Path, cache: Path) -> None:
    write_commit(remote, {"f": "x\n"}, "feature", branch="feature/x")
    with Repository(git, url(remote), cache, author=BOT) as repo:
        web = repo.commit_branch("automator/web", bump("apps/web.yaml", "image: web:1.1\n"), "web")
        db = repo.commit_branch("automator/db", bump("apps/db.yaml", "image: db:1.1\n"), "db")
        assert repo.branches() == {"automator/web": web.sha, "automator/db": db.sha}
        assert set(repo.branches("")) == {"main", "feature/x", "automator/web", "automator/db"}
        assert repo.tip("automator/web") == web.sha
        assert repo.tip("automator/none") is None
        assert repo.tree("automator/web") == repo.tree(web.sha or "")
        assert repo.has_content("automator/web", repo.tree(web.sha or "") or "")
        assert not repo.has_content("automator/web", repo.tree("main") or "")
        assert not repo.has_content("automator/none", repo.tree("main") or "")

        assert repo.delete_branch("automator/db")
        assert not repo.delete_branch("automator/db")  # already gone
        assert repo.tip("automator/db") is None
    assert "automator/db" not in git_cmd("--git-dir", str(remote), "branch", "--list")

    git_cmd("--git-dir", str(remote), "branch", "-D", "automator/web")  # merged and deleted on the forge
    with Repository(git, url(remote), cache) as again:
        assert again.branches() == {}  # fetch --prune forgot it


def test_deleting_a_branch_someone_moved_is_rejected(git: Git, remote: Path, cache: Path) -> None:
    with Repository(git, url(remote), cache, author=BOT) as repo:
        repo.commit_branch("automator/web", bump("apps/web.yaml", "image: web:1.1\n"), "web")
        moved = write_commit(remote, {"x": "human\n"}, "human", branch="automator/web")
        with pytest.raises(PushRejected):
            repo.delete_branch("automator/web")
    assert log(remote, "automator/web", "%H")[0] == moved


def test_deleting_a_branch_someone_else_already_deleted_is_not_an_error(git: Git, remote: Path, cache: Path) -> None:
    with Repository(git, url(remote), cache, author=BOT) as repo:
        repo.commit_branch("automator/web", bump("apps/web.yaml", "image: web:1.1\n"), "web")
        git_cmd("--git-dir", str(remote), "branch", "-D", "automator/web")
        assert repo.tip("automator/web") is not None  # the cache has not seen the deletion
        assert not repo.delete_branch("automator/web")
        assert repo.tip("automator/web") is None


def test_a_rerun_with_identical_content_pushes_nothing(git: Git, remote: Path, cache: Path) -> None:
    git_cmd("config", "core.logAllRefUpdates", "always", cwd=remote)
    apply = bump("apps/web.yaml", "image: web:1.1\n")
    with Repository(git, url(remote), cache, author=BOT) as repo:
        first = repo.commit_branch("automator/web", apply, "web 1.1")
    reflog = git_cmd("--git-dir", str(remote), "reflog", "show", "automator/web")
    with Repository(git, url(remote), cache, author=BOT) as rerun:
        again = rerun.commit_branch("automator/web", apply, "web 1.1")
        nothing = rerun.commit_branch("automator/db", lambda root: True, "no change")
        direct = rerun.commit_direct(bump("apps/db.yaml", "image: db:1.0\n"), "same as base")
    assert (again.status, again.sha) == ("unchanged", first.sha)
    assert (nothing.status, nothing.sha) == ("no-change", None)
    assert (direct.sha, direct.attempts) == (None, 1)
    assert git_cmd("--git-dir", str(remote), "reflog", "show", "automator/web") == reflog
    assert log(remote) == ["initial"]
    assert "automator/db" not in git_cmd("--git-dir", str(remote), "branch", "--list")


def test_a_moved_base_gives_the_branch_a_new_commit_on_the_new_tip(git: Git, remote: Path, cache: Path) -> None:
    apply = bump("apps/web.yaml", "image: web:1.1\n")
    with Repository(git, url(remote), cache, author=BOT) as repo:
        first = repo.commit_branch("automator/web", apply, "web 1.1")
    new_base = write_commit(remote, {"apps/db.yaml": "image: db:2.0\n"}, "db by hand")
    with Repository(git, url(remote), cache, author=BOT) as rerun:
        second = rerun.commit_branch("automator/web", apply, "web 1.1")
    assert second.status == "pushed"
    assert second.sha != first.sha
    assert second.base == new_base
    assert log(remote, "automator/web") == ["web 1.1", "db by hand", "initial"]


# -- direct mode --------------------------------------------------------------------------------


def test_direct_mode_fast_forwards_the_base(git: Git, remote: Path, cache: Path) -> None:
    with Repository(git, url(remote), cache, author=BOT) as repo:
        result = repo.commit_direct(bump("apps/web.yaml", "image: web:1.1\n"), "web 1.1")
        assert repo.tip("main") == result.sha
    assert (result.attempts, log(remote)) == (1, ["web 1.1", "initial"])
    assert read_file(remote, "main", "apps/web.yaml") == "image: web:1.1\n"


def test_direct_mode_retries_on_the_new_tip_after_a_concurrent_push(
    git: Git, remote: Path, cache: Path, tmp_path: Path
) -> None:
    other = tmp_path / "other"
    git_cmd("clone", "-q", url(remote), str(other))
    calls: list[str] = []

    def apply(root: Path) -> bool:
        calls.append((root / "apps/db.yaml").read_text())
        if len(calls) == 1:  # between our fetch and our push, a second clone pushes to main
            (other / "apps/db.yaml").write_text("image: db:2.0\n")
            git_cmd("commit", "-qam", "db by hand", cwd=other, env=BOT.env("AUTHOR") | BOT.env("COMMITTER"))
            git_cmd("push", "-q", "origin", "HEAD:main", cwd=other)
        return bump("apps/web.yaml", "image: web:1.1\n")(root)

    delays: list[float] = []
    with Repository(git, url(remote), cache, author=BOT) as repo:
        result = repo.commit_direct(apply, "web 1.1", sleep=delays.append)
    assert result.attempts == 2
    assert len(delays) == 1
    assert calls == ["image: db:1.0\n", "image: db:2.0\n"]  # re-applied on the new tip
    assert log(remote) == ["web 1.1", "db by hand", "initial"]  # nothing lost, one commit of ours
    assert log(remote, fmt="%H")[0] == result.sha
    assert read_file(remote, "main", "apps/web.yaml") == "image: web:1.1\n"
    assert read_file(remote, "main", "apps/db.yaml") == "image: db:2.0\n"


def test_direct_mode_makes_no_duplicate_when_someone_made_the_same_change(git: Git, remote: Path, cache: Path) -> None:
    apply_ours = bump("apps/web.yaml", "image: web:1.1\n")
    calls = 0

    def apply(root: Path) -> bool:
        nonlocal calls
        calls += 1
        if calls == 1:
            write_commit(remote, {"apps/web.yaml": "image: web:1.1\n"}, "the other automator")
        return apply_ours(root)

    with Repository(git, url(remote), cache, author=BOT) as repo:
        result = repo.commit_direct(apply, "web 1.1", sleep=lambda _: None)
    assert (result.sha, result.attempts, calls) == (None, 2, 2)
    assert log(remote) == ["the other automator", "initial"]


def test_direct_mode_gives_up_after_a_bounded_number_of_attempts(git: Git, remote: Path, cache: Path) -> None:
    counter = iter(range(100))

    def apply(root: Path) -> bool:
        write_commit(remote, {f"busy/{next(counter)}": "x\n"}, "busy")
        return bump("apps/web.yaml", "image: web:1.1\n")(root)

    delays: list[float] = []
    with (
        Repository(git, url(remote), cache, author=BOT) as repo,
        pytest.raises(PushRejected, match="moved since we fetched"),
    ):
        repo.commit_direct(apply, "web 1.1", attempts=3, backoff=0.1, sleep=delays.append)
    assert len(delays) == 2
    assert 0.05 <= delays[0] <= 0.15
    assert 0.1 <= delays[1] <= 0.3
    assert "web 1.1" not in log(remote)


def test_authors_lists_who_committed_on_a_branch_since_it_left_the_base(git: Git, remote: Path, cache: Path) -> None:
    with Repository(git, url(remote), cache, author=BOT) as repo:
        assert repo.commit_branch("automator/web", bump("apps/web.yaml", "image: web:1.1\n"), "web 1.1").sha
        assert repo.authors("automator/web", since="main") == {BOT.email}
    write_commit(remote, {"notes.md": "a human fixed something\n"}, "human", branch="automator/web")
    with Repository(git, url(remote), cache, author=BOT) as repo:
        assert repo.authors("automator/web", since="main") == {BOT.email, "else@example.com"}
        assert repo.authors("main", since="main") == set()
