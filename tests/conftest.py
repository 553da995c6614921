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


@pytest.fixture(scope="session")
def postgres_server():
    """One throwaway PostgreSQL server for the session (tests/postgres_server.py), started on first
    use and removed at the end; the tests that use it skip, saying why, where PostgreSQL cannot run."""
    from tests.postgres_server import PostgresServer

    server = PostgresServer().setup()
    try:
        if server.reason:
            pytest.skip(f"no PostgreSQL server for the tests: {server.reason}")
        yield server
    finally:
        server.close()


@pytest.fixture(scope="session")
def postgres_url(postgres_server):
    """The URL of the session server's own database (tests sharing it use their own study names;
    ``tests.postgres_server.fresh_database(server)`` gives a test a database of its own)."""
    return postgres_server.url
