"""The error tree is the retry policy: one backoff reads it for both services."""

from __future__ import annotations

import pytest

from automator.errors import (
    ApplyError,
    ConfigError,
    CredentialError,
    CredentialUnavailable,
    ForgeUnavailable,
    GitAuthError,
    PushRejected,
    RegistryAuthError,
    RegistryUnavailable,
    VerificationError,
)
from automator.retry import Backoff


@pytest.mark.parametrize(
    "error",
    [
        ConfigError("automator.yaml:3: bad"),
        CredentialError("docker config unreadable"),
        RegistryAuthError("401"),
        GitAuthError("403"),
        VerificationError("commit abc is not signed by a trusted key"),
        ApplyError("admission webhook denied"),
    ],
    ids=lambda e: type(e).__name__,
)
def test_a_permanent_error_is_never_retried_early(error: Exception) -> None:
    assert Backoff().after(1, error) is None


@pytest.mark.parametrize(
    "error",
    [
        RegistryUnavailable("503"),
        ForgeUnavailable("rate limited"),
        PushRejected("moved"),
        CredentialUnavailable("token file caught empty"),
        RuntimeError("a bug keeps the service serving"),
    ],
    ids=lambda e: type(e).__name__,
)
def test_a_transient_error_backs_off_exponentially_up_to_the_cap(error: Exception) -> None:
    backoff = Backoff(base=5, cap=60)
    assert [backoff.after(n, error) for n in range(1, 7)] == [5, 10, 20, 40, 60, 60]


def test_a_wait_the_other_side_asked_for_is_honoured_within_the_cap() -> None:
    backoff = Backoff(base=5, cap=600)
    assert backoff.after(1, ForgeUnavailable("rate limited", retry_after=120)) == 120
    assert backoff.after(6, ForgeUnavailable("rate limited", retry_after=120)) == 160  # our own is longer
    assert backoff.after(1, ForgeUnavailable("rate limited", retry_after=10_000)) == 600
