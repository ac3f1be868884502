"""Shared test configuration: real servers on loopback live in tests/servers/ as fixture plugins."""

pytest_plugins = [
    "tests.servers.registry",
    "tests.servers.kube",
    "tests.servers.fake_github",
    "tests.servers.fake_gitlab",
    "tests.servers.browser",
]
