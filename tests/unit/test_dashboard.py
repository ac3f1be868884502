"""The dashboard's pages and routes: what each row says, escaping, the filter, the size bound,
the timeline, and the token's sign-in (header, cookie, rotation, limits, redirects)."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from pathlib import Path
from urllib.parse import parse_qsl, urlencode

import pytest

from automator.dashboard import COOKIE, Dashboard, DashboardSource, state_source
from automator.dashboard.app import MAX_FAILURES
from automator.dashboard.pages import index_page, policy_page
from automator.httpd import Request, Response, SecretFile
from automator.status import ClusterRow, PolicyStatus, PullRequestView, Status
from automator.status_history import ClusterSteps, VersionHistory

T0 = datetime(2026, 12, 2, 1, 0, tzinfo=UTC)
DIGEST = "sha256:" + "d" * 64


def row(policy: str, state: str = "up to date", **kw: object) -> PolicyStatus:
    values: dict[str, object] = {
        "policy": policy,
        "repository": f"ghcr.io/acme/{policy.rsplit(':', maxsplit=1)[-1]}",
        "newest": "1.1.0",
        "qualifies": "1.1.0",
        "git": ("1.1.0",),
        "pull_request": None,
        "clusters": (),
        "state": state,
        "reasons": (),
    }
    values.update(kw)
    return PolicyStatus(**values)  # type: ignore[arg-type]


def cluster(name: str, version: str, health: str = "Ready") -> ClusterRow:
    return ClusterRow(name, version, DIGEST, health, "", T0, "a" * 40, T0, ("Deployment/apps/web",), {}, (DIGEST,))


STATUS = Status(
    T0,
    (
        row("apps:web", clusters=(cluster("prod", "1.1.0"), cluster("staging", "1.1.0"))),
        row(
            "apps:api",
            "pull request open",
            git=("1.0.0",),
            pull_request=PullRequestView(7, "https://github.com/acme/fleet/pull/7", "1.1.0", T0, 0.0),
            clusters=(cluster("prod", "1.0.0"),),
        ),
        row("apps:db", "held", qualifies="1.0.0", git=("1.0.0",), reasons=("cooldown until 2026-12-03T01:00:00Z",)),
        row("apps:<script>alert(1)</script>", "failing", reasons=("registry said <b>401</b>",)),
    ),
    {},
)


def rows(html: str) -> list[str]:
    return re.findall(r"<tr data-state=[^\n]*", html)


def test_each_row_says_its_state_versions_pull_request_and_clusters() -> None:
    html = index_page(STATUS, now=T0 + timedelta(hours=2))
    web, api, db, bad = rows(html)
    assert 'data-state="up to date"' in web and '<td class="h-ready" title="Ready">1.1.0' in web
    assert '<a href="https://github.com/acme/fleet/pull/7">#7</a> 1.1.0 <i>2h</i>' in api
    assert "<th>prod<th>staging" in html  # a column per cluster, a dash where a policy runs nowhere
    assert api.endswith("1.0.0<td>-")
    assert "cooldown until 2026-12-03T01:00:00Z" in db
    assert "<script>alert" not in html and "&lt;script&gt;alert(1)&lt;/script&gt;" in html
    assert "&lt;b&gt;401&lt;/b&gt;" in bad
    assert '<option value="held">held (1)</option>' in html


def test_the_filter_hides_rows_without_dropping_them() -> None:
    html = index_page(STATUS, now=T0, q="API", state="")
    assert [("hidden" in r.split(">", 1)[0]) for r in rows(html)] == [True, False, True, True]
    html = index_page(STATUS, now=T0, state="held")
    assert [("hidden" in r.split(">", 1)[0]) for r in rows(html)] == [True, True, False, True]
    assert '<span id="shown">1 of 4</span>' in html


def test_a_thousand_policies_over_three_clusters_stay_under_500_kb() -> None:
    many = Status(
        T0,
        tuple(
            row(
                f"apps:app-{i}",
                "pull request open" if i % 2 else "up to date",
                pull_request=PullRequestView(i, f"https://github.com/acme/fleet/pull/{i}", "1.1.0", T0, 0.0)
                if i % 2
                else None,
                clusters=tuple(cluster(c, "1.1.0") for c in ("prod", "staging", "dev")),
            )
            for i in range(1000)
        ),
        {},
    )
    html = index_page(many, now=T0)
    assert len(rows(html)) == 1000
    assert len(html.encode()) < 500_000


def test_the_policy_page_shows_every_cluster_digest_and_the_timeline_in_order() -> None:
    p = STATUS.policies[1]
    timeline = [
        VersionHistory("apps:api", "1.0.0", T0 - timedelta(days=2), False, None, None, None, ()),
        VersionHistory(
            "apps:api",
            "1.1.0",
            T0,
            False,
            (7, "https://github.com/acme/fleet/pull/7"),
            T0 + timedelta(minutes=1),
            T0 + timedelta(hours=1),
            (ClusterSteps("prod", T0 + timedelta(hours=1, minutes=2), "b" * 40, T0 + timedelta(hours=1, minutes=5)),),
            {"seen_to_pr": 60.0, "pr_to_merge": 3540.0},
            ("distribution", T0),
        ),
    ]
    html = policy_page(p, timeline, now=T0, generated=T0, policy_url="https://github.com/acme/fleet/blob/main/p.yaml")
    assert '<a href="https://github.com/acme/fleet/blob/main/p.yaml">policy file</a>' in html
    assert f'<code title="{DIGEST}">{DIGEST[:19]}</code>' in html
    steps = re.findall(r'<li class="step (\w+)">', html)
    assert steps == ["seen", "opened", "merged", "applied", "healthy", "seen"]  # newest version first
    assert "announced by the distribution webhook" in html and "<i>+1m</i>" in html and "<i>+59m</i>" in html


# -- routes and the token ------------------------------------------------------------------------


def get(d: Dashboard, path: str, **headers: str) -> Response:
    path, _, query = path.partition("?")
    answer = d.page(Request(path, dict(parse_qsl(query)), {k.replace("_", "-"): v for k, v in headers.items()}))
    assert answer is not None
    return answer


def source() -> DashboardSource:
    return DashboardSource(status=lambda now: STATUS, history=lambda policy: [])


def headers_of(r: Response) -> dict[str, str]:
    return dict(r.headers)


def test_pages_assets_and_what_is_left_to_the_service() -> None:
    d = Dashboard(source(), now=lambda: T0)
    index = get(d, "/")
    assert index.status == 200 and index.content_type.startswith("text/html")
    csp = headers_of(index)["Content-Security-Policy"]
    assert "script-src 'self'" in csp and "default-src 'none'" in csp
    assert get(d, "/policies/apps%3Aapi").status == 200
    assert get(d, "/policies/apps%3Anone").status == 404
    css = get(d, "/static/dashboard.css")
    assert css.content_type.startswith("text/css") and "immutable" in headers_of(css)["Cache-Control"]
    assert d.page(Request("/static/../../etc/passwd", {}, {})) is None
    for path in ("/healthz", "/metrics", "/status", "/hooks/distribution"):
        assert d.page(Request(path, {}, {})) is None  # the service answers these
    assert "--state-dir" in str(get(Dashboard(None), "/").body)


def test_a_token_guards_the_pages_and_status_and_a_signed_in_browser_keeps_a_cookie(tmp_path: Path) -> None:
    token_file = tmp_path / "token"
    token_file.write_text("s3cret-token\n")
    d = Dashboard(source(), token=SecretFile(str(token_file), "--dashboard-token-file"), now=lambda: T0)
    opened = get(d, "/policies/apps%3Aapi", sec_fetch_mode="navigate")  # a browser: to sign in, and back
    assert (opened.status, headers_of(opened)["Location"]) == (303, "/login?next=%2Fpolicies%2Fapps%253Aapi")
    form = get(d, "/login?next=%2Fpolicies%2Fapps%253Aapi")
    assert form.status == 200 and 'name="next" value="/policies/apps%3Aapi"' in str(form.body)
    assert 'data-refresh="0"' in str(form.body)  # a form being filled in is never refreshed away
    assert get(d, "/", accept="text/html,*/*").status == 303  # a browser without Sec-Fetch-Mode
    refused = get(d, "/", sec_fetch_mode="cors")  # the page's own refresh, or curl: a plain 401
    assert (refused.status, headers_of(refused)["WWW-Authenticate"]) == (401, 'Bearer realm="automator"')
    assert get(d, "/", accept="*/*").status == 401
    assert get(d, "/status", sec_fetch_mode="navigate").status == 401
    assert get(d, "/static/dashboard.js").status == 200 and get(d, "/login").status == 200
    assert get(d, "/", authorization="Bearer s3cret-token").status == 200
    assert d.page(Request("/status", {}, {"authorization": "Bearer s3cret-token"})) is None  # the service's
    assert get(d, "/", authorization="Bearer wrong").status == 401

    form = urlencode({"token": "s3cret-token", "next": "/policies/x"}).encode()
    signed = d.login({"x-forwarded-proto": "https"}, form)
    assert signed.status == 303 and headers_of(signed)["Location"] == "/policies/x"
    cookie = headers_of(signed)["Set-Cookie"]
    assert all(part in cookie for part in ("HttpOnly", "SameSite=Strict", "Secure", "Path=/"))
    assert "s3cret-token" not in cookie  # an HMAC of the token, never the token
    session = cookie.split(";", 1)[0]
    page = get(d, "/", cookie=session)
    assert page.status == 200 and "sign out" in str(page.body)

    token_file.write_text("rotated-token\n")  # a rotated token signs everyone out
    assert get(d, "/", cookie=session).status == 401
    assert get(d, "/", authorization="Bearer rotated-token").status == 200
    assert COOKIE in session


@pytest.mark.parametrize("target", ["//evil.example/", "/\\evil.example", "https://evil.example/", "", None])
def test_sign_in_never_sends_the_browser_to_another_site(tmp_path: Path, target: str | None) -> None:
    token_file = tmp_path / "token"
    token_file.write_text("t")
    d = Dashboard(source(), token=SecretFile(str(token_file), "--dashboard-token-file"))
    form = {"token": "t"} | ({"next": target} if target is not None else {})
    assert headers_of(d.login({}, urlencode(form).encode()))["Location"] == "/"


def test_failed_sign_ins_are_limited(tmp_path: Path) -> None:
    token_file = tmp_path / "token"
    token_file.write_text("t")
    clock = [0.0]
    d = Dashboard(source(), token=SecretFile(str(token_file), "--dashboard-token-file"), monotonic=lambda: clock[0])
    wrong = urlencode({"token": "guess", "next": "/policies/x"}).encode()
    failed = d.login({}, wrong)  # back to the form, saying so
    assert (failed.status, headers_of(failed)["Location"]) == (303, "/login?failed=1&next=%2Fpolicies%2Fx")
    assert "that token is not the dashboard's" in str(get(d, "/login?failed=1").body)
    assert [d.login({}, wrong).status for _ in range(MAX_FAILURES - 1)] == [303] * (MAX_FAILURES - 1)
    assert d.login({}, wrong).status == 429
    assert d.login({}, b"&".join(b"f%d=1" % i for i in range(20))).status == 400  # not our form
    clock[0] = 61.0
    assert d.login({}, wrong).status == 303


def test_the_model_is_built_once_while_the_database_does_not_change() -> None:
    built: list[datetime] = []
    version = [1]

    def status(now: datetime) -> Status:
        built.append(now)
        return STATUS

    d = Dashboard(DashboardSource(status=status, history=lambda p: [], version=lambda: version[0]), now=lambda: T0)
    get(d, "/")
    get(d, "/")
    assert len(built) == 1
    version[0] = 2  # a cycle wrote
    get(d, "/")
    assert len(built) == 2
    d.warm()
    assert len(built) == 3


def test_the_state_source_reads_a_real_database(tmp_path: Path) -> None:
    from automator.state import PolicyChoice, StateStore

    with StateStore(tmp_path, now=lambda: T0) as store:
        store.rebuilt()
        with store.transaction():
            store.record_listings({"ghcr.io/acme/web": ["1.0.0", "1.1.0"]})
            cycle = store.begin_cycle("a" * 40)
            store.record_choices(cycle, [PolicyChoice("apps:web", "ghcr.io/acme/web", "1.1.0", current="1.1.0")])
        src = state_source(tmp_path)
        before = src.version() if src.version else None
        html = str(get(Dashboard(src, now=lambda: T0), "/").body)
        assert "apps:web" in html and "up to date" in html
        page = str(get(Dashboard(src, now=lambda: T0), "/policies/apps%3Aweb").body)
        assert '<li class="step seen">' in page
        with store.transaction():
            store.begin_cycle("b" * 40)
        assert src.version is not None and src.version() != before


def test_a_re_pushed_tag_is_marked_on_the_row_and_the_policy_page() -> None:
    from dataclasses import replace

    other = "sha256:" + "e" * 64
    repushed = replace(cluster("prod", "1.1.0"), registry_digest=other)
    status = Status(T0, (row("apps:web", clusters=(repushed,)),), {})
    html = index_page(status, now=T0)
    assert (
        '<td class="h-ready" title="Ready, re-pushed: its pods run another digest than the registry&#39;s">1.1.0 ≠'
        in html
    )
    page = policy_page(status.policies[0], [], now=T0, generated=T0)
    assert f're-pushed: the registry\'s 1.1.0 is <code title="{other}">' in page
