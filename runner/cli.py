"""The command line: options in, one call out, an exit code back."""

from __future__ import annotations

import contextlib
import functools
import json
import logging
import shlex
import sys
import time
import traceback
from collections.abc import Callable
from pathlib import Path
from typing import Any

import click

from runner import operations, planfile, report, report_plan, schemas, stopping, version
from runner.errors import InputError, RunnerError, StateError
from runner.escape import json_text, terminal
from runner.progress import Progress
from runner.project import Project, load_config, load_project, parse_variables
from runner.receipts.store import ReceiptStore, open_receipts
from runner.state import Backend, State, open_state, state_location
from runner.style import Style, colour_wanted
from runner.target import EMULATOR_TARGET, Target, target_for
from runner.validate import Config
from runner.webhook import SHAPES, parse_mix, parse_script


class Settings:
    """The global options, passed down to every command; given again after it, they merge."""

    def __init__(self) -> None:
        self.root = Path(".")
        self.config_name: str | None = None
        self.state: str | None = None
        self.no_color = False
        self.verbose = 0

    def path(self, name: str) -> Path:
        """A path from the command line, relative to -C DIR as git and terraform read it.

        Read when a command runs, so the order of -C and the path's option does not matter.
        """
        return self.root / name

    @property
    def config(self) -> Path | None:
        return self.path(self.config_name) if self.config_name else None

    @functools.cached_property
    def style(self) -> Style:
        """Decided once, after every option was read (before or after the command)."""
        return Style(colour_wanted(self.no_color, sys.stdout))

    @functools.cached_property
    def error_style(self) -> Style:
        return Style(colour_wanted(self.no_color, sys.stderr))

    def project(self, variables: tuple[str, ...] = (), var_files: tuple[str, ...] = ()) -> Project:
        variables_ = parse_variables(variables, self._var_files(var_files), self.root)
        return load_project(self.root, self.config, variables_)

    def config_project(self) -> Project:
        """The config alone, without campaigns: what applying a saved plan needs."""
        config, problems = load_config(self.root, self.config)
        if problems:
            raise InputError(problems)
        return Project(config, ())

    def project_and_state(
        self, variables: tuple[str, ...] = (), var_files: tuple[str, ...] = ()
    ) -> tuple[Project, State]:
        """The state first: numbers it holds as delivered were checked then, and are not again."""
        variables_ = parse_variables(variables, self._var_files(var_files), self.root)
        _, backend = self.config_and_backend()
        state = backend.read()
        known = operations.known_digests(state)
        return load_project(self.root, self.config, variables_, known), state

    def _var_files(self, names: tuple[str, ...]) -> tuple[str, ...]:
        return tuple(str(self.path(name)) for name in names)

    def config_and_backend(self) -> tuple[Config, Backend]:
        """The state location without rendering campaigns (state commands need no files)."""
        config, problems = load_config(self.root, self.config)
        if problems:
            raise InputError(problems)
        location = state_location(self.state, config.state)
        return config, open_state(location, config.root, config.project)

    def receipts_store(self, project: str | None = None) -> ReceiptStore:
        """Where receipts are kept: beside the state this project's commands would use."""
        config, problems = load_config(self.root, self.config)
        if problems:
            raise InputError(problems)
        location = state_location(self.state, config.state)
        return open_receipts(location, config.root, project or config.project)

    def target(self, config: Config, api_url: str | None = None, emulator: bool = False) -> Target:
        """Where calls would go and which state is read: shown in every plan's header."""
        if emulator:
            return Target(*EMULATOR_TARGET)
        return target_for(config, state_location(self.state, config.state), api_url)


def _merge(ctx: click.Context, param: click.Parameter, value: Any) -> None:
    """Store one global option into the shared Settings, wherever it was given."""
    settings = ctx.ensure_object(Settings)
    if param.name == "directory" and value is not None:
        settings.root = settings.root / value  # a second -C is relative to the first, as in git
    elif param.name == "config" and value is not None:
        settings.config_name = value
    elif param.name == "state" and value is not None:
        settings.state = value
    elif param.name == "no_color" and value:
        settings.no_color = True
    elif param.name == "verbose" and value:
        settings.verbose = max(settings.verbose, 0) + value
        _log_level(settings.verbose)
    elif param.name == "quiet" and value:
        settings.verbose = -1


def _log_level(verbose: int) -> None:
    logging.getLogger().setLevel(logging.DEBUG if verbose > 1 else logging.WARNING)


