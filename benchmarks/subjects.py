"""What is measured: cqrs itself, through its public Python API, as a user calls it.

Later workloads (sync, item get, apply, events) add their task here, one function each.
"""

from __future__ import annotations

import os
import time

from .fixtures import item_name
from .tasks import TaskResult, TaskSpec


def create_items(spec: TaskSpec) -> TaskResult:
    """`CommandService.create_item` for `events` distinct items: one command, one
    event, one transaction each, on one open service (as a long-lived caller has)."""
    from cqrs_cli import CommandService

    ids = [item_name(n) for n in range(spec.events)]
    home = os.path.join(spec.workdir, f"cqrs-home-{spec.tag}")
    with CommandService(home) as service:
        service.create_item("warm-up")  # creates the journal: not what is measured
        create = service.create_item
        start = time.perf_counter()
        for item_id in ids:
            create(item_id)
        seconds = time.perf_counter() - start
    return TaskResult(len(ids), seconds)
