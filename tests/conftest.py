"""Shared pytest fixtures (keep minimal; areas add their own).

Speed (docs/performance.md, "The test suite"): the expensive things are built once per
session and shared — the Prefect API of in-process runs (`prefect_harness`, on a database
migrated once per machine), and the sample province's warehouse (`sample_build`: one real
`coop run` over data/raw; tests only read it, or copy it before changing anything).

`make test` runs the suite on two pytest-xdist workers (`-n 2 --dist loadgroup`): each worker is
its own process with its own session fixtures, so tests are grouped (`pytest_collection_modifyitems`
below) to keep the expensive ones built once: every test of the sample build on one worker, the
rest by file (a module's fixtures, e.g. test_crash's or test_dask's world, built once).
"""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest


@pytest.fixture(scope="session")
def prefect_harness():
    """A temporary Prefect API and database for the whole session (flows run against it).

    Prefect's own `prefect_test_harness`, whose server starts on a copy of coop's migrated
    template database (`coop.run.prefect_env.ensure_template`, made once per machine and
    Prefect version) told to skip the migrations and block registration — what `coop run`
    itself does in production — instead of migrating a new database at every session start."""
    from unittest import mock

    import prefect.settings as ps
    from prefect.testing import utilities
    from prefect.testing.utilities import prefect_test_harness

    from ops_helpers import premigrated_prefect_db

    db_dir = premigrated_prefect_db("prefect-test.db")
    if db_dir is None:  # no template (cannot be made here): Prefect migrates, as before
        with prefect_test_harness(server_startup_timeout=120):
            yield
        return
    # the harness puts its database in a new mkdtemp() folder: hand it the one holding the copy
    with mock.patch.object(utilities, "mkdtemp", lambda: str(db_dir)), \
            ps.temporary_settings(updates={ps.PREFECT_API_DATABASE_MIGRATE_ON_START: False,
                                           ps.PREFECT_API_BLOCKS_REGISTER_ON_START: False}):
        harness = prefect_test_harness(server_startup_timeout=120)
        harness.__enter__()
    try:
        yield
    finally:
        harness.__exit__(None, None, None)


@pytest.fixture(scope="session")
def sample_build(prefect_harness, tmp_path_factory):
    """The sample province (data/raw) through one real `coop run` (the CLI's `run_command`, in
    this process), shared by every test that reads the sample warehouse: a
    `outputs_fixture.SampleBuild` (raw, wh, exit code, console summary). Read it only (open
    read-only); copy `wh.parent` before running anything on it. Checked unchanged at the end."""
    from outputs_fixture import build_sample

    build = build_sample(tmp_path_factory.mktemp("sample-wh"))
    before = hashlib.sha256(Path(build.wh).read_bytes()).hexdigest()
    yield build
    after = hashlib.sha256(Path(build.wh).read_bytes()).hexdigest()
    assert after == before, f"a test changed the shared sample warehouse {build.wh}: copy it first"


def pytest_collection_modifyitems(config, items):
    """The xdist groups (used with `--dist loadgroup`; a plain `pytest` ignores them): the
    tests of the shared sample build together (one `coop run` of the sample per worker that
    needs it: one in all), every other test with its file."""
    for item in items:
        group = "sample_build" if "sample_build" in getattr(item, "fixturenames", ()) else item.path.name
        item.add_marker(pytest.mark.xdist_group(name=group))
