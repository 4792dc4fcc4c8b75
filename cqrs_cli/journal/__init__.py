"""The event journal: the append-only source of truth.

`base` states the narrow interface the write side, sync and the journal tools rely on;
`sqlite_journal` implements it on one SQLite file. A server-database backend would be a
second module implementing the same interface, without touching the domain or the CLI.
"""
