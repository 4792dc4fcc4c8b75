"""The child process that runs one timed task and prints its TaskResult as JSON.

    python -m benchmarks.worker MODULE:FUNCTION '{"workdir": ..., "tag": ..., ...}'

It imports only the task's module, so that each variant's peak RSS and start-up state
are its own.
"""

from __future__ import annotations

import json
import sys
from importlib import import_module

from .tasks import TaskSpec


def main(argv: list[str]) -> int:
    if len(argv) != 2:
        sys.stderr.write("usage: python -m benchmarks.worker MODULE:FUNCTION SPEC_JSON\n")
        return 2
    module, _, name = argv[0].partition(":")
    task = getattr(import_module(module), name)
    result = task(TaskSpec(**json.loads(argv[1])))
    sys.stdout.write(json.dumps(result.to_json()))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
