"""The descriptors cqrs holds to protect SQLite's locks (sqlitefile._HELD) are released
with the last connection: a long-lived process does not leak them."""

from __future__ import annotations

import os
from pathlib import Path

from cqrs_cli import CommandService, QueryService


def open_descriptors() -> int:
    return len(os.listdir("/proc/self/fd"))


def test_services_opened_and_closed_many_times_leave_no_descriptor(tmp_path: Path) -> None:
    CommandService(tmp_path / "warm").create_item("x")  # imports, caches: not counted
    before = open_descriptors()
    for n in range(30):
        store = tmp_path / f"store-{n % 3}"
        with CommandService(store) as writer, QueryService(store) as reader:
            writer.create_item(f"item-{n}")
            reader.sync()
            assert reader.get_item(f"item-{n}").item_id == f"item-{n}"
            with CommandService(store) as second:  # a second handle on the same files
                second.update_item(f"item-{n}", "again")
    assert open_descriptors() == before
