from __future__ import annotations

import pytest
import torch


@pytest.fixture(autouse=True)
def _small_threads():
    torch.set_num_threads(1)  # tests run next to each other on 2 cores
    yield


@pytest.fixture(scope="session")
def digits_splits():
    from nas.datasets import digits

    return digits()


def _throwaway(server, what: str):
    """A started server for the session's tests, closed at the end; skips them, saying why, if it did not start."""
    try:
        if server.reason:
            pytest.skip(f"no {what} server for the tests: {server.reason}")
        yield server
    finally:
        server.close()


@pytest.fixture(scope="session")
def postgres_server():
    """One throwaway PostgreSQL server for the session (tests/postgres_server.py), started on first
    use and removed at the end; the tests that use it skip, saying why, where PostgreSQL cannot run."""
    from tests.postgres_server import PostgresServer

    yield from _throwaway(PostgresServer().setup(), "PostgreSQL")


@pytest.fixture(scope="session")
def mysql_server():
    """One throwaway MySQL (MariaDB) server for the session (tests/mysql_server.py), started on first
    use and removed at the end; the tests that use it skip, saying why, where MariaDB cannot run."""
    from tests.mysql_server import MySQLServer

    yield from _throwaway(MySQLServer().setup(), "MySQL")


@pytest.fixture(scope="session")
def postgres_url(postgres_server):
    """The URL of the session server's own database (tests sharing it use their own study names;
    ``tests.postgres_server.fresh_database(server)`` gives a test a database of its own)."""
    return postgres_server.url


#: Test files whose tests start worker processes, kill them, time heartbeats, measure memory or start database servers:
#: `make test` runs them on their own, one at a time (`-m serial`), after the rest has run on two processes
#: (`-n 2 -m "not serial"`), so no test of theirs shares the machine's two cores with another test.
SERIAL_FILES = frozenset({
    "test_chaos", "test_dashboard", "test_durability", "test_grpc", "test_heartbeat", "test_journal_file", "test_launchers",
    "test_native_memory", "test_rdb_servers", "test_store", "test_strategies_workers", "test_workers",
})


def pytest_collection_modifyitems(config, items):
    for item in items:
        if item.path.stem in SERIAL_FILES:
            item.add_marker(pytest.mark.serial)
