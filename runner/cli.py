"""The command line: options in, one call out, an exit code back."""

from __future__ import annotations

import logging
import sys
import traceback
from collections.abc import Callable
from pathlib import Path
from typing import Any

import click

from runner import __version__, report, schemas
from runner.errors import InputError, RunnerError
from runner.project import Project, load_project, parse_variables


class Settings:
    """The global options, passed down to every command."""

    def __init__(self, directory: str, config: str | None, state: str | None, color: bool,
                 verbose: int) -> None:
        self.root = Path(directory)
        self.config = Path(config) if config else None
        self.state = state
        self.color = color
        self.verbose = verbose

    def project(self, variables: tuple[str, ...] = (), var_files: tuple[str, ...] = ()) -> Project:
        return load_project(self.root, self.config, parse_variables(variables, var_files, self.root))


pass_settings = click.make_pass_decorator(Settings)

var_options = [
    click.option("--var", "variables", multiple=True, metavar="K=V",
                 help="Set a template variable (wins over files)."),
    click.option("--var-file", "var_files", multiple=True, metavar="FILE",
                 help="YAML file of template variables."),
]


def with_vars(func: Callable[..., Any]) -> Callable[..., Any]:
    for option in reversed(var_options):
        func = option(func)
    return func


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="runner")
@click.option("-C", "directory", default=".", metavar="DIR", help="Run in this project folder.")
@click.option("--config", metavar="FILE", help="Project config (default: DIR/runner.yaml).")
@click.option("--state", metavar="LOCATION", help="State file or postgresql:// URL.")
@click.option("--no-color", is_flag=True, help="Never colour the output.")
@click.option("-v", "--verbose", count=True, help="More detail (repeat for debug logs).")
@click.option("-q", "--quiet", is_flag=True, help="Only errors.")
@click.pass_context
def cli(ctx: click.Context, directory: str, config: str | None, state: str | None,
        no_color: bool, verbose: int, quiet: bool) -> None:
    """Declarative campaign runner for Octopush Voice SMS.

    Campaigns are YAML files; `plan` shows what would be sent and `apply` sends it,
    each recipient hearing each version of a message at most once.
    """
    logging.basicConfig(level=logging.DEBUG if verbose > 1 else logging.WARNING,
                        format="%(name)s: %(message)s", stream=sys.stderr)
    ctx.obj = Settings(directory, config, state, not no_color, -1 if quiet else verbose)


@cli.command()
@click.option("--format", "fmt", type=click.Choice(["text", "json"]), default="text",
              show_default=True)
@with_vars
@pass_settings
def validate(settings: Settings, fmt: str, variables: tuple[str, ...],
             var_files: tuple[str, ...]) -> None:
    """Check every campaign file, template and recipient list; send nothing."""
    try:
        project = settings.project(variables, var_files)
    except InputError as e:
        if fmt == "json":
            click.echo(report.json.dumps(report.problems_json(e.problems), indent=2))
            raise SystemExit(1) from None
        raise
    click.echo(report.validate_json(project) if fmt == "json" else report.validate_text(project))


@cli.command()
@click.argument("names", nargs=-1)
@click.option("--show-recipients", is_flag=True, help="Print phone numbers unmasked.")
@with_vars
@pass_settings
def render(settings: Settings, names: tuple[str, ...], show_recipients: bool,
           variables: tuple[str, ...], var_files: tuple[str, ...]) -> None:
    """Show rendered messages, recipient counts and batches (numbers masked)."""
    project = settings.project(variables, var_files)
    unknown = [n for n in names if project.campaign(n) is None]
    if unknown:
        known = ", ".join(c.name for c in project.campaigns)
        raise RunnerError(f"no campaign named {', '.join(unknown)}; known: {known}")
    chosen = [c for c in project.campaigns if not names or c.name in names]
    for note in report.notes(project):
        click.echo(note, err=True)
    click.echo(report.render_text(chosen, show_recipients))


@cli.command("schema")
@click.argument("name", type=click.Choice(schemas.NAMES), default="campaign")
def schema_command(name: str) -> None:
    """Print a JSON Schema (for editors and other tools)."""
    click.echo(schemas.schema_text(name), nl=False)


def main(argv: list[str] | None = None) -> None:
    """Entry point: user errors are one line each and exit 1; nothing but plan uses 2."""
    try:
        cli.main(args=argv, prog_name="runner", standalone_mode=False)
    except InputError as e:
        click.echo(report.problems_text(e.problems), err=True)
        sys.exit(1)
    except RunnerError as e:
        click.echo(f"runner: {e}", err=True)
        sys.exit(1)
    except click.exceptions.Abort:
        click.echo("runner: aborted", err=True)
        sys.exit(1)
    except click.ClickException as e:
        e.show()
        sys.exit(1)
    except SystemExit as e:
        sys.exit(e.code)
    except Exception:
        if "-vv" in (argv or sys.argv) or "-v" in (argv or sys.argv):
            traceback.print_exc()
        click.echo("runner: internal error; please report it with the output of `runner -v ...`",
                   err=True)
        sys.exit(1)
    sys.exit(0)