GLOBAL_OPTIONS: list[tuple[tuple[str, ...], dict[str, Any]]] = [
    (("-C", "directory"), {"metavar": "DIR", "help": "Run in this project folder."}),
    (("--config",), {"metavar": "FILE", "help": "Project config (default: DIR/runner.yaml)."}),
    (("--state",), {"metavar": "LOCATION", "help": "State file or postgresql:// URL."}),
    (("--no-color",), {"is_flag": True, "help": "Never colour the output."}),
    (("-v", "--verbose"), {"count": True, "help": "More detail (repeat for debug logs)."}),
    (("-q", "--quiet"), {"is_flag": True, "help": "Only errors."}),
]


def global_params() -> list[click.Parameter]:
    return [
        click.Option(list(names), callback=_merge, expose_value=False, **settings)
        for names, settings in GLOBAL_OPTIONS
    ]


class RunnerCommand(click.Command):
    """Every command takes the global options after its name too (`runner validate -C sub`)."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.params += global_params()


class RunnerGroup(click.Group):
    """A group whose commands and subgroups take the global options too."""

    command_class = RunnerCommand
    group_class = type  # subgroups are RunnerGroups as well

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.params += global_params()


pass_settings = click.make_pass_decorator(Settings, ensure=True)

var_options = [
    click.option(
        "--var",
        "variables",
        multiple=True,
        metavar="K=V",
        help="Set a template variable (wins over files).",
    ),
    click.option(
        "--var-file",
        "var_files",
        multiple=True,
        metavar="FILE",
        help="YAML file of template variables.",
    ),
]


def with_vars(func: Callable[..., Any]) -> Callable[..., Any]:
    for option in reversed(var_options):
        func = option(func)
    return func


def _show_version(ctx: click.Context, _param: click.Parameter, value: bool) -> None:
    if value and not ctx.resilient_parsing:
        click.echo(f"runner, version {version.version()}")
        ctx.exit()


@click.group(cls=RunnerGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.option(
    "--version",
    is_flag=True,
    expose_value=False,
    is_eager=True,
    callback=_show_version,
    help="Show the version and exit.",
)
@click.pass_context
def cli(ctx: click.Context) -> None:
    """Declarative campaign runner for Octopush Voice SMS.

    Campaigns are YAML files; `plan` shows what would be sent and `apply` sends it,
    each recipient hearing each version of a message at most once.
    """
    logging.basicConfig(format="%(name)s: %(message)s", stream=sys.stderr)
    _log_level(ctx.ensure_object(Settings).verbose)


@cli.command()
@click.option(
    "--format", "fmt", type=click.Choice(["text", "json"]), default="text", show_default=True
)
@with_vars
@pass_settings
def validate(
    settings: Settings, fmt: str, variables: tuple[str, ...], var_files: tuple[str, ...]
) -> None:
    """Check every campaign file, template and recipient list; read no state, send nothing."""
    try:
        project = settings.project(variables, var_files)  # files only: no state, no database
    except InputError as e:
        if fmt == "json":
            click.echo(json.dumps(report.problems_json(e.problems), indent=2))
            raise SystemExit(1) from None
        raise
    if fmt == "json":
        click.echo(report.validate_json(project))
    else:
        click.echo(report.validate_text(project, settings.style))


@cli.command()
@click.argument("names", nargs=-1)
@click.option("--show-recipients", is_flag=True, help="Print phone numbers unmasked.")
@with_vars
@pass_settings
def render(
    settings: Settings,
    names: tuple[str, ...],
    show_recipients: bool,
    variables: tuple[str, ...],
    var_files: tuple[str, ...],
) -> None:
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


PLAN_FORMATS: dict[str, Callable[..., str]] = {
    "text": report_plan.plan_text,
    "json": report_plan.plan_json,
    "markdown": report_plan.plan_markdown,
}


@cli.command()
@click.option(
    "--format", "fmt", type=click.Choice(list(PLAN_FORMATS)), default="text", show_default=True
)
@click.option("--out", type=click.Path(dir_okay=False), help="Save the plan for `apply FILE`.")
@click.option(
    "--detailed-exitcode", is_flag=True, help="Exit 0 with no changes, 2 with changes, 1 on error."
)
@click.option("--show-recipients", is_flag=True, help="Print phone numbers unmasked.")
@with_vars
@pass_settings
def plan(
    settings: Settings,
    fmt: str,
    out: str | None,
    detailed_exitcode: bool,
    show_recipients: bool,
    variables: tuple[str, ...],
    var_files: tuple[str, ...],
) -> None:
    """Show what apply would send. Reads the state; never writes it."""
    project, state = settings.project_and_state(variables, var_files)
    target = settings.target(project.config)
    location = state_location(settings.state, project.config.state)
    result = operations.planned(project, state, receipts_at=location)
    if out:
        planfile.save_plan(result, settings.path(out), settings.root, target)
    if fmt == "text":
        click.echo(report_plan.plan_text(result, show_recipients, settings.style, target))
    else:
        click.echo(PLAN_FORMATS[fmt](result, show_recipients, target))
    if out:  # on stderr: `plan --format json --out FILE > x.json` stays one JSON document
        where = [] if settings.root == Path() else ["-C", str(settings.root)]
        again = shlex.join(["runner", *where, "apply", out])
        saved = f"Saved the plan to {settings.path(out)}; apply it with: {again}"
        click.echo(terminal(saved), err=True)
    if detailed_exitcode and result.has_changes:
        raise SystemExit(2)


@cli.command()
@click.argument("plan_file", required=False, type=click.Path(dir_okay=False))
@click.option("--auto-approve", is_flag=True, help="Do not ask for confirmation.")
@click.option(
    "--api-url", metavar="URL", help="API base (default: OCTOPUSH_API_URL or runner.yaml)."
)
@click.option(
    "--emulator",
    is_flag=True,
    help="Send to a bundled in-process emulator, with a throwaway state.",
)
@click.option("--simulate", is_flag=True, help="Send with simulation_mode; record nothing.")
@click.option("--max-cost", type=float, metavar="AMOUNT", help="Refuse if the estimate is higher.")
@click.option("--concurrency", type=click.IntRange(1, 64), default=4, show_default=True)
@click.option(
    "--format", "fmt", type=click.Choice(["text", "json"]), default="text", show_default=True
)
@with_vars
@pass_settings
def apply(
    settings: Settings,
    plan_file: str | None,
    auto_approve: bool,
    api_url: str | None,
    emulator: bool,
    simulate: bool,
    max_cost: float | None,
    concurrency: int,
    fmt: str,
    variables: tuple[str, ...],
    var_files: tuple[str, ...],
) -> None:
    """Send what the plan shows: each recipient hears each message version at most once."""
    from runner import apply as applying

    applying.refuse_plan_overrides(plan_file, simulate, variables + var_files)
    request = applying.ApplyRequest(
        settings.path(plan_file) if plan_file else None,
        auto_approve,
        api_url,
        emulator,
        simulate,
        max_cost,
        concurrency,
    )
    if not auto_approve and not sys.stdin.isatty():
        raise RunnerError(
            "no terminal to ask for confirmation; pass --auto-approve to apply "
            "without asking; nothing was sent"
        )
    # a saved plan holds its payloads: the campaign files are not read, only the config
    project = settings.config_project() if plan_file else settings.project(variables, var_files)
    target = settings.target(project.config, api_url, emulator)
    progress = Progress(enabled=settings.verbose >= 0)

    def show(shown: Any, batches: list[Any]) -> None:
        if fmt == "text" and settings.verbose >= 0:
            for line in report_plan.target_change_text(shown.saved_target, target):
                click.echo(line)
            click.echo(report_plan.plan_text(shown.plan, style=settings.style, target=target))
        progress.start(len(batches))

    def confirm() -> bool:
        answer = click.prompt(
            "Send these calls? Only 'yes' is accepted", default="", show_default=False, err=True
        )
        return bool(answer == "yes")

    try:
        result = applying.run_apply(
            request, project, settings.state, show, confirm, progress.step, target
        )
    finally:
        progress.close()
    if result is None:
        return
    click.echo(
        json_text(json.dumps(report.apply_summary(result), indent=2))
        if fmt == "json"
        else report.apply_text(result, settings.style)
    )
    if result.interrupted:  # folded and said; a request left hanging must not delay the exit
        if result.state_error:
            click.echo(f"runner: {result.state_error}; sending stopped", err=True)
        stopping.leave(1)
    if result.state_error:  # the summary above says what was sent; this says why it stopped
        raise StateError(f"{result.state_error}; sending stopped")
    if not result.ok:
        raise SystemExit(1)


@cli.command("status")
@click.argument("names", nargs=-1)
@click.option(
    "--format",
    "fmt",
    type=click.Choice(["text", "json", "markdown"]),
    default="text",
    show_default=True,
)
@pass_settings
def status(settings: Settings, names: tuple[str, ...], fmt: str) -> None:
    """What became of the calls: receipts per campaign and message (no lock taken)."""
    from runner import report_status

    config, backend = settings.config_and_backend()
    location = state_location(settings.state, config.state)
    found = operations.status(config, backend, location, names)
    click.echo(report_status.STATUS_FORMATS[fmt](found))


@cli.command("emulator")
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", type=int, default=8099, show_default=True)
@click.option("--credit", type=float, default=1000.0, show_default=True)
@click.option("--latency", type=float, default=0.0, help="Seconds added to every answer.")
@click.option("--rate-429", type=float, default=0.0, help="Share of 429 answers.")
@click.option("--rate-500-before", type=float, default=0.0, help="Share of 500 before processing.")
@click.option("--rate-500-after", type=float, default=0.0, help="Share of 500 after accepting.")
@click.option(
    "--rate-drop-after",
    type=float,
    default=0.0,
    help="Share of connections dropped after accepting.",
)
@click.option("--retry-after", type=int, default=1, show_default=True)
@click.option("--seed", type=int, help="Seed for the fault draws.")
@click.option(
    "--record", type=click.Path(dir_okay=False), help="JSON-lines file of accepted sends."
)
@click.option(
    "--remember",
    type=click.Path(dir_okay=False),
    help="A --record file of earlier sends whose request_ids are refused as repeats.",
)
@click.option("--clock-offset", type=float, default=0.0, metavar="SECONDS", help="Move the clock.")
@click.option("--refuse-cancels", is_flag=True, help="Refuse every voice-campaign/cancel.")
@click.option("--drop-cancel-answers", is_flag=True, help="Cancel, then drop the answer.")
@click.option("--login", help="Accept only this api-login (default: any).")
@click.option("--key", help="Accept only this api-key (default: any).")
@click.option("--webhook", metavar="URL", help="POST a delivery receipt per number called here.")
@click.option(
    "--receipts",
    default="DELIVERED=1",
    show_default=True,
    metavar="MIX",
    callback=lambda _c, _p, v: _checked_receipts(parse_mix, v),
    help="Status mix of the receipts, e.g. DELIVERED=0.8,BUSY=0.1,NOT_DELIVERED=0.1.",
)
@click.option(
    "--receipts-for",
    multiple=True,
    metavar="+NUMBER=STATUS,...",
    callback=lambda _c, _p, v: _checked_receipts(parse_script, v),
    help="Statuses of this number's calls in turn, the last one repeated (for tests).",
)
@click.option("--receipt-delay", type=float, default=1.0, show_default=True, metavar="SECONDS")
@click.option(
    "--receipt-shape",
    type=click.Choice(["mixed", *SHAPES]),
    default="mixed",
    show_default=True,
    help="Body of the receipts: JSON or form, old or new shape; mixed draws one per receipt.",
)
def emulator_command(**options: Any) -> None:
    """Run a local Octopush API emulator (any credentials are accepted unless given)."""
    from runner.emulator import Emulator, EmulatorOptions

    server = Emulator(EmulatorOptions(**options)).bind()
    click.echo(f"Octopush emulator listening on {server.url} (Ctrl-C to stop)", err=True)
    with contextlib.suppress(KeyboardInterrupt):
        server.serve_forever()


def _checked_receipts(parse: Callable[[Any], Any], value: Any) -> Any:
    """Refused at the command line, in one line, rather than when the first call is made."""
    try:
        parse(value)
    except ValueError as e:
        raise click.BadParameter(str(e)) from None
    return value


@cli.group()
def state() -> None:
    """Inspect and mend the state (what has been delivered)."""


@state.command("list")
@pass_settings
def state_list(settings: Settings) -> None:
    """Campaigns in the state, with delivered and pending counts."""
    _, backend = settings.config_and_backend()
    click.echo(report.state_list(backend.read()))


@state.command("show")
@click.argument("name")
@pass_settings
def state_show(settings: Settings, name: str) -> None:
    """One campaign's messages, sends and pending intents."""
    _, backend = settings.config_and_backend()
    click.echo(report.state_show(backend.read(), name, time.time()))


