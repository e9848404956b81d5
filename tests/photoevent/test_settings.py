import runpy

import pytest
from django.core.exceptions import ImproperlyConfigured
from django.db import connections
from django.db.backends.postgresql.base import DatabaseWrapper
from django.db.backends.sqlite3.base import DatabaseWrapper as SQLiteDatabaseWrapper

from photoevent import env
from photoevent import settings as project_settings


@pytest.mark.parametrize(
    ("helper", "raw", "expected"),
    [
        (env.env_int, "7", 7),
        (env.env_bool, "yes", True),
        (env.env_bool, "0", False),
        (env.env_float, "0.55", 0.55),
    ],
)
def test_env_helpers_parse(monkeypatch, helper, raw, expected):
    monkeypatch.setenv("PHOTOEVENT_TEST_VALUE", raw)
    assert helper("PHOTOEVENT_TEST_VALUE", expected) == expected


@pytest.mark.parametrize(
    ("helper", "raw"),
    [
        (env.env_int, "many"),
        (env.env_bool, "maybe"),
        (env.env_float, "fast"),
        (env.env_rate, "lots"),
    ],
)
def test_env_helpers_refuse_bad_values(monkeypatch, helper, raw):
    monkeypatch.setenv("PHOTOEVENT_TEST_VALUE", raw)
    default = "1/m" if helper is env.env_rate else 1
    with pytest.raises(ImproperlyConfigured, match="PHOTOEVENT_TEST_VALUE"):
        helper("PHOTOEVENT_TEST_VALUE", default)


def test_env_int_minimum(monkeypatch):
    monkeypatch.setenv("PHOTOEVENT_TEST_VALUE", "0")
    with pytest.raises(ImproperlyConfigured, match="at least 1"):
        env.env_int("PHOTOEVENT_TEST_VALUE", 5, minimum=1)


def test_env_int_maximum(monkeypatch):
    monkeypatch.setenv("PHOTOEVENT_TEST_VALUE", "20")
    with pytest.raises(ImproperlyConfigured, match="at most 19"):
        env.env_int("PHOTOEVENT_TEST_VALUE", 5, maximum=19)


@pytest.mark.parametrize("raw", ["low", "-1", "20"])
def test_bad_qcluster_nice_stops_startup(monkeypatch, raw):
    monkeypatch.setenv("QCLUSTER_NICE", raw)
    with pytest.raises(ImproperlyConfigured, match="QCLUSTER_NICE"):
        runpy.run_path(project_settings.__file__)


def test_qcluster_nice_defaults_to_10(monkeypatch):
    monkeypatch.delenv("QCLUSTER_NICE", raising=False)
    assert runpy.run_path(project_settings.__file__)["QCLUSTER_NICE"] == 10


def test_database_url_maps_pool_variables(monkeypatch):
    monkeypatch.setenv("DB_POOL_SIZE", "4")
    monkeypatch.setenv("DB_MAX_OVERFLOW", "6")
    monkeypatch.setenv("DB_POOL_TIMEOUT", "9")
    monkeypatch.setenv("DB_POOL_RECYCLE", "600")
    config = project_settings._database_from_url("postgres://u:p%40ss@db.example:6543/events")
    assert config["NAME"] == "events" and config["PASSWORD"] == "p@ss" and config["PORT"] == "6543"
    assert config["OPTIONS"]["pool"] == {"min_size": 4, "max_size": 10, "timeout": 9, "max_lifetime": 600}


def test_database_url_defaults_are_the_documented_ones(monkeypatch):
    for name in ("DB_POOL_SIZE", "DB_MAX_OVERFLOW", "DB_POOL_TIMEOUT", "DB_POOL_RECYCLE"):
        monkeypatch.delenv(name, raising=False)
    pool = project_settings._database_from_url("postgres://postgres@127.0.0.1/x")["OPTIONS"]["pool"]
    assert pool == {"min_size": 2, "max_size": 10, "timeout": 60, "max_lifetime": 1800}


def test_database_url_must_be_postgres():
    with pytest.raises(ImproperlyConfigured, match="postgres"):
        project_settings._database_from_url("mysql://x@y/z")


def test_pool_settings_reach_the_connection(monkeypatch, django_db_blocker):
    """A real psycopg pool against the PostgreSQL that CI runs."""
    monkeypatch.setenv("DB_POOL_SIZE", "2")
    monkeypatch.setenv("DB_MAX_OVERFLOW", "3")
    monkeypatch.setenv("DB_POOL_RECYCLE", "900")
    config = project_settings._database_from_url("postgres://postgres@127.0.0.1:5432/postgres")
    config.update({"TIME_ZONE": None, "AUTOCOMMIT": True, "ATOMIC_REQUESTS": False, "CONN_HEALTH_CHECKS": False})
    config.setdefault("TEST", {})
    wrapper = DatabaseWrapper(config, alias="pool-check")
    try:
        with django_db_blocker.unblock(), wrapper.cursor() as cursor:
            cursor.execute("SELECT 1")
            assert cursor.fetchone() == (1,)
        pool = wrapper.pool
        assert (pool.min_size, pool.max_size, pool.max_lifetime, pool.timeout) == (2, 5, 900, 60)
    finally:
        wrapper.close_pool()


def test_default_connection_uses_the_pool_on_postgresql():
    connection = connections["default"]
    if connection.vendor != "postgresql":
        pytest.skip("the suite runs on SQLite in this leg; the PostgreSQL leg checks the live pool")
    assert connection.pool is not None


def test_sqlite_busy_timeout_reaches_the_connection(monkeypatch, tmp_path, django_db_blocker):
    """SQLITE_BUSY_TIMEOUT is what a connection waits for a lock, not a fixed 30 s."""
    for name in ("DATABASE_URL", "SQLITE_PATH"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("SQLITE_BUSY_TIMEOUT", "7")
    monkeypatch.setenv("DATA_DIR", str(tmp_path))
    config = runpy.run_path(project_settings.__file__)["DATABASES"]["default"]
    assert config["NAME"] == tmp_path / "db.sqlite3"
    config.update({"TIME_ZONE": None, "AUTOCOMMIT": True, "ATOMIC_REQUESTS": False, "CONN_HEALTH_CHECKS": False})
    wrapper = SQLiteDatabaseWrapper(config, alias="busy-timeout-check")
    try:
        with django_db_blocker.unblock(), wrapper.cursor() as cursor:
            cursor.execute("PRAGMA busy_timeout")
            assert cursor.fetchone() == (7000,)
            cursor.execute("PRAGMA journal_mode")
            assert cursor.fetchone() == ("wal",)
    finally:
        wrapper.close()
