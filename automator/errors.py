"""The one exception tree of automator.

Every error the package raises on purpose derives from :class:`AutomatorError`.
Third-party exceptions are wrapped at the edge (``raise ... from exc``) so callers
catch one family.  The tree is the retry policy: each class says whether retrying can help
(``retryable``), and an instance may say how long to wait first (``retry_after``, seconds,
when a server asked, as kopf's ``TemporaryError(delay)``).  The loops that own a retry (the
automator's service, the synchronizer's) read nothing else, through one backoff
(:class:`automator.retry.Backoff`): permanent problems are reported and wait for the next
scheduled run or a new commit; transient ones are retried sooner, with backoff.

    AutomatorError
    ├── ConfigError                     permanent: input the user must fix
    │   ├── InvalidReference            an image reference that breaks the grammar
    │   ├── PolicyFileError             a policy/config file: path, line, column, field
    │   ├── TemplateError               a Go template (Flux messageTemplate): automator.gotemplate
    │   └── CredentialError             missing/unreadable credentials or helper failure
    │       └── CredentialUnavailable   transient: a token file caught empty mid-rotation
    ├── RegistryError                   talking to a container registry
    │   ├── RegistryUnavailable         transient: network, timeout, 429, 5xx (after retries)
    │   ├── RegistryAuthError           permanent: 401/403, token endpoint refused
    │   ├── RegistryTLSError            permanent: the certificate did not verify
    │   ├── RepositoryNotFound          permanent: 404 on the repository or manifest
    │   │   └── PlatformNotFound        an index has no manifest for the wanted platform
    │   └── RegistryResponseError       permanent: malformed/oversized reply, paging loop
    ├── ChoiceError                     a policy could not choose (bad tag data)
    ├── SignatureError                  permanent: a policy's signature check cannot run (key Secret, trust root)
    ├── UpdateError                     rewriting files in the config repo
    │   └── UnsafePathError             a path outside the repo root, a symlink, .git
    ├── GitError                        the git CLI failed (URL credentials redacted)
    │   ├── PushRejected                transient: non-fast-forward, retry on new tip
    │   └── GitAuthError                permanent: the remote refused our credentials
    ├── ForgeError                      GitHub/GitLab API failures (repository named, token never)
    │   ├── ForgeUnavailable            transient: network, timeout, 429, rate limit, 5xx
    │   ├── ForgeAuthError              permanent: 401/403, token refused or missing a permission
    │   ├── ForgeNotFound               permanent: 404, repository/PR missing or hidden from the token
    │   └── ForgeRejected               permanent: 400/405/409/422, the forge refused the request
    └── SyncError                       the synchronizer
        ├── RenderError                 manifests could not be rendered (file:line)
        ├── ApplyError                  the API server refused an object
        │   └── ImmutableFieldError     the change needs delete-and-recreate (opt-in annotation)
        ├── ClusterUnavailable          transient: network, timeout, 429, 5xx from the API server
        └── VerificationError           commit signature did not verify

Messages say what is wrong and what to do about it, and never contain secrets:
redact at the edge where a secret enters (see :func:`automator.redact.redact`).
"""

from __future__ import annotations


class AutomatorError(Exception):
    """Root of every error automator raises on purpose."""

    retryable: bool = False
    retry_after: float | None = None  # seconds the other side asked us to wait, when it said


class ConfigError(AutomatorError):
    """Input the user must fix: a file, a flag, an environment variable."""


class InvalidReference(ConfigError):
    """An image reference that does not follow the distribution reference grammar."""


class PolicyFileError(ConfigError):
    """A problem in one policy or configuration file, located to line and field."""

    def __init__(
        self,
        message: str,
        *,
        path: str,
        line: int | None = None,
        column: int | None = None,
        field: str | None = None,
    ) -> None:
        self.path = path
        self.line = line
        self.column = column
        self.field = field
        self.reason = message
        super().__init__(self._render())

    def _render(self) -> str:
        where = self.path
        if self.line is not None:
            where += f":{self.line}"
            if self.column is not None:
                where += f":{self.column}"
        field = f" [{self.field}]" if self.field else ""
        return f"{where}:{field} {self.reason}"


class CredentialError(ConfigError):
    """Credentials are missing, unreadable, or a credential helper failed."""


class CredentialUnavailable(CredentialError):
    """A credential that is there but empty: a mounted Secret caught half-way through a
    rotation. Transient: the next attempt reads it again."""

    retryable = True


class RegistryError(AutomatorError):
    """A container registry could not answer what was asked."""


class RegistryUnavailable(RegistryError):
    """Network failure, timeout, 429 or 5xx that outlasted the retries."""

    retryable = True


class RegistryAuthError(RegistryError):
    """The registry or its token service refused our credentials (401/403)."""


class RegistryTLSError(RegistryError):
    """The registry's TLS certificate did not verify (fix it or configure its CA file)."""


class RepositoryNotFound(RegistryError):
    """The repository, tag or manifest does not exist (404)."""


class PlatformNotFound(RepositoryNotFound):
    """An image index holds no manifest for the requested ``os/arch[/variant]``."""


class RegistryResponseError(RegistryError):
    """The registry answered with something we cannot use: bad JSON, too big, a paging loop."""


class ChoiceError(AutomatorError):
    """A policy could not choose a tag from the data it was given."""


class SignatureError(AutomatorError):
    """A policy's ``verify`` cannot be checked: a key Secret not mounted, an unusable trust root.

    Not "the signature is wrong" (that candidate is skipped, with the reason, and the scan goes on):
    this fails the policy's scan until the setting is fixed."""


class UpdateError(AutomatorError):
    """Rewriting files in the config repository failed."""


class UnsafePathError(UpdateError):
    """A path escapes the repository root, is a symlink out of it, or lies in .git."""


class GitError(AutomatorError):
    """The git command failed; the message carries its redacted stderr."""


class PushRejected(GitError):
    """The remote rejected a push (non-fast-forward); fetch, re-apply, retry."""

    retryable = True


class GitAuthError(GitError):
    """The git remote refused our credentials or their permissions (fix the token or SSH key)."""


class ForgeError(AutomatorError):
    """GitHub or GitLab refused or failed an API call."""


class ForgeUnavailable(ForgeError):
    """Network failure, timeout, 429, an exhausted rate limit or a 5xx: retry later.

    ``retry_after`` holds the seconds the forge asked us to wait, when it said.
    """

    retryable = True

    def __init__(self, message: str, *, retry_after: float | None = None) -> None:
        super().__init__(message)
        self.retry_after = retry_after


class ForgeAuthError(ForgeError):
    """The forge refused the token (401) or the token lacks a permission (403)."""


class ForgeNotFound(ForgeError):
    """The repository, project or pull request does not exist or is hidden from the token (404)."""


class ForgeRejected(ForgeError):
    """The forge refused the request as invalid (400/405/409/422): a field, a user, a state."""


class SyncError(AutomatorError):
    """The synchronizer could not bring the cluster to the desired state."""


class RenderError(SyncError):
    """Manifests could not be rendered; nothing is applied or pruned."""


class ApplyError(SyncError):
    """The API server refused an object."""


class ImmutableFieldError(ApplyError):
    """The object cannot be changed in place (an immutable field); recreate it to change it."""


class ClusterUnavailable(SyncError):
    """The API server could not be reached or answered 429/5xx; the next interval retries."""

    retryable = True


class VerificationError(SyncError):
    """A commit's signature did not verify; it is never applied."""
