"""runner: a declarative campaign runner for Octopush Voice SMS."""

from __future__ import annotations


def __getattr__(name: str) -> str:
    # Lazy: reading the installed metadata costs a few milliseconds that most commands never need.
    if name == "__version__":
        from runner.version import version

        return version()
    raise AttributeError(f"module 'runner' has no attribute {name!r}")
