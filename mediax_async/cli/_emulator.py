"""What ``mediax emulator`` prints once it serves: shell ``export`` lines, or one JSON line.

The JSON line's keys are the environment variables' names (``MEDIAX_BASE_URL``,
``MEDIAX_SECRET_ID``, ``MEDIAX_SECRET_KEY``; the key is ``null`` when the
user chose it).
"""

from __future__ import annotations

import shlex
from collections.abc import Callable
from typing import TYPE_CHECKING

from .. import _constants as C
from ._output import Output

if TYPE_CHECKING:
    from ..testing import FakeMediaX

__all__ = ["emulator_ready"]


def emulator_ready(output: Output, *, key_given: bool) -> Callable[[str, FakeMediaX], None]:
    """The emulator's ``on_ready``: how to reach it, as the user asked (``--json`` or shell).

    A key the user chose (``--secret-key``) is never printed: they know it,
    and the command line output must not show it. The fake's default key is
    public (it is in the documentation), so it is printed for ``export``.
    """

    def ready(base_url: str, fake: FakeMediaX) -> None:
        key = None if key_given else fake.secret_key
        if output.json_mode:  # keyed by the variables' names, ready for `export`
            output.json_line(
                {C.ENV_BASE_URL: base_url, C.ENV_SECRET_ID: fake.secret_id, C.ENV_SECRET_KEY: key}
            )
            return
        output.line(f"export {C.ENV_BASE_URL}={shlex.quote(base_url)}")
        output.line(f"export {C.ENV_SECRET_ID}={shlex.quote(fake.secret_id)}")
        if key is None:
            output.line(f"# {C.ENV_SECRET_KEY}: the key given with --secret-key (not shown)")
        else:
            output.line(f"export {C.ENV_SECRET_KEY}={shlex.quote(key)}")

    return ready
