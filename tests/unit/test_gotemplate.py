"""Go text/template semantics, load-time refusals, bounds and the data model of automator.gotemplate.

Expected outputs were checked against Go's text/template with Sprig (as Flux registers it),
except where a row says Go >= 1.22/1.23 (Flux builds with a current Go).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import pytest

from automator.errors import ConfigError
from automator.gotemplate import (
    Change,
    GoMap,
    ObjectIdentifier,
    TemplateError,
    flux_template_data,
    parse,
)

DATA = flux_template_data(
    {"namespace": "apps", "name": "auto"},
    {
        "apps/web/deploy.yaml": {
            ObjectIdentifier.of(kind="Deployment", name="web", namespace="web", api_version="apps/v1"): [
                Change("1.0.0", "1.1.0", "apps:web:tag"),
                Change("ghcr.io/acme/web", "ghcr.io/acme/web2", "apps:web:name"),
            ],
            ObjectIdentifier.of(kind="CronJob", name="cleanup", namespace="web", api_version="batch/v1"): [
                Change("1.0.0", "1.1.0", "apps:web:tag"),
            ],
        },
        "clusters/prod/kustomization.yaml": {
            ObjectIdentifier.of(kind="Kustomization", api_version="kustomize.config.k8s.io/v1beta1"): [
                Change("ghcr.io/acme/api:1.2.0", "ghcr.io/acme/api:1.3.0", "apps:api"),
            ],
        },
    },
    {"cluster": "prod", "env": ""},
)


def render(text: str, data: object = DATA) -> str:
    return parse(text, source="messageTemplate").render(data)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("{{ .AutomationObject }} {{ .AutomationObject.Name }} {{ $.Values.cluster }}", "apps/auto auto prod"),
        ("{{ .Values }}", "map[cluster:prod env:]"),
        ("{{ .Values.nope }}|{{ index .Values `nope` }}|{{ index .Changed.FileChanges `x` }}", "<no value>||map[]"),
        ("{{ first (list) }}|{{ print (first (list)) }}", "<no value>|<nil>"),
        (
            "{{ .Changed.Objects }}",
            "map[{{{apps/v1 Deployment} {web web}}}:[{1.0.0 1.1.0 apps:web:tag}"
            " {ghcr.io/acme/web ghcr.io/acme/web2 apps:web:name}] {{{batch/v1 CronJob} {cleanup web}}}:"
            "[{1.0.0 1.1.0 apps:web:tag}] {{{kustomize.config.k8s.io/v1beta1 Kustomization} { }}}:"
            "[{ghcr.io/acme/api:1.2.0 ghcr.io/acme/api:1.3.0 apps:api}]]",
        ),
        # Changes: every change once (1.0.0 -> 1.1.0 by apps:web:tag appears in two objects)
        (
            "{{ len .Changed.Changes }} {{ range .Changed.Changes }}{{ .Setter }},{{ end }}",
            "3 apps:web:tag,apps:web:name,apps:api,",
        ),
        (
            "{{ range $f, $_ := .Changed.FileChanges }}{{ $f }};{{ end }}",
            "apps/web/deploy.yaml;clusters/prod/kustomization.yaml;",
        ),
        (
            "{{ range $o, $c := .Changed.Objects }}{{ $o.Kind }}:{{ len $c }} {{ end }}",
            "Deployment:2 CronJob:1 Kustomization:1 ",
        ),
        # trim markers, comments
        ("a  {{- 3}} b {{3 -}}  c {{-3}} d", "a3 b 3c -3 d"),
        ("x{{- /* c */}}y{{/* c */ -}} z", "xyz"),
        ("{{ `raw\\n` }}{{ 'a' }}{{ 0x1F }}{{ 017 }}{{ 1_000 }}", "raw\\n9731151000"),
        (
            "{{ 1234567.0 }} {{ 1e20 }} {{ 0.00001 }} {{ 100000.0 }} {{ 2.5 }} {{ 1.0 }}",
            "1.234567e+06 1e+20 1e-05 100000 2.5 1",
        ),
        # variables and scope
        ("{{ $x := 1 }}{{ if true }}{{ $x = 2 }}{{ $y := 3 }}{{ end }}{{ $x }}", "2"),
        ("{{ with $x := .Values.cluster }}{{ $x }}{{ . }}{{ end }}", "prodprod"),
        # control flow
        ("{{ if .Values.nope }}a{{ else if .Values.cluster }}b{{ else }}c{{ end }}", "b"),
        (
            "{{ range .Values.nope }}x{{ else }}empty{{ end }}|{{ with .Values.env }}x{{ else }}none{{ end }}",
            "empty|none",
        ),
        (
            "{{ range $i, $c := .Changed.Changes }}{{ if eq $i 1 }}{{ break }}{{ end }}{{ $i }}{{ end }}|"
            "{{ range $i, $c := .Changed.Changes }}{{ if eq $i 0 }}{{ continue }}{{ end }}{{ $i }}{{ end }}",
            "0|12",
        ),
        ("{{ range 3 }}{{ . }}{{ end }}|{{ range $i := 2 }}{{ $i }}{{ end }}", "012|01"),  # Go >= 1.22
        ("{{ with .Values.nope }}a{{ else with .Values.cluster }}b{{ . }}{{ end }}", "bprod"),  # Go >= 1.23
        # functions
        (
            '{{ printf "%5.1f|%-8.3e|%+d|%x|%q|%v|%+v|%s|%d" 3.14159 1234.5 5 255 "a\\"b" 1e6 .AutomationObject'
            ' .AutomationObject "x" }}',
            '  3.1|1.234e+03|+5|ff|"a\\"b"|1e+06|apps/auto|apps/auto|%!d(string=x)',
        ),
        ('{{ print 1 2 "a" "b" 3 true nil }}|{{ println "x" 1 }}', "1 2ab3 true <nil>|x 1\n"),
        ("{{ and 1 0 2 }} {{ or 0 `` `x` }} {{ not 0 }} {{ len `héllo` }}", "0 x true 6"),
        (
            '{{ title "hello wORLD-foo_bar" }}|{{ join "," (list "a" 1 nil) }}|{{ default "d" .Values.nope }}|'
            '{{ sha256sum "abc" | trunc 7 }}|{{ quote "a\\tb" }}',
            'Hello WORLD-Foo_bar|a,1|d|ba7816b|"a\\tb"',
        ),
        ('{{ .Values.cluster | upper | printf "[%s]" }} {{ "x" | printf "%s-%s" "a" }}', "[PROD] a-x"),
        ("{{ (index .Changed.Changes 1).NewValue }} {{ slice (list 1 2 3) 1 }}", "ghcr.io/acme/web2 [2 3]"),
        (
            "{{ add 1 2 }} {{ sub 5 7 }} {{ div -7 2 }} {{ mod -7 2 }} {{ atoi `42` }} {{ int `0x1F` }}",
            "3 -2 -3 -1 42 31",
        ),
    ],
)
def test_renders_as_go(text: str, expected: str) -> None:
    assert render(text) == expected


@pytest.mark.parametrize(
    ("text", "reason"),
    [
        ("{{ .Updated }}", "can't evaluate field Updated in type source.TemplateData"),
        ("{{ .Changed.ImageResult.Files }}", "can't evaluate field ImageResult in type update.Result"),
        ("{{ .AutomationObject.Nope }}", "can't evaluate field Nope in type types.NamespacedName"),
        ("{{ lower .Values.nope }}", "error calling lower: invalid value; expected string"),
        ('{{ trunc (add 1 2) "abcdef" }}', "error calling trunc: wrong type for value; expected int; got int64"),
        ('{{ eq 1 "1" }}', "error calling eq: incompatible types for comparison"),
        ("{{ index .Changed.Changes 9 }}", "error calling index: index out of range: 9"),
        ("{{ .Values.cluster 1 }}", "cluster is not a method but has arguments"),
        (
            "{{ last .Values.nope }}",
            "error calling last: runtime error: invalid memory address or nil pointer dereference",
        ),
        ('{{ fail "boom" }}', "error calling fail: boom"),
    ],
)
def test_execution_errors_as_go(text: str, reason: str) -> None:
    with pytest.raises(TemplateError) as info:
        render(text)
    assert info.value.reason == reason
    assert info.value.line == 1


@pytest.mark.parametrize(
    ("text", "line", "column", "reason"),
    [
        ('{{ define "x" }}a{{ end }}', 1, 4, "{{define}} is not supported here"),
        ('a\n{{ template "x" . }}', 2, 4, "{{template}} is not supported here"),
        ('{{ block "x" . }}{{ end }}', 1, 4, "{{block}} is not supported here"),
        ("{{ toJson .Values }}", 1, 4, 'function "toJson" (Sprig) is not supported here'),
        ("{{ now }}", 1, 4, 'function "now" not defined'),  # not hermetic: Flux does not register it
        ("{{ nosuch 1 }}", 1, 4, 'function "nosuch" not defined'),
        ("{{ html . }}", 1, 4, 'function "html" is not supported here'),
        ("{{ 3i }}", 1, 4, "complex number 3i is not supported here"),
        ("{{ 08 }}", 1, 4, "bad number syntax or integer overflow"),
        ("x\n  {{ $y }}", 2, 6, 'undefined variable "$y"'),
        ("{{ $x = 1 }}", 1, 4, 'undefined variable "$x"'),
        ("{{ break }}", 1, 4, "{{break}} outside {{range}}"),
        ("{{ if true }}", 1, 14, "unexpected EOF"),
        ("{{ end }}", 1, 4, "unexpected {{end}}"),
        ("{{ if }}{{ end }}", 1, 7, "missing value for if"),
        ("{{ .Foo", 1, 1, "unclosed action"),
        ("{{ nil }}", 1, 4, "nil is not a command"),
        ("{{ 3 | 4 }}", 1, 8, "non executable command in pipeline stage 2"),
        ('{{ "open }}', 1, 4, "unterminated quoted string"),
        ("{{/* c */ x}}", 1, 10, "comment ends before closing delimiter"),
        ("{{ /* c */ }}", 1, 4, "comment must be the whole action"),
    ],
)
def test_refused_at_load_with_line_and_column(text: str, line: int, column: int, reason: str) -> None:
    with pytest.raises(TemplateError) as info:
        parse(text, source="spec.git.commit.messageTemplate")
    err = info.value
    assert (err.line, err.column) == (line, column)
    assert err.reason.startswith(reason)
    assert str(err).startswith(f"spec.git.commit.messageTemplate:{line}:{column}: ")
    assert isinstance(err, ConfigError)


def test_every_flux_function_used_in_its_docs_is_known() -> None:
    parse(
        '{{ lower "A" }}{{ contains "a" "b" }}{{ toString 1 }}{{ sha256sum "a" | trunc 40 }}'
        '{{ printf "%s" "x" }}{{ print 1 }}{{ println 2 }}{{ index .Values "a" }}{{ eq 1 1 }}',
        source="t",
    )


class TestBounds:
    def test_steps(self) -> None:
        many = {"Items": list(range(1000))}
        with pytest.raises(TemplateError, match="more than 1000000 steps"):
            render("{{ range .Items }}{{ range $.Items }}{{ range $.Items }}{{ end }}{{ end }}{{ end }}", many)

    def test_output(self) -> None:
        with pytest.raises(TemplateError, match="longer than 262144 characters"):
            render('{{ range .Items }}{{ repeat 1000 "x" }}{{ end }}', {"Items": list(range(300))})

    def test_value_is_refused_before_it_is_built(self) -> None:
        with pytest.raises(TemplateError, match="more than 262144 characters"):
            render('{{ repeat 2000000000 "x" }}')
        with pytest.raises(TemplateError, match="more than 262144 characters"):
            render('{{ printf "%999999999d" 1 }}')

    def test_range_over_an_integer(self) -> None:
        with pytest.raises(TemplateError, match="more than 10000 iterations"):
            render("{{ range 100000 }}{{ end }}")

    def test_nesting(self) -> None:
        with pytest.raises(TemplateError, match="nested"):
            parse("(" * 100 + "{{ " + "(" * 100 + "1" + ")" * 100 + " }}", source="t")


@dataclass
class Item:
    Name: str
    Tags: list[str] = field(default_factory=list)
    _secret: str = "s"

    def Greet(self, who: str) -> str:
        return f"hi {who} from {self.Name}"

    def Short(self) -> str:
        return self.Name[:2]

    def lower(self) -> str:
        return "unexported"


class TestDataModel:
    def test_dicts_dataclasses_and_methods(self) -> None:
        data = {"items": [Item("alpha", ["a", "b"]), Item("beta")], "n": 2}
        out = render(
            '{{ range .items }}{{ .Name }}:{{ .Short }}:{{ .Greet "you" }}:{{ .Tags }};{{ end }}{{ .n }}', data
        )
        assert out == "alpha:al:hi you from alpha:[a b];beta:be:hi you from beta:[];2"
        assert render("{{ index .items 0 }}", data) == "{alpha [a b] s}"

    def test_pipeline_value_is_a_method_argument(self) -> None:
        assert render('{{ "me" | .Greet }}', Item("x")) == "hi me from x"

    @pytest.mark.parametrize("name", ["_secret", "lower", "__class__", "__dict__"])
    def test_nothing_else_of_a_python_object_is_reachable(self, name: str) -> None:
        with pytest.raises(TemplateError):
            render("{{ ." + name + " }}", Item("x"))

    def test_go_map_zero_value(self) -> None:
        data = {"m": GoMap({"a": "1"}, zero=""), "plain": {"a": "1"}}
        assert render('{{ index .m "zz" }}|{{ index .plain "zz" }}|{{ .m.zz }}', data) == "|<no value>|<no value>"

    def test_nil_receiver(self) -> None:
        with pytest.raises(TemplateError, match="nil pointer evaluating"):
            render("{{ .a.b }}", {"a": None})
