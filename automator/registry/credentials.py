"""Registry credentials from Docker's ``config.json`` and Kubernetes pull secrets.

The lookup follows the Docker CLI (``cli/config/configfile/file.go``):

1. ``credHelpers[<host>]`` names a helper for that host;
2. else ``credsStore`` names a helper for every host;
3. else (or when the helper has nothing for the host) ``auths[<key>]`` whose key,
   stripped of scheme and path, is the host -- ``https://index.docker.io/v1/``
   is Docker Hub (``docker.io``).

A helper is run as ``docker-credential-<name> get`` with the server URL on stdin
and answers ``{"Username": ..., "Secret": ...}``; the username ``<token>`` means
the secret is an identity (refresh) token.  This is how ECR, GCR/Artifact
Registry and ACR logins work without their cloud SDKs.

Secrets never appear in a repr, a log line or an exception message: every error
names the source and the host, never the value.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import json
import os
import shutil
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

from automator.errors import CredentialError
from automator.registry.config import canonical_host

DOCKER_HUB_SERVER_URL = "https://index.docker.io/v1/"
TOKEN_USERNAME = "<token>"
_NOT_FOUND_MARKERS = ("credentials not found", "not found in native keychain", "no credentials")


@dataclass(frozen=True, repr=False)
class Credential:
    """One registry login: a username/password, an identity token, or a registry token."""

    username: str | None = None
    password: str | None = field(default=None, compare=False)
    identity_token: str | None = field(default=None, compare=False)
    registry_token: str | None = field(default=None, compare=False)
    source: str = ""

    def __repr__(self) -> str:
        parts = [f"username={self.username!r}"]
        for name in ("password", "identity_token", "registry_token"):
            if getattr(self, name):
                parts.append(f"{name}='***'")
        parts.append(f"source={self.source!r}")
        return f"Credential({', '.join(parts)})"

    __str__ = __repr__

    @property
    def has_basic(self) -> bool:
        """True when a username and password can make a Basic ``Authorization`` header."""
        return bool(self.username) and self.password is not None

    @property
    def secrets(self) -> tuple[str, ...]:
        """The secret values, for :func:`automator.redact.redact`."""
        return tuple(s for s in (self.password, self.identity_token, self.registry_token) if s)


class CredentialProvider(Protocol):
    """Something that knows the login for a registry host (``host[:port]``)."""

    async def get(self, host: str) -> Credential | None:
        """The credential for ``host``, or None for anonymous access."""
        ...


def server_url(host: str) -> str:
    """The server URL Docker uses for ``host`` in ``auths`` keys and helper calls."""
    host = canonical_host(host)
    return DOCKER_HUB_SERVER_URL if host == "docker.io" else host


def _decode_auth(value: str, where: str) -> tuple[str, str]:
    try:
        decoded = base64.b64decode(value.strip(), validate=True).decode("utf-8")
    except (binascii.Error, UnicodeDecodeError, ValueError) as exc:
        raise CredentialError(
            f"{where}: 'auth' is not valid base64 of 'username:password'; run docker login again"
        ) from exc
    user, sep, password = decoded.partition(":")
    if not sep or not user:
        raise CredentialError(f"{where}: 'auth' does not decode to 'username:password'; run docker login again")
    return user, password


def _credential_from_entry(entry: Mapping[str, Any], where: str) -> Credential | None:
    if not isinstance(entry, Mapping):
        raise CredentialError(f"{where}: expected an object with 'auth' or 'username'/'password'")
    username = entry.get("username") or None
    password = entry.get("password")
    if entry.get("auth"):
        if not isinstance(entry["auth"], str):
            raise CredentialError(f"{where}: 'auth' must be a string")
        username, password = _decode_auth(entry["auth"], where)
    identity = entry.get("identitytoken") or None
    registry_token = entry.get("registrytoken") or None
    for name, value in (("username", username), ("password", password), ("identitytoken", identity)):
        if value is not None and not isinstance(value, str):
            raise CredentialError(f"{where}: '{name}' must be a string")
    if not (username or identity or registry_token):
        return None
    return Credential(
        username=username,
        password=password if isinstance(password, str) else None,
        identity_token=identity,
        registry_token=registry_token if isinstance(registry_token, str) else None,
        source=where,
    )


class DockerConfigCredentials:
    """Credentials from a Docker ``config.json`` document (file, Secret or dict)."""

    def __init__(self, config: Mapping[str, Any], *, source: str = "docker config", helper_timeout: float = 30.0):
        if not isinstance(config, Mapping):
            raise CredentialError(f"{source}: expected a JSON object with 'auths'")
        self.source = source
        self.helper_timeout = helper_timeout
        auths = config.get("auths") or {}
        helpers = config.get("credHelpers") or {}
        store = config.get("credsStore") or None
        if not isinstance(auths, Mapping) or not isinstance(helpers, Mapping):
            raise CredentialError(f"{source}: 'auths' and 'credHelpers' must be objects")
        if store is not None and not isinstance(store, str):
            raise CredentialError(f"{source}: 'credsStore' must be a string")
        self._auths: dict[str, Credential] = {}
        for key, entry in auths.items():
            host = canonical_host(str(key))
            cred = _credential_from_entry(entry, f"{source} auths[{key!r}]")
            # an exact host key wins over a URL-shaped one, as Docker looks up the exact key first
            if cred is not None and (host not in self._auths or str(key).lower() == host):
                self._auths[host] = cred
        self._helpers = {canonical_host(str(k)): str(v) for k, v in helpers.items()}
        self._store = store
        self._cache: dict[str, Credential | None] = {}
        self._locks: dict[str, asyncio.Lock] = {}

    def __repr__(self) -> str:
        return f"DockerConfigCredentials(source={self.source!r}, hosts={sorted(self._auths)!r})"

    # --- constructors -------------------------------------------------------------------------

    @classmethod
    def from_json(cls, text: str | bytes, *, source: str = "docker config") -> DockerConfigCredentials:
        """Parse a ``config.json`` document."""
        try:
            data = json.loads(text)
        except (ValueError, UnicodeDecodeError) as exc:
            raise CredentialError(
                f"{source}: not valid JSON ({exc.__class__.__name__}); fix or recreate the file"
            ) from None
        return cls(data, source=source)

    @classmethod
    def from_file(cls, path: str | os.PathLike[str]) -> DockerConfigCredentials:
        """Read a ``config.json`` file."""
        try:
            text = Path(path).read_bytes()
        except OSError as exc:
            raise CredentialError(f"cannot read docker config {os.fspath(path)}: {exc.strerror}") from exc
        return cls.from_json(text, source=os.fspath(path))

    @classmethod
    def default(cls) -> DockerConfigCredentials:
        """``$DOCKER_CONFIG/config.json`` or ``~/.docker/config.json``; empty when absent."""
        root = os.environ.get("DOCKER_CONFIG") or os.path.join(os.path.expanduser("~"), ".docker")
        path = Path(root) / "config.json"
        if not path.exists():
            return cls({}, source=os.fspath(path))
        return cls.from_file(path)

    @classmethod
    def from_kubernetes_secret(
        cls, secret: Mapping[str, Any] | str | os.PathLike[str], *, source: str | None = None
    ) -> DockerConfigCredentials:
        """A ``kubernetes.io/dockerconfigjson`` (or legacy ``dockercfg``) Secret: a dict or a YAML/JSON file."""
        if not isinstance(secret, Mapping):
            path = os.fspath(secret)
            try:
                text = Path(path).read_text(encoding="utf-8")
            except (OSError, UnicodeDecodeError) as exc:
                raise CredentialError(f"cannot read pull secret file {path}: {exc}") from exc
            # imported here: only a pull secret manifest needs it, and a scan starts faster without it
            from ruamel.yaml import YAML  # noqa: PLC0415
            from ruamel.yaml.error import YAMLError  # noqa: PLC0415

            try:
                loaded = YAML(typ="safe", pure=True).load(text)
            except YAMLError as exc:
                raise CredentialError(f"pull secret file {path} is not valid YAML/JSON") from exc
            if not isinstance(loaded, Mapping):
                raise CredentialError(
                    f"{path} is neither a Docker config.json nor a kubernetes.io/dockerconfigjson Secret manifest"
                )
            return cls.from_kubernetes_secret(loaded, source=source or path)
        meta = secret.get("metadata") or {}
        name = meta.get("name", "?") if isinstance(meta, Mapping) else "?"
        where = source or f"Secret {name}"
        kind = secret.get("type")
        key = {
            "kubernetes.io/dockerconfigjson": ".dockerconfigjson",
            "kubernetes.io/dockercfg": ".dockercfg",
        }.get(str(kind))
        if key is None:
            raise CredentialError(
                f"{where}: type is {kind!r}; a pull secret must be kubernetes.io/dockerconfigjson "
                "(create it with kubectl create secret docker-registry)"
            )
        data, string_data = secret.get("data") or {}, secret.get("stringData") or {}
        if isinstance(string_data, Mapping) and key in string_data:
            raw: bytes = str(string_data[key]).encode()
        elif isinstance(data, Mapping) and key in data:
            try:
                raw = base64.b64decode(str(data[key]), validate=True)
            except (binascii.Error, ValueError) as exc:
                raise CredentialError(f"{where}: data[{key!r}] is not valid base64") from exc
        else:
            raise CredentialError(f"{where}: has no data[{key!r}]")
        try:
            doc = json.loads(raw)
        except (ValueError, UnicodeDecodeError):
            raise CredentialError(f"{where}: {key} is not valid JSON") from None
        if key == ".dockercfg":
            doc = {"auths": doc}
        return cls(doc, source=where)

    # --- lookup -------------------------------------------------------------------------------

    def helper_for(self, host: str) -> str | None:
        """The credential helper name that serves ``host``, if any."""
        return self._helpers.get(canonical_host(host), self._store)

    async def get(self, host: str) -> Credential | None:
        """The credential for ``host``; helpers run once per host and are cached."""
        host = canonical_host(host)
        if host in self._cache:
            return self._cache[host]
        lock = self._locks.setdefault(host, asyncio.Lock())
        async with lock:
            if host not in self._cache:
                self._cache[host] = await self._lookup(host)
        return self._cache[host]

    async def _lookup(self, host: str) -> Credential | None:
        helper = self.helper_for(host)
        if helper:
            cred = await run_credential_helper(helper, server_url(host), timeout=self.helper_timeout)
            if cred is not None:
                return cred
        return self._auths.get(host)


async def run_credential_helper(name: str, server: str, *, timeout: float = 30.0) -> Credential | None:
    """Run ``docker-credential-<name> get`` for ``server``; None when it has no login for it."""
    program = f"docker-credential-{name}"
    where = f"credential helper {program} for {server}"
    path = shutil.which(program)
    if path is None:
        raise CredentialError(f"{where}: {program} is not on PATH; install it or remove it from the docker config")
    try:
        proc = await asyncio.create_subprocess_exec(
            path,
            "get",
            stdin=asyncio.subprocess.PIPE,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
        )
    except OSError as exc:
        raise CredentialError(f"{where}: cannot run it ({exc.strerror})") from exc
    try:
        out, err = await asyncio.wait_for(proc.communicate(server.encode()), timeout)
    except TimeoutError:
        proc.kill()
        await proc.wait()
        raise CredentialError(f"{where}: no answer within {timeout:g}s; check that the helper works") from None
    if proc.returncode != 0:
        text = (out + err).decode(errors="replace").strip()
        if any(marker in text.lower() for marker in _NOT_FOUND_MARKERS):
            return None
        # the helper's own words help, but only its first line, and never anything secret-looking
        first = text.splitlines()[0][:200] if text else ""
        raise CredentialError(f"{where}: exited with status {proc.returncode}: {first}")
    try:
        answer = json.loads(out)
    except ValueError:
        raise CredentialError(f"{where}: did not print a JSON object with Username and Secret") from None
    if not isinstance(answer, Mapping) or not isinstance(answer.get("Secret"), str):
        raise CredentialError(f"{where}: did not print a JSON object with Username and Secret")
    username = answer.get("Username")
    secret = answer["Secret"]
    if not secret:
        return None
    if username == TOKEN_USERNAME:
        return Credential(identity_token=secret, source=where)
    if not isinstance(username, str) or not username:
        raise CredentialError(f"{where}: answered without a Username")
    return Credential(username=username, password=secret, source=where)


class StaticCredentials:
    """Credentials given in code or by a config file: ``{host: Credential}``."""

    def __init__(self, credentials: Mapping[str, Credential] | Iterable[tuple[str, Credential]] = ()):
        items = credentials.items() if isinstance(credentials, Mapping) else credentials
        self._by_host = {canonical_host(host): cred for host, cred in items}

    def __repr__(self) -> str:
        return f"StaticCredentials(hosts={sorted(self._by_host)!r})"

    async def get(self, host: str) -> Credential | None:
        """The credential configured for ``host``."""
        return self._by_host.get(canonical_host(host))


class ChainCredentials:
    """The first provider that knows a host wins (e.g. a pull secret, then ~/.docker)."""

    def __init__(self, *providers: CredentialProvider):
        self._providers = providers

    def __repr__(self) -> str:
        return f"ChainCredentials({', '.join(repr(p) for p in self._providers)})"

    async def get(self, host: str) -> Credential | None:
        """Ask each provider in turn."""
        for provider in self._providers:
            cred = await provider.get(host)
            if cred is not None:
                return cred
        return None