@state.command("forget")
@click.argument("name")
@pass_settings
def state_forget(settings: Settings, name: str) -> None:
    """Drop a campaign from the state: its recipients would be called again."""
    _, backend = settings.config_and_backend()
    click.echo(operations.forget(backend, name))


@state.command("accept")
@click.argument("name")
@with_vars
@pass_settings
def state_accept(
    settings: Settings, name: str, variables: tuple[str, ...], var_files: tuple[str, ...]
) -> None:
    """Record the campaign's current files as delivered, without sending (a baseline)."""
    project = settings.project(variables, var_files)
    click.echo(operations.accept(operations.backend_for(project, settings.state), project, name))


@state.command("resolve")
@click.argument("name")
@click.option("--sent", "verdict", flag_value="sent", help="The provider did send them.")
@click.option("--not-sent", "verdict", flag_value="not-sent", help="The provider never sent them.")
@click.option(
    "--request-id",
    "request_ids",
    multiple=True,
    metavar="ID",
    help="The pending send to settle (repeatable; `state show NAME` lists them).",
)
@click.option("--all", "every", is_flag=True, help="One verdict for every pending send.")
@pass_settings
def state_resolve(
    settings: Settings,
    name: str,
    verdict: str | None,
    request_ids: tuple[str, ...],
    every: bool,
) -> None:
    """Settle sends whose outcome is unknown, after checking with the provider."""
    if verdict is None:
        raise RunnerError("say what happened: --sent or --not-sent")
    _, backend = settings.config_and_backend()
    click.echo(operations.resolve(backend, name, verdict == "sent", request_ids, every))


