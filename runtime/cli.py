"""The `flow` command: parse arguments with click, then make one library call per subcommand."""

from __future__ import annotations

import os
import sys

from . import collector

_COLLECTING = collector.hold()  # importing click and defining the commands make no garbage (collector.py)

import click  # noqa: E402

EXIT_INTERRUPTED = 130  # as session.EXIT_INTERRUPTED; not imported from there, to keep start-up light
VERSION = "0.1.0"
COMMANDS = ("build", "lint", "graph", "list", "clean", "status", "log", "db", "serve", "config")
FLOWFILE_HELP = "the Flowfile to read (default: ./Flowfile)"


def _today_option(function):
    return click.option("--today", metavar="DATE", help="the build's date for ranges relative to today and for "
                        "open periods (default: FLOW_TODAY, else the clock)")(function)


def _make_clock(today):
    from .clock import build_clock

    return lambda timezone: build_clock(timezone, today)


def _format_option(function):
    return click.option("--format", "fmt", type=click.Choice(["text", "json"]), default="text", show_default=True,
                        help="json: one JSON document on stdout (docs/machine-output.md)")(function)


def _flowfile_option(function):
    return click.option("-f", "--file", "flowfile", default="Flowfile", show_default=True, metavar="PATH",
                        help=FLOWFILE_HELP)(function)


@click.group(context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100})
@click.version_option(VERSION, "--version", prog_name="flow", message="%(prog)s %(version)s")
def cli():
    """flow builds dated data partitions from a Flowfile, like make, the way Luigi thinks.

    \b
    A task is complete when its output exists; complete tasks never run again.
    `flow` alone builds the Flowfile's default target; `flow TARGET...` builds
    those targets; `flow --dry-run` shows what would run.

    \b
    TARGET is a named target (toplists_2012), an output file name
    (top_artists_2012-06.tsv) or path, or a call: top_artists(2012-06).

    \b
    Exit codes: 0 every target complete; 1 a task failed; 2 usage or Flowfile
    error; 3 an external input is missing; 130 interrupted.
    """


@cli.command()
@click.argument("targets", nargs=-1, metavar="[TARGET]...")
@_flowfile_option
@click.option("-n", "--dry-run", is_flag=True, help="show what would run, in order, and run nothing")
@click.option("-j", "--jobs", type=click.IntRange(1, 512), metavar="N",
              help="tasks to run at once (default 1, or `jobs` in the settings: flow config)")
@click.option("-k/-K", "--keep-going/--no-keep-going", default=None,
              help="after a failure, go on with everything that does not need it (default: `keep_going` setting)")
@click.option("--force", is_flag=True, help="rerun the named targets even if their outputs exist")
@click.option("--force-upstream", is_flag=True, help="also rerun everything they require (not external rules)")
@click.option("--no-wait", is_flag=True, help="skip tasks another flow is running instead of waiting for them")
@click.option("--spark-master", metavar="URL", help="Spark master for spark actions (overrides the Flowfile)")
@click.option("-q", "--quiet", is_flag=True, help="print only failures and the summary")
@click.option("-v", "--verbose", is_flag=True, help="print every task as it starts and ends")
@_today_option
@click.option("--allow-open", is_flag=True, help="build tasks whose date, hour or interval has not ended yet")
@click.option("--max-tasks", type=click.IntRange(0), metavar="N",
              help="refuse to plan more than N tasks (default 1,000,000, FLOW_MAX_TASKS or `max_tasks` setting;"
              " 0: no limit)")
@click.option("--resources", metavar="NAME=N,...",
              help="resource limits, over FLOW_RESOURCES and the Flowfile's (e.g. postgres=2,memory=16)")
@click.option("--format", "fmt", type=click.Choice(["text", "json"]), default="text", show_default=True,
              help="with --dry-run, json prints the plan as one JSON document (docs/machine-output.md)")
@click.option("--events", metavar="FILE",
              help="write the build's events to FILE as JSON lines (docs/machine-output.md)")
