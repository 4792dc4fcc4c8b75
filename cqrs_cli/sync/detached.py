"""`python -m cqrs_cli.sync.detached --lock-fd N --journal J --projection P`: the
catch-up process a `cqrs` write leaves behind (trigger.py starts it). J is `-` for a
server's locator, which is then in the environment (CQRS_CATCHUP_JOURNAL), not on the
command line that every local user can read.

It inherits the locked descriptor N from the writer, which has exited or is about to:
the lock passed to it with the descriptor (catchup_lock.py). It has no terminal (its
standard streams are /dev/null): what goes wrong goes to the state file and the log
(catchup_state.py). Exit 0 when caught up, 1 when the catch-up failed, 2 for a command
line that is not one trigger.py makes.
"""

from __future__ import annotations

import os
import sys


def main(argv: list[str]) -> int:
    options = dict(zip(argv[::2], argv[1::2], strict=False))
    if len(argv) != 6 or set(options) != {"--lock-fd", "--journal", "--projection"}:
        return 2
    try:
        fd = int(options["--lock-fd"])
    except ValueError:
        return 2
    journal = options["--journal"]
    if journal == "-":  # a server's locator, in the environment (trigger.py)
        journal = os.environ.pop("CQRS_CATCHUP_JOURNAL", "")
        if not journal:
            return 2
    # Its paths are absolute: do not keep the writer's folder busy (an unmount, say).
    os.chdir("/")
    from ..paths import StorePaths
    from .catchup import catch_up_holding

    paths = StorePaths(journal, options["--projection"])
    error, _gate = catch_up_holding(paths, fd)
    # Exit at once, still holding the gate (catchup_lock.py): a writer waiting for it
    # starts the next catch-up only once this process is gone. Nothing is left to
    # flush: the standard streams are /dev/null and the state file is closed.
    os._exit(0 if error is None else 1)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