COPY_FORCE = click.option(
    "--force", is_flag=True, help="Overwrite another lineage or a newer serial there."
)


@state.command("push")
@click.argument("location")
@COPY_FORCE
@pass_settings
def state_push(settings: Settings, location: str, force: bool) -> None:
    """Copy the whole state to LOCATION (a file or a postgresql:// URL)."""
    config, backend = settings.config_and_backend()
    other = open_state(location, config.root, config.project)
    click.echo(operations.copy_state(backend, other, force))


@state.command("pull")
@click.argument("location")
@COPY_FORCE
@pass_settings
def state_pull(settings: Settings, location: str, force: bool) -> None:
    """Copy the whole state from LOCATION (a file or a postgresql:// URL) into this one."""
    config, backend = settings.config_and_backend()
    other = open_state(location, config.root, config.project)
    click.echo(operations.copy_state(other, backend, force))


@cli.group()
def receipts() -> None:
    """Delivery receipts: the webhook receiver the provider calls."""


@receipts.command("serve")
@click.option("--host", default="127.0.0.1", show_default=True, help="Address to listen on.")
@click.option("--port", type=click.IntRange(1, 65535), default=8090, show_default=True)
@click.option("--project", metavar="KEY", help="Project key in a shared PostgreSQL state.")
@pass_settings
def receipts_serve(settings: Settings, host: str, port: int, project: str | None) -> None:
    """Receive the provider's receipts at /receipts/$RUNNER_RECEIPTS_TOKEN, beside the state."""
    try:
        from runner.receipts import server
    except ModuleNotFoundError as e:
        if (e.name or "").split(".")[0] not in ("starlette", "uvicorn"):
            raise
        raise RunnerError(
            "the receipts receiver needs its extra: pip install 'voice-campaign-runner[receipts]'"
        ) from None
    token = server.token_from_environment()
    server.serve(settings.receipts_store(project), token, server.Listen(host, port))


