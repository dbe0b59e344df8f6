"""The ``mediax`` command: submit, watch and batch MediaX jobs, run a demo or an emulator.

``main(argv)`` returns the exit code (see ``mediax --help``). Argument parsing
and display live here; protocol, waiting and batches live in the library.
"""

from __future__ import annotations

from ._app import exit_code_for, main
from ._runtime import ClientSettings, Runtime

__all__ = ["ClientSettings", "Runtime", "exit_code_for", "main"]
