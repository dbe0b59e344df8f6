"""``mediax listen``, and the callback receiver ``mediax batch --listen`` serves."""

from __future__ import annotations

import argparse
import ipaddress
import json
import os
import urllib.parse
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Final

import anyio

from .._callbacks import CallbackReceiver, JobHook, new_callback_token, redact_callback_url
from .._models import Job
from ._commands import Context
from ._parser import EXIT_OK
from ._shapes import job_files, job_json, kind_name

__all__ = ["ENV_CALLBACK_TOKEN", "callback_receiver", "callback_token", "listen"]

ENV_CALLBACK_TOKEN: Final = "MEDIAX_CALLBACK_TOKEN"


def callback_token(args: argparse.Namespace) -> str | None:
    """The token of a command that takes callbacks (kept in ``args.token``), else None.

    ``--token``, else ``$MEDIAX_CALLBACK_TOKEN``, else a fresh random one. It
    is settled before anything is shown, so every output can redact it.
    """
    takes_callbacks = args.command == "listen" or (
        args.command == "batch" and getattr(args, "listen", None) is not None
    )
    if not takes_callbacks:
        return None
    if not args.token:
        args.token = os.environ.get(ENV_CALLBACK_TOKEN) or new_callback_token()
    token: str = args.token
    return token


def _plain_http_off_host(url: str) -> bool:
    """Whether ``url`` is plain HTTP to somewhere other than this machine."""
    parts = urllib.parse.urlsplit(url)
    if parts.scheme != "http":
        return False
    host = parts.hostname or ""
    if host == "localhost":
        return False
    try:
        return not ipaddress.ip_address(host).is_loopback
    except ValueError:
        return True


@asynccontextmanager
async def callback_receiver(
    ctx: Context, host: str, port: int, *, on_job: JobHook | None = None
) -> AsyncIterator[tuple[CallbackReceiver, str]]:
    """Serve a receiver with the command's token; yield it and the callback URL (asyncio only)."""
    receiver = CallbackReceiver(token=callback_token(ctx.args), on_job=on_job)
    async with receiver.serve(host, port) as bound:
        public = ctx.args.public_url or bound
        url = receiver.callback_url(public)
        ctx.output.note(f"taking callbacks on {bound} at {redact_callback_url(url)}")
        if _plain_http_off_host(url):
            ctx.output.note(
                "warning: the callback URL is plain HTTP, so its token travels unencrypted; "
                "put HTTPS in front and pass --public-url https://..."
            )
        yield receiver, url


async def listen(ctx: Context) -> int:
    """Serve a callback receiver until Ctrl-C; print the callback URL, then each job taken."""
    output = ctx.output

    def show(job: Job, watched: bool) -> None:
        if output.json_mode:
            output.json_line(job_json(job))  # its callback URL's token is hidden
        else:
            files = ", ".join(job_files(job)) or "-"
            output.line(f"{job.id}  {kind_name(job)}  {job.state.name}  {files}")

    async with callback_receiver(ctx, ctx.args.host, ctx.args.port, on_job=show) as (
        receiver,
        url,
    ):
        # The one place the token is shown: the user must give this URL to jobs.
        shown = json.dumps({"callback_url": url}) if output.json_mode else url
        print(shown, file=ctx.runtime.out, flush=True)
        output.note(
            "give jobs the callback URL above (--callback URL); each job a callback "
            "brings is printed as sent, not checked with the service; Ctrl-C stops"
        )
        try:
            await anyio.sleep_forever()
        finally:
            stats = receiver.stats
            output.note(
                f"{stats.accepted} callback(s) taken, {stats.rejected} refused "
                f"({stats.bad_token} with a wrong or missing token)"
            )
    return EXIT_OK