@cli.command("init")
@click.argument("folder", default=".", required=False, metavar="[DIR]")
@pass_settings
def init_command(settings: Settings, folder: str) -> None:
    """Create a starting project in DIR (default: here); overwrites nothing."""
    from runner import starter

    answers = starter.Answers()
    if sys.stdin.isatty() and sys.stdout.isatty():  # without a terminal, ask nothing
        answers = starter.Answers(
            click.prompt("Default region for national numbers (ISO code)", default="US"),
            click.prompt("Voice language", default="en-US"),
        )
    target = settings.path(folder)
    created = starter.create_project(target, answers)
    click.echo(report.init_text(target, created))


@cli.command("force-unlock")
@click.argument("lock_id")
@pass_settings
def force_unlock(settings: Settings, lock_id: str) -> None:
    """Remove a state lock whose holder is gone."""
    _, backend = settings.config_and_backend()
    click.echo(operations.force_unlock(backend, lock_id))


@cli.command("schema")
@click.argument("name", type=click.Choice(schemas.NAMES), default="campaign")
def schema_command(name: str) -> None:
    """Print a JSON Schema (for editors and other tools)."""
    click.echo(schemas.schema_text(name), nl=False)


def main(argv: list[str] | None = None) -> None:
    """Entry point: user errors are one line each and exit 1; nothing but plan uses 2."""
    settings = Settings()  # shared with the commands, so errors know the colour decision
    try:
        cli.main(args=argv, prog_name="runner", standalone_mode=False, obj=settings)
    except InputError as e:
        click.echo(report.problems_text(e.problems, settings.error_style), err=True)
        sys.exit(1)
    except RunnerError as e:
        click.echo(settings.error_style.error(f"runner: {terminal(str(e))}"), err=True)
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
        if settings.verbose > 0:
            traceback.print_exc()
        click.echo(
            "runner: internal error; please report it with the output of `runner -v ...`", err=True
        )
        sys.exit(1)
    sys.exit(0)
