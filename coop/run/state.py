"""The small files of `.state/` beside the warehouse that runs hand to each other (docs in
coop/run/store.py): `published.json`, `pending_runs.jsonl`, `retry.json`, and `RunRecord`, the
row of audit.runs a pending run becomes. Standard library only: the nothing-changed check of
`coop run` (coop.run.quick) records a run with these before polars, DuckDB or Prefect are
imported. The parsed-file cache and the hash ledger are in coop.run.store.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import os
import threading
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any, cast

from coop.context import WarehouseFiles

log = logging.getLogger(__name__)


def state_dir(warehouse: Path) -> Path:
    """`.state/` beside the warehouse (named by `WarehouseFiles.state`)."""
    return WarehouseFiles(warehouse).state


def machine_cache_dir() -> Path:
    """The machine's cache of coop, shared by its warehouses: `$XDG_CACHE_HOME/coop`, else
    `~/.cache/coop` (the SQL models' parsed dependencies; the migrated Prefect template too,
    unless `COOP_PREFECT_TEMPLATE_DIR` says otherwise: coop.run.prefect_env.template_dir)."""
    return Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache").expanduser() / "coop"


def atomic_write_text(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}-{os.urandom(3).hex()}")
    with open(tmp, "w", encoding="utf-8") as f:
        f.write(text)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)


def read_json(path: Path, default: Any) -> Any:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return default
    except (OSError, ValueError) as e:  # a damaged state file is only a cache: start afresh
        log.warning("Ignoring unreadable state file %s: %s", path, e)
        return default


def to_json_value(v: Any) -> Any:
    if isinstance(v, datetime):
        return {"__datetime__": v.isoformat()}
    if isinstance(v, date):
        return {"__date__": v.isoformat()}
    if isinstance(v, Path):
        return str(v)
    if dataclasses.is_dataclass(v) and not isinstance(v, type):
        return {f.name: to_json_value(getattr(v, f.name)) for f in dataclasses.fields(v)}
    if isinstance(v, (list, tuple)):
        return [to_json_value(x) for x in v]
    if isinstance(v, dict):
        return {str(k): to_json_value(x) for k, x in v.items()}
    return v


def from_json_value(v: Any) -> Any:
    if isinstance(v, dict):
        if "__datetime__" in v and len(v) == 1:
            return datetime.fromisoformat(v["__datetime__"])
        if "__date__" in v and len(v) == 1:
            return date.fromisoformat(v["__date__"])
        return {k: from_json_value(x) for k, x in v.items()}
    if isinstance(v, list):
        return [from_json_value(x) for x in v]
    return v


def read_published(state: Path) -> dict[str, Any]:
    data = read_json(Path(state) / "published.json", {})
    return cast(dict[str, Any], data) if isinstance(data, dict) else {}


def write_published(state: Path, info: Mapping[str, Any]) -> None:
    atomic_write_text(Path(state) / "published.json",
                       json.dumps(to_json_value(dict(info)), ensure_ascii=False, indent=1))


def append_pending_run(state: Path, record: Mapping[str, Any]) -> None:
    """Remember a run that no published warehouse records yet (no-op or failed run)."""
    path = Path(state) / "pending_runs.jsonl"
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "a", encoding="utf-8") as f:
        f.write(json.dumps(to_json_value(dict(record)), ensure_ascii=False) + "\n")
        f.flush()
        os.fsync(f.fileno())


def read_pending_runs(state: Path) -> list[dict[str, Any]]:
    path = Path(state) / "pending_runs.jsonl"
    out = []
    try:
        for line in path.read_text(encoding="utf-8").splitlines():
            line = line.strip()
            if line:
                try:
                    out.append(json.loads(line))
                except ValueError:  # a line torn by a crash
                    continue
    except FileNotFoundError:
        pass
    return out


def clear_pending_runs(state: Path, run_ids: Iterable[str]) -> None:
    """Drop the pending runs now recorded in the published warehouse."""
    done = set(run_ids)
    rest = [r for r in read_pending_runs(state) if r.get("run_id") not in done]
    path = Path(state) / "pending_runs.jsonl"
    if not rest:
        try:
            path.unlink()
        except FileNotFoundError:
            pass
        return
    atomic_write_text(path, "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rest))


_RETRY_LOCK = threading.Lock()


def read_retry(state: Path) -> dict[str, str]:
    """retry.json: source_file -> hash of the files whose last read failed transiently."""
    data = read_json(Path(state) / "retry.json", {})
    return data if isinstance(data, dict) else {}


def note_retry(state: Path, results: Sequence[tuple[str, str, bool]]) -> None:
    """Add (transient failure) or drop (read) each (source_file, hash, transient) in retry.json.
    Threads and processes (Dask workers reading batches side by side, docs/scale-out.md) take
    turns: a thread lock, then an flock on `.state/.retry.lock`."""
    import fcntl

    Path(state).mkdir(parents=True, exist_ok=True)
    with _RETRY_LOCK, open(Path(state) / ".retry.lock", "a") as lock:
        fcntl.flock(lock.fileno(), fcntl.LOCK_EX)  # released when the file is closed
        data = read_retry(state)
        new = dict(data)
        for source, digest, transient in results:
            if transient:
                new[source] = digest
            else:
                new.pop(source, None)
        if new != data:
            atomic_write_text(Path(state) / "retry.json", json.dumps(new, ensure_ascii=True, sort_keys=True))


@dataclass
class RunRecord:
    run_id: str
    started_at: datetime
    finished_at: datetime | None = None
    status: str = "published"
    kind: str = "nightly"
    files_seen: int = 0
    files_loaded: int = 0
    files_rejected: int = 0
    rows_loaded: int = 0
    rows_rejected: int = 0
    years: str | None = None
    backfill_years: str | None = None
    message: str | None = None

    def to_json(self) -> dict[str, Any]:
        d = dict(self.__dict__)
        for k in ("started_at", "finished_at"):
            if d[k] is not None:
                d[k] = utc_naive(d[k]).isoformat()
        return d

    @classmethod
    def from_json(cls, d: Mapping[str, Any]) -> RunRecord:
        d = dict(d)
        for k in ("started_at", "finished_at"):
            if d.get(k):
                d[k] = datetime.fromisoformat(d[k])
        return cls(**{k: v for k, v in d.items() if k in cls.__dataclass_fields__})


def utc_naive(t: datetime) -> datetime:
    """A time as DuckDB's TIMESTAMP holds it: UTC, no zone (a naive time is taken as UTC already)."""
    if t.tzinfo is not None:
        t = t.astimezone(UTC).replace(tzinfo=None)
    return t
