"""The PostgreSQL fixtures of the server tests, for the partitioned mode's tests."""

from tests.server.conftest import pg_schema, pg_store

__all__ = ["pg_schema", "pg_store"]
