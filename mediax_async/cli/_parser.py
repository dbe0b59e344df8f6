"""The ``mediax`` argument parser: global options, one subcommand per action."""

from __future__ import annotations

import argparse
import importlib.metadata
from collections.abc import Callable

from .._constants import DEFAULT_WAITER_LEASE
from .._enums import (
    BgmOutputType,
    HummingOutputType,
    MusicSeparateMethod,
    SongEmotion,
    SongGenre,
    SongType,
    WireEnum,
)
from .._exceptions import RequestValidationError
from .._models import Input, Source
from ._help import BATCH_DESCRIPTION, RESULTS_HELP, batch_kinds_help
from ._stores import DEFAULT_NAMESPACE

DEFAULT_LEASE = DEFAULT_WAITER_LEASE

__all__ = [
    "EXIT_CLOSED_PIPE",
    "EXIT_CODES",
    "EXIT_CONFIG",
    "EXIT_INTERRUPTED",
    "EXIT_JOB_FAILED",
    "EXIT_OK",
    "EXIT_SERVICE",
    "EXIT_TERMINATED",
    "EXIT_USAGE",
    "JOB_COMMANDS",
    "build_parser",
    "parse_address",
    "parse_input",
    "parse_port",
]

EXIT_OK = 0
EXIT_JOB_FAILED = 1
EXIT_USAGE = 2
EXIT_CONFIG = 3
EXIT_SERVICE = 4
EXIT_INTERRUPTED = 130
EXIT_CLOSED_PIPE = 141
EXIT_TERMINATED = 143

EXIT_CODES = f"""\
exit codes:
  {EXIT_OK}    every job completed (or the command succeeded)
  {EXIT_JOB_FAILED}    some job ended ERROR or CANCELED (get, wait, --wait, batch)
  {EXIT_USAGE}    usage: bad arguments or port, a bad request or batch line, a missing file
  {EXIT_CONFIG}    credentials or configuration (missing or rejected credentials, bad base URL)
  {EXIT_SERVICE}    network or service (no answer, an error answer), or a wait ran out of time
         (--max-wait: the jobs that ended are still shown)
  {EXIT_INTERRUPTED}  interrupted (Ctrl-C); a batch keeps its finished lines: run it again to resume
  {EXIT_CLOSED_PIPE}  stdout was closed (e.g. piped into head): stopped quietly
  {EXIT_TERMINATED}  terminated (SIGTERM): handled as Ctrl-C

environment:
  MEDIAX_SECRET_ID, MEDIAX_SECRET_KEY   credentials
  MEDIAX_BASE_URL                       the service (default https://api.mediax.tencent.com)
  MEDIAX_CALLBACK_TOKEN                 the secret in callback URLs (listen, batch --listen)
"""

JOB_COMMANDS = {
    "image-to-music": "image_to_music",
    "humming": "humming",
    "singing": "singing",
    "singing-train": "singing_training",
    "separate": "separation",
}
"""Job subcommands and the batch kind (builder) each one uses."""


def version() -> str:
    """The installed mediax-async's version."""
    try:
        return importlib.metadata.version("mediax-async")
    except importlib.metadata.PackageNotFoundError:  # pragma: no cover - run from a bare tree
        return "unknown"


def enum_type(enum: type[WireEnum]) -> Callable[[str], WireEnum]:
    """An argparse type: a member by name, any case (``happy``), or by number."""

    def parse(text: str) -> WireEnum:
        if text.strip().isdigit():
            member = enum(int(text))
            if member.is_known:
                return member
        try:
            return enum.parse_name(text)
        except ValueError as exc:
            raise argparse.ArgumentTypeError(str(exc)) from None

    parse.__name__ = enum.__name__
    return parse


def _choices(enum: type[WireEnum]) -> str:
    return "{" + ",".join(name.lower() for name in enum.__members__) + "}"


def parse_input(text: str) -> str | Source:
    """An input argument: a URL, or ``REPO:PATH`` for a file in a storage repository."""
    if "://" in text:
        return text
    repository, colon, path = text.partition(":")
    if colon and repository and path:
        return Source(content_id=repository, path=path)
    raise argparse.ArgumentTypeError(f"expected a URL or REPO:PATH, got {text!r}")


