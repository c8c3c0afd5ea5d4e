"""runner: a declarative campaign runner for Octopush Voice SMS."""

__version__ = "0.1.0"
