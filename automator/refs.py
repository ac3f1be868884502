"""Image references: parse and normalise per the distribution reference grammar.

The grammar is the one in ``github.com/distribution/reference`` (``reference.go``)
and the normalisation the one Docker applies (``normalize.go``):

* ``nginx`` -> ``docker.io/library/nginx``; ``user/app`` -> ``docker.io/user/app``
* ``index.docker.io`` is an alias of ``docker.io`` (API endpoint ``registry-1.docker.io``)
* the first path component is a registry host when it contains ``.`` or ``:``,
  is ``localhost``, or has upper-case letters; hosts may be ``[IPv6]:port``
* a name (host + path) is at most 255 characters; a tag at most 128
* tag and digest may both be given (``repo:1.2@sha256:...``)

Hand-written because the grammar is small and no maintained Python package
implements the Docker normalisation rules; the regexes mirror ``reference.go``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from automator.errors import InvalidReference

DOCKER_HUB = "docker.io"
DOCKER_HUB_API = "registry-1.docker.io"
_HUB_ALIASES = frozenset({"docker.io", "index.docker.io", "registry-1.docker.io"})
NAME_TOTAL_LENGTH_MAX = 255

_ALNUM = r"[a-z0-9]+"
_SEPARATOR = r"(?:[._]|__|[-]+)"
_PATH_COMPONENT = rf"{_ALNUM}(?:{_SEPARATOR}{_ALNUM})*"
_DOMAIN_COMPONENT = r"(?:[a-zA-Z0-9]|[a-zA-Z0-9][a-zA-Z0-9-]*[a-zA-Z0-9])"
_IPV6 = r"\[(?:[a-fA-F0-9:]+)\]"
_HOST = rf"(?:{_DOMAIN_COMPONENT}(?:\.{_DOMAIN_COMPONENT})*|{_IPV6})"
_DOMAIN = rf"{_HOST}(?::[0-9]+)?"

PATH_RE = re.compile(rf"^{_PATH_COMPONENT}(?:/{_PATH_COMPONENT})*$")
DOMAIN_RE = re.compile(rf"^{_DOMAIN}$")
TAG_RE = re.compile(r"^[\w][\w.-]{0,127}$")
DIGEST_RE = re.compile(r"^[A-Za-z][A-Za-z0-9]*(?:[-_+.][A-Za-z][A-Za-z0-9]*)*:[0-9a-fA-F]{32,}$")


@dataclass(frozen=True, order=True)
class ImageRef:
    """A normalised image reference: ``domain/path[:tag][@digest]``."""

    domain: str
    path: str
    tag: str | None = None
    digest: str | None = None

    @classmethod
    def parse(cls, text: str) -> ImageRef:
        """Parse and normalise ``text``; raise :class:`InvalidReference` with the reason."""
        return parse_reference(text)

    @property
    def repository(self) -> str:
        """The canonical repository name without tag or digest: ``docker.io/library/nginx``."""
        return f"{self.domain}/{self.path}"

    @property
    def familiar(self) -> str:
        """The short name users write: ``nginx`` for ``docker.io/library/nginx``."""
        if self.domain == DOCKER_HUB:
            return self.path.removeprefix("library/")
        return self.repository

    @property
    def api_host(self) -> str:
        """The host (and port) whose ``/v2/`` API serves this repository."""
        return DOCKER_HUB_API if self.domain == DOCKER_HUB else self.domain

    def with_tag(self, tag: str | None, digest: str | None = None) -> ImageRef:
        """The same repository with another tag (and digest)."""
        return ImageRef(self.domain, self.path, tag, digest)

    def bare(self) -> ImageRef:
        """The repository alone, without tag or digest."""
        return ImageRef(self.domain, self.path)

    def __str__(self) -> str:
        out = self.repository
        if self.tag is not None:
            out += f":{self.tag}"
        if self.digest is not None:
            out += f"@{self.digest}"
        return out


def _split_domain(name: str) -> tuple[str, str]:
    slash = name.find("/")
    first = name[:slash] if slash != -1 else ""
    if slash == -1 or (not any(c in first for c in ".:") and first != "localhost" and first == first.lower()):
        return DOCKER_HUB, name
    return first, name[slash + 1 :]


def parse_reference(text: str) -> ImageRef:
    """Parse ``text`` into an :class:`ImageRef`, normalising Docker Hub names."""
    if not isinstance(text, str) or not text:
        raise InvalidReference("image reference is empty")
    if text != text.strip():
        raise InvalidReference(f"image reference {text!r} has surrounding whitespace")
    rest, digest = text, None
    if "@" in rest:
        rest, digest = rest.split("@", 1)
        if not DIGEST_RE.match(digest):
            raise InvalidReference(f"image reference {text!r}: invalid digest {digest!r} (want algorithm:hex)")
    tag = None
    colon = rest.rfind(":")
    if colon > rest.rfind("/") and colon != -1:
        rest, tag = rest[:colon], rest[colon + 1 :]
        if not TAG_RE.match(tag):
            raise InvalidReference(
                f"image reference {text!r}: invalid tag {tag!r} "
                "(letters, digits, '_', '.', '-'; at most 128; not starting with '.' or '-')"
            )
    domain, path = _split_domain(rest)
    if not DOMAIN_RE.match(domain):
        raise InvalidReference(f"image reference {text!r}: invalid registry host {domain!r}")
    if not PATH_RE.match(path):
        hint = " (repository names must be lower case)" if path != path.lower() else ""
        raise InvalidReference(f"image reference {text!r}: invalid repository path {path!r}{hint}")
    if len(rest) > NAME_TOTAL_LENGTH_MAX:
        raise InvalidReference(
            f"image reference {text[:40]!r}...: name is {len(rest)} characters, at most {NAME_TOTAL_LENGTH_MAX}"
        )
    if domain in _HUB_ALIASES:
        domain = DOCKER_HUB
    if domain == DOCKER_HUB and "/" not in path:
        path = f"library/{path}"
    return ImageRef(domain, path, tag, digest)


def same_repository(a: str | ImageRef, b: str | ImageRef) -> bool:
    """True when two references name the same repository after normalisation."""
    ra = a if isinstance(a, ImageRef) else parse_reference(a)
    rb = b if isinstance(b, ImageRef) else parse_reference(b)
    return ra.repository == rb.repository