def build(targets, flowfile, dry_run, jobs, keep_going, force, force_upstream, no_wait, spark_master, quiet, verbose,
          today, allow_open, max_tasks, resources, fmt, events):
    """Build TARGETs (default: the Flowfile's `default:` target)."""
    if fmt == "json" and not dry_run:
        raise click.UsageError("--format json needs --dry-run (a build's events go to --events FILE)")
    if events and dry_run:
        raise click.UsageError("--events records a build: a dry run has none")
    collector.hold()  # from here to the build's first task (build.py gives it back; on_project at the latest)
    from .commands.build import BuildOptions, run_build

    options = BuildOptions(
        flowfile=flowfile, targets=list(targets), dry_run=dry_run, jobs=jobs, keep_going=keep_going,
        force=force or force_upstream, force_upstream=force_upstream, wait=not no_wait,
        spark_master=spark_master, quiet=quiet, verbose=verbose, today=today, allow_open=allow_open,
        max_tasks=max_tasks, resources=resources, fmt=fmt, events=events,
    )
    try:
        code = run_build(options)
    finally:  # also when the build stops before loading the Flowfile (an --events file it cannot write)
        collector.release()
    sys.exit(code)


@cli.command()
@_flowfile_option
@click.option("--format", "fmt", type=click.Choice(["text", "json", "github"]), default="text", show_default=True,
              help="text for people, json for tools, github for GitHub Actions annotations")
def lint(flowfile, fmt):
    """Check a Flowfile: exit 0 when clean, 1 when problems are found, 2 when it cannot be read."""
    from .commands.lint import run_lint

    sys.exit(run_lint(flowfile, fmt))


@cli.command()
@click.argument("targets", nargs=-1, metavar="[TARGET]...")
@_flowfile_option
@click.option("--format", "fmt", type=click.Choice(["dot", "mermaid", "json"]), default="dot", show_default=True)
@_today_option
def graph(targets, flowfile, fmt, today):
    """Print the task graph of TARGETs, or the rule graph when no target is given."""
    from .commands.graph import run_graph

    sys.exit(run_graph(flowfile, list(targets), fmt, make_clock=_make_clock(today)))


@cli.command(name="list")
@_flowfile_option
@_today_option
@_format_option
def list_(flowfile, today, fmt):
    """List rules, targets and ranges (those relative to today resolved) with their doc strings."""
    from .commands.graph import run_list

    sys.exit(run_list(flowfile, make_clock=_make_clock(today), fmt=fmt))


@cli.command()
@click.argument("targets", nargs=-1, required=True, metavar="TARGET...")
@_flowfile_option
@click.option("--upstream", is_flag=True, help="also delete what the targets require (not external rules)")
@click.option("--downstream", is_flag=True,
              help="also delete everything built from them (within the Flowfile's named targets)")
@click.option("--table-markers", is_flag=True,
              help="for table outputs, delete their marker rows (the rows stay) so their tasks run again")
@click.option("-y", "--yes", is_flag=True, help="do not ask for confirmation")
@_today_option
def clean(targets, flowfile, upstream, downstream, table_markers, yes, today):
    """Delete the outputs of TARGETs so that the next build makes them again."""
    from .commands.clean import run_clean

    sys.exit(run_clean(flowfile, list(targets), upstream=upstream, assume_yes=yes, today=today,
                       downstream=downstream, table_markers=table_markers))


@cli.command()
@click.argument("targets", nargs=-1, metavar="[TARGET]...")
@_flowfile_option
@_today_option
@_format_option
def status(targets, flowfile, today, fmt):
    """Show the dependency tree of TARGETs: complete, missing, failed last time."""
    from .commands.status import run_status

    sys.exit(run_status(flowfile, list(targets), today=today, fmt=fmt))


@cli.command()
@_flowfile_option
@click.option("-n", "--runs", "limit", default=10, show_default=True, type=click.IntRange(1),
              help="how many recent runs to show")
@click.option("--prune", "keep", type=click.IntRange(0), metavar="N",
              help="delete the history of all but the newest N runs instead")
@_format_option
def log(flowfile, limit, keep, fmt):
    """Show recent runs and their failed tasks (or prune the history)."""
    from .commands.status import run_log

    sys.exit(run_log(flowfile, limit, keep, fmt))


@cli.group()
def db():
    """The project's PostgreSQL: its URL, a psql shell, the embedded server.

    \b
    With no database configured (FLOW_DATABASE_URL, the Flowfile's database:,
    or libpq's PG* variables), flow runs an embedded PostgreSQL under .flow/db,
    started when a build needs it and stopped when flow exits.
    """


