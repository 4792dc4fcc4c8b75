"""The contract suite's fixtures: the PostgreSQL server its postgres backend needs."""

from pg_server import pg_server

__all__ = ["pg_server"]
