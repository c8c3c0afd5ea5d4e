"""Where a plan's calls would go and which state it reads: what a reviewer must see.

A pull request can change `api_url:` (where the API key goes), `state:` and `project:` (whose
history, and whose campaign texts, the plan reads). DESIGN.md §0: the endpoint is https (plain
http only on loopback), and whatever differs from the default is shown in every plan's header
and kept in saved plans. Built where the CLI resolves its settings; reporters only show it.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

from runner.endpoint import endpoint_problem
from runner.errors import UsageError
from runner.state import DEFAULT_STATE, is_postgres
from runner.validate import DEFAULT_API_URL, Config

EMULATOR_TARGET = ("the bundled emulator, on loopback", "a throwaway state")


@dataclass(frozen=True)
class Target:
    """The endpoint, the state location (password hidden) and the project key."""

    api_url: str = DEFAULT_API_URL
    state: str = DEFAULT_STATE
    project: str | None = None

    def unusual(self) -> list[tuple[str, str]]:
        """(what, value) for each setting that is not the default, in a fixed order."""
        found = []
        if self.api_url != DEFAULT_API_URL:
            found.append(("endpoint", self.api_url))
        if self.state != DEFAULT_STATE:
            found.append(("state", self.state))
        if self.project:
            found.append(("project", self.project))
        return found

    def labelled(self) -> dict[str, str | None]:
        return {"endpoint": self.api_url, "state": self.state, "project": self.project}

    def as_dict(self) -> dict[str, str | None]:
        return {"api_url": self.api_url, "state": self.state, "project": self.project}


def target_of(data: object) -> Target | None:
    """A Target read back from a saved plan (a person could have edited it: check types)."""
    if not isinstance(data, dict):
        return None
    values = [data.get(k) for k in ("api_url", "state", "project")]
    if not all(isinstance(v, str) for v in values[:2]) or not isinstance(values[2], str | None):
        return None
    return Target(*values)  # type: ignore[arg-type]


def api_url(option: str | None, config: Config) -> str:
    """--api-url, then OCTOPUSH_API_URL, then runner.yaml `api_url:` (checked when read)."""
    environment = os.environ.get("OCTOPUSH_API_URL")
    for name, value in (("--api-url", option), ("OCTOPUSH_API_URL", environment)):
        if value:
            problem = endpoint_problem(value)
            if problem:
                raise UsageError(f"{name} {problem}; nothing was sent")
            return value.rstrip("/")
    return config.api_url.rstrip("/")


def shown_location(location: str) -> str:
    """A state location fit to print: a database URL without its password."""
    if not is_postgres(location):
        return location
    try:
        from runner.state.postgres import redact_url
    except ImportError:  # the backend will say psycopg is missing; never print the URL
        return "postgresql://(URL hidden)"
    return redact_url(location)


def target_for(config: Config, location: str, api_option: str | None = None) -> Target:
    return Target(api_url(api_option, config), shown_location(location), config.project)