@db.command()
@_flowfile_option
def url(flowfile):
    """Print the URL to connect with (for psql, a notebook or a BI tool)."""
    from .commands.db import run_url

    sys.exit(run_url(flowfile))


@db.command(context_settings={"ignore_unknown_options": True})
@_flowfile_option
@click.option("-c", "--command", "sql", metavar="SQL", help="run one query and exit")
@click.argument("psql_args", nargs=-1, type=click.UNPROCESSED, metavar="[PSQL ARGS]...")
def shell(flowfile, sql, psql_args):
    """Open psql on the project's database (-c SQL: run one query)."""
    from .commands.db import run_shell

    sys.exit(run_shell(flowfile, sql, list(psql_args)))


@db.command()
@_flowfile_option
def start(flowfile):
    """Start the embedded server and keep it up until `flow db stop`."""
    from .commands.db import run_start

    sys.exit(run_start(flowfile))


@db.command()
@_flowfile_option
def stop(flowfile):
    """Stop the embedded server (when no running flow uses it)."""
    from .commands.db import run_stop

    sys.exit(run_stop(flowfile))


@cli.command()
@_flowfile_option
@click.option("--format", "fmt", type=click.Choice(["text", "json"]), default="text", show_default=True)
def config(flowfile, fmt):
    """Show every setting, its value and where it came from (settings files, environment, default)."""
    from .commands.config import run_config

    sys.exit(run_config(flowfile, fmt))


@cli.command()
@_flowfile_option
@click.option("--host", default="127.0.0.1", show_default=True, help="address to listen on (0.0.0.0 for every one)")
@click.option("--port", default=8082, show_default=True, type=click.IntRange(0, 65535), help="port (0: any free one)")
def serve(flowfile, host, port):
    """Serve a live read-only page of the runs, tasks and graph, with JSON endpoints (needs flow[web])."""
    from .web.serve import run_serve

    sys.exit(run_serve(flowfile, host, port))


if _COLLECTING:  # what start-up made lives until flow exits: no pass needs to walk it again (collector.py)
    collector.release(freeze=True)


def _route(args: list) -> list:
    """`flow`, `flow TARGET...` and `flow --dry-run` mean `flow build ...`."""
    if any(a in ("-h", "--help", "--version") for a in args) and not any(a in COMMANDS for a in args):
        return args
    takes_value = {"-f", "--file", "-j", "--jobs", "--spark-master", "--format", "--max-tasks", "--today", "--host",
                   "--port", "--events"}
    skip = False
    for index, arg in enumerate(args):
        if skip:
            skip = False
        elif arg in takes_value:
            skip = True
        elif not arg.startswith("-"):
            if arg in COMMANDS:  # `flow -f other/Flowfile lint`: options given before the command
                return [arg] + args[:index] + args[index + 1:]
            return ["build"] + args
    return ["build"] + args


def main(argv=None) -> None:
    args = list(sys.argv[1:] if argv is None else argv)
    # Not click's standalone mode: it turns Ctrl-C into "Aborted!" and exit 1, and the README
    # promises 130 at any moment (planning included).
    try:
        code = cli.main(args=_route(args), prog_name="flow", standalone_mode=False)
    except (click.exceptions.Abort, KeyboardInterrupt):  # Abort is click's name for a Ctrl-C it caught
        _exit(EXIT_INTERRUPTED)
    except click.ClickException as exc:
        exc.show()
        _exit(exc.exit_code)
    except BrokenPipeError:  # `flow list | head`: the reader left, nothing more to say
        _exit(1)
    _exit(code if isinstance(code, int) else 0)


def _exit(code: int) -> None:
    """sys.exit(code), and a Ctrl-C from now on exits 130 too.

    The interpreter's exit still runs clean-ups (workers, the watchdog); a KeyboardInterrupt raised
    in them is caught by nothing and would end flow by SIGINT instead of with 130.
    """
    import signal

    try:
        signal.signal(signal.SIGINT, _interrupted_while_exiting)
    except ValueError:  # not the main thread (flow called from a program's thread): nothing to protect
        pass
    sys.exit(code)


def _interrupted_while_exiting(signum, frame) -> None:
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except (OSError, ValueError):
            pass
    os._exit(EXIT_INTERRUPTED)


if __name__ == "__main__":
    main()
