"""Atomic publish of a build file over the published warehouse.

A run builds everything in a private file next to the target
(`.coop.duckdb.build-<run_id>`, see `coop.run.lock.build_path`), runs the models and data tests
there, checkpoints and closes it; then `publish(build, target)` renames it over the published
file. `os.replace` is atomic on POSIX: an analyst opening the warehouse sees the old file or
the new one, never a half-built state, and a read-only connection already open on the old
file keeps working (its inode stays alive until closed). Nothing ever writes into the
published file.

On failure `discard(build)` removes the build file (and its .wal); the published file is
untouched, byte for byte.

Around it (`coop.warehouse.guards`): the flow compares the build with the published file before
calling `publish` (the publish guards), and keeps a read-only copy of what it published in
`versions/` after; `coop rollback` publishes such a copy again through this same function
(staged as `.coop.duckdb.publish-<id>`, a name `cleanup_stale` removes if a rollback dies).
"""

from __future__ import annotations

import logging
import os
from pathlib import Path

import duckdb

log = logging.getLogger(__name__)


class PublishError(RuntimeError):
    """The build could not be published; the previous warehouse is unchanged."""


def _fsync_path(path: Path, directory: bool = False) -> None:
    flags = os.O_RDONLY | (getattr(os, "O_DIRECTORY", 0) if directory else 0)
    fd = os.open(path, flags)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def finalize_build(con: duckdb.DuckDBPyConnection) -> None:
    """CHECKPOINT (fold the WAL into the file) and close the build connection."""
    con.execute("CHECKPOINT").fetchall()
    con.close()


def publish(build: Path, target: Path) -> Path:
    """Rename the closed, checkpointed build file over `target`, atomically and durably
    (fsync the file, rename, fsync the folder). Returns `target`."""
    build, target = Path(build), Path(target)
    if build.parent.resolve() != target.parent.resolve():
        raise PublishError(f"build file {build} must be in the folder of {target} for an atomic rename")
    wal = build.with_name(build.name + ".wal")
    if wal.exists() and wal.stat().st_size > 0:
        raise PublishError(f"build file {build} has a non-empty WAL: it was not checkpointed and closed")
    if not build.exists():
        raise PublishError(f"build file {build} does not exist")
    _fsync_path(build)
    from coop.run.lock import stage_checkpoint

    stage_checkpoint("rename")  # test-only pause: build closed and synced, not yet renamed
    os.replace(build, target)
    _fsync_path(target.parent, directory=True)
    if wal.exists():
        wal.unlink()
    log.info("Published %s", target)
    return target


def discard(build: Path) -> None:
    """Remove a build file and its WAL (after a failure). Never touches anything else."""
    build = Path(build)
    for p in (build, build.with_name(build.name + ".wal")):
        try:
            p.unlink()
        except FileNotFoundError:
            pass


def file_identity(path: Path) -> dict[str, int] | None:
    """(inode, size, mtime_ns) of the published file, to notice when it was replaced behind our back."""
    try:
        st = Path(path).stat()
    except FileNotFoundError:
        return None
    return {"ino": st.st_ino, "size": st.st_size, "mtime_ns": st.st_mtime_ns}