def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a whole number, got {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected a number >= 1, got {value}")
    return value


def _positive_float(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number, got {text!r}") from None
    if not value > 0:
        raise argparse.ArgumentTypeError(f"expected a number > 0, got {text}")
    return value


def parse_port(text: str) -> int:
    """A ``--port`` value: 0 (any free port) to 65535."""
    if not text.strip().isdigit() or int(text) > 65535:
        raise argparse.ArgumentTypeError(f"expected a port from 0 to 65535, got {text!r}")
    return int(text)


def _text_input(text: str) -> Input:
    """``--text``: what to sing, at most 512 characters."""
    try:
        return Input(source_data=text)
    except RequestValidationError as exc:
        raise argparse.ArgumentTypeError(exc.message) from None


def parse_address(text: str) -> tuple[str, int]:
    """A ``--listen`` address: ``PORT``, ``HOST:PORT`` or ``[IPV6]:PORT`` (host 127.0.0.1)."""
    host, colon, port = text.rpartition(":")
    if not colon:
        host, port = "127.0.0.1", text
    elif not host:
        host = "127.0.0.1"
    if host.startswith("[") and host.endswith("]"):
        host = host[1:-1]
    elif ":" in host:
        host = ""  # an IPv6 address needs brackets: [::1]:8080
    if not host or not port.isdigit() or int(port) > 65535:
        raise argparse.ArgumentTypeError(f"expected [HOST:]PORT, got {text!r}")
    return host, int(port)


def _callback_options(parser: argparse.ArgumentParser) -> argparse._ArgumentGroup:
    group = parser.add_argument_group("callbacks")
    group.add_argument(
        "--public-url",
        metavar="URL",
        help="where the service reaches this server, e.g. https://hooks.example.com "
        "(default: the address it listens on)",
    )
    group.add_argument(
        "--token",
        help="the secret in the callback URL, 16+ URL-safe characters "
        "(default: $MEDIAX_CALLBACK_TOKEN, else a fresh random one)",
    )
    return group


def _store_options(parser: argparse.ArgumentParser, *, required: bool, lease: bool = True) -> None:
    group = parser.add_argument_group("shared state")
    group.add_argument(
        "--store",
        required=required,
        metavar="URL",
        help="keep the state in Redis (redis://host:port/db) so other processes share it",
    )
    group.add_argument(
        "--namespace",
        default=DEFAULT_NAMESPACE,
        help=f"the store's namespace: its keys, its batch (default {DEFAULT_NAMESPACE})",
    )
    if lease:
        group.add_argument(
            "--lease",
            type=_positive_float,
            default=DEFAULT_LEASE,
            metavar="SECONDS",
            help="how long a claim on a job or a submission outlives a process that died "
            f"(default {DEFAULT_LEASE:g})",
        )


def _common() -> argparse.ArgumentParser:
    """Options every command takes, before or after its name."""
    common = argparse.ArgumentParser(add_help=False)
    group = common.add_argument_group("global options")
    # SUPPRESS: a subcommand's copy does not overwrite a value given before its name.
    group.add_argument(
        "--json", action="store_true", default=argparse.SUPPRESS, help="machine-readable JSON"
    )
    group.add_argument(
        "--debug",
        action="store_true",
        default=argparse.SUPPRESS,
        help="log requests and show tracebacks",
    )
    group.add_argument(
        "--base-url",
        default=argparse.SUPPRESS,
        metavar="URL",
        help="the service (default: $MEDIAX_BASE_URL, else the current host)",
    )
    return common


def _job_options(parser: argparse.ArgumentParser, *, repository: bool = True) -> None:
    group = parser.add_argument_group("job options")
    if repository:
        group.add_argument("--content-id", required=True, help="the storage repository to write to")
        group.add_argument("--destination", help="the folder in the repository (default /)")
    group.add_argument(
        "--prefix", dest="output_prefix", help="file name prefix (under 20 characters)"
    )
    group.add_argument("--custom-id", help="your own id for the job (not unique)")
    group.add_argument("--callback", metavar="URL", help="URL the service calls when it ends")
    group.add_argument(
        "--timeout", type=_positive_int, metavar="SECONDS", help="the job ends ERROR after this"
    )
    group.add_argument("--wait", action="store_true", help="watch the job until it ends")
    group.add_argument(
        "--max-wait",
        type=_positive_float,
        metavar="SECONDS",
        help="with --wait: give up watching after this long",
    )
    _give_up_option(group)


GIVE_UP_AFTER = 60.0
"""Seconds of nothing but failed polls after which a command's wait ends (exit 4)."""


def _give_up_option(group: argparse._ArgumentGroup | argparse.ArgumentParser) -> None:
    group.add_argument(
        "--give-up-after",
        type=_positive_float,
        default=GIVE_UP_AFTER,
        metavar="SECONDS",
        help="end the wait (exit 4) once the service has not answered for this long "
        f"(default {GIVE_UP_AFTER:g})",
    )


def _add_job_commands(
    commands: argparse._SubParsersAction[argparse.ArgumentParser], common: argparse.ArgumentParser
) -> None:
    def job_parser(
        name: str, help: str, input_name: str, input_help: str
    ) -> argparse.ArgumentParser:
        parser = commands.add_parser(name, help=help, description=help, parents=[common])
        parser.add_argument(input_name, type=parse_input, help=input_help)
        return parser

    image = job_parser(
        "image-to-music", "write songs for an image", "image", "image URL or REPO:PATH"
    )
    image.add_argument("--song-quantity", type=_positive_int, default=1, help="1..100")
    image.add_argument(
        "--output-type", type=enum_type(BgmOutputType), metavar=_choices(BgmOutputType)
    )
    image.add_argument("--emotion", type=enum_type(SongEmotion), metavar=_choices(SongEmotion))
    image.add_argument("--genre", type=enum_type(SongGenre), metavar=_choices(SongGenre))
    image.add_argument("--song-type", type=enum_type(SongType), metavar=_choices(SongType))
    _job_options(image)

    humming = job_parser(
        "humming", "compose songs from a hummed tune", "humming", "recording URL or REPO:PATH"
    )
    humming.add_argument("--song-quantity", type=_positive_int, default=1, help="1..100")
    humming.add_argument(
        "--use-sieve", action=argparse.BooleanOptionalAction, help="filter weak results"
    )
    humming.add_argument(
        "--output-type", type=enum_type(HummingOutputType), metavar=_choices(HummingOutputType)
    )
    _job_options(humming)

    singing = commands.add_parser(
        "singing",
        help="sing a song (or a text) with a voice model",
        description="Sing a song, or a text (--text), with a voice model.",
        parents=[common],
    )
    what = singing.add_mutually_exclusive_group(required=True)
    what.add_argument("song", nargs="?", type=parse_input, help="song URL or REPO:PATH")
    what.add_argument(
        "--text",
        type=_text_input,
        metavar="TEXT",
        help="sing this text instead of a song (at most 512 characters; sourceData)",
    )
    singing.add_argument("--model-name", default="default", help="'default' or a trained model")
    singing.add_argument(
        "--use-separate",
        action=argparse.BooleanOptionalAction,
        help="extract the dry vocals from a mixed song first",
    )
    _job_options(singing)

    train = commands.add_parser(
        "singing-train",
        help="train a new voice model",
        description="Train a new voice model on one or more recordings.",
        parents=[common],
    )
    train.add_argument(
        "recordings", nargs="+", type=parse_input, help="recording URLs or REPO:PATHs"
    )
    train.add_argument("--model-name", required=True, help="the new model's name (unique)")
    train.add_argument("--total-epoch", type=_positive_int, help="training epochs (<= 50)")
    train.add_argument("--use-separate", action=argparse.BooleanOptionalAction)
    _job_options(train, repository=False)

    separate = job_parser("separate", "split a song into stems", "song", "song URL or REPO:PATH")
    separate.add_argument(
        "--method",
        type=enum_type(MusicSeparateMethod),
        default=MusicSeparateMethod.TWO_STEMS,
        metavar=_choices(MusicSeparateMethod),
    )
    _job_options(separate)


def build_parser() -> argparse.ArgumentParser:
    """The whole ``mediax`` command line."""
    common = _common()
    parser = argparse.ArgumentParser(
        prog="mediax",
        description="Submit and watch Tencent Media Lab MediaX music jobs.",
        epilog=EXIT_CODES,
        formatter_class=argparse.RawDescriptionHelpFormatter,
        parents=[common],
    )
    parser.add_argument("--version", action="version", version=f"mediax {version()}")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND")

    demo = commands.add_parser(
        "demo",
        help="run a batch against an in-process fake service (no credentials, no network)",
        parents=[common],
    )
    demo.add_argument(
        "--speed", type=_positive_float, default=6.0, help="fake time runs this much faster"
    )
    demo.add_argument("--seed", type=int, default=0, help="the fake's random seed")

    _add_job_commands(commands, common)

    get = commands.add_parser("get", help="show one job", parents=[common])
    get.add_argument("job_id", metavar="ID")

    jobs = commands.add_parser("jobs", help="list the jobs with a custom id", parents=[common])
    jobs.add_argument("--custom-id", required=True)

    models = commands.add_parser("models", help="list singing voice models", parents=[common])
    models.add_argument("--all", action="store_true", help="every page")
    models.add_argument("--offset", type=int, default=0)
    models.add_argument("--limit", type=_positive_int, default=10, help="1..100")

    wait = commands.add_parser("wait", help="watch jobs until they end", parents=[common])
    wait.add_argument("job_ids", nargs="+", metavar="ID")
    wait.add_argument("--max-wait", type=_positive_float, metavar="SECONDS")
    _give_up_option(wait)

    batch = commands.add_parser(
        "batch",
        help="run a JSON Lines file of jobs (resumable)",
        description=BATCH_DESCRIPTION,
        epilog=batch_kinds_help(),
        formatter_class=argparse.RawDescriptionHelpFormatter,
        parents=[common],
    )
    batch.add_argument("file", metavar="FILE")
    batch.add_argument("--results", metavar="OUT.jsonl", help=RESULTS_HELP)
    batch.add_argument(
        "--check",
        action="store_true",
        help="check every line and exit, sending nothing (exit 2 if a line is bad)",
    )
    batch.add_argument("--concurrency", type=_positive_int, default=8, help="submissions at once")
    _callback_options(batch).add_argument(
        "--listen",
        type=parse_address,
        metavar="[HOST:]PORT",
        help="take the jobs' callbacks on this address while the batch runs "
        "(polling becomes a slow fallback; --public-url and --token apply)",
    )

    _store_options(batch, required=False)

    worker = commands.add_parser(
        "worker",
        help="share the polling of a batch whose state is in a store",
        description=(
            "Join the processes that watch the jobs of a --store (a batch run with "
            "`mediax batch FILE --store URL`, or other workers): claim due jobs, poll them, "
            "take over submissions whose process died. Runs until Ctrl-C; prints one line "
            "per job it settles (--json: one JSON object per line)."
        ),
        parents=[common],
    )
    _store_options(worker, required=True)
    worker.add_argument("--concurrency", type=_positive_int, default=8, help="polls at once")

    status = commands.add_parser(
        "status",
        help="count a store's jobs by state",
        description="Jobs being submitted, watched (by last seen state) and settled (by state).",
        parents=[common],
    )
    _store_options(status, required=True, lease=False)

    listen = commands.add_parser(
        "listen",
        help="receive job callbacks over HTTP and print each job",
        description=(
            "Serve a callback receiver until Ctrl-C. The callback URL to give jobs "
            "(--callback URL) is printed first, on a line of its own; then one line per "
            "callback taken (as sent: not checked with the service)."
        ),
        parents=[common],
    )
    listen.add_argument("--host", default="127.0.0.1", help="the address to listen on")
    listen.add_argument("--port", type=parse_port, default=8766, help="0 picks a free port")
    _callback_options(listen)

    emulator = commands.add_parser(
        "emulator",
        help="serve a fake MediaX over HTTP (for trying things out)",
        description=(
            "Serve a fake MediaX over HTTP until Ctrl-C. Once it serves, it prints how to "
            "reach it: `export MEDIAX_BASE_URL=...` lines a shell can run (--json: one JSON "
            "line keyed by those variables' names)."
        ),
        parents=[common],
    )
    emulator.add_argument("--host", default="127.0.0.1")
    emulator.add_argument("--port", type=parse_port, default=8765, help="0 picks a free port")
    emulator.add_argument("--speed", type=_positive_float, default=1.0)
    emulator.add_argument("--seed", type=int)
    emulator.add_argument("--secret-id", metavar="ID")
    emulator.add_argument("--secret-key", metavar="KEY")
    return parser
