"""Reading on a Dask cluster (docs/scale-out.md): what a worker must share with the flow.

With the `dask_address` setting the reading tasks (`read-batch`, `cached-batch`) run in Dask
worker processes, possibly on other machines; everything else, DuckDB included, stays in the
flow process. A worker gets plan entries (`PlannedFile`: paths and hashes) and the
`Reference` object, opens the raw files itself, writes the parsed-file cache under the
warehouse's `.state/` and sends the `FileResult`s back. So before the first batch is sent,
every worker is checked (`worker_report` run on each, `problems` compares) for:

- the same reading: coop's reading code and reference data, the reading limits
  (`COOP_READ_*`), Python and the reading libraries (`reader_identity`) — a worker of
  another release would cache its results under this release's cache keys;
- the same raw folder: a sample raw file at the same path with the same size;
- the same `.state/` folder: a token written there by the flow process, read back by the
  worker (a local folder of the same name on the worker's machine is not enough).

Plain functions; no Prefect, no Dask (the flow side calls them through `client.run`).
"""

from __future__ import annotations

import hashlib
import os
import platform
import socket
from collections.abc import Mapping
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import Any

#: Libraries whose version changes what a spreadsheet reads as (compared on every worker).
READING_LIBRARIES = ("polars", "fastexcel", "pandera", "pyarrow")


def reader_identity() -> dict[str, str]:
    """What decides how this process reads a spreadsheet, the province aside (the
    `Reference` travels with each batch): `PARSER_VERSION`, the reading code and reference
    data (`coop.run.planning.READER_SOURCES`, `schemas/reference/`), the reading limits,
    Python's version and the reading libraries' versions."""
    from coop.ingest.isolation import limits_key
    from coop.paths import PROJECT_ROOT, REFERENCE_DIR
    from coop.run.planning import PARSER_VERSION, READER_SOURCES, _hash_paths

    h = hashlib.sha256(f"parser:{PARSER_VERSION}".encode())
    paths = [PROJECT_ROOT / s for s in READER_SOURCES]
    if REFERENCE_DIR.is_dir():
        paths += sorted(p for p in REFERENCE_DIR.rglob("*") if p.is_file())
    _hash_paths(paths, h)
    out = {"reader code": h.hexdigest()[:20], "limits": limits_key(), "python": platform.python_version()}
    for lib in READING_LIBRARIES:
        try:
            out[lib] = version(lib)
        except PackageNotFoundError:
            out[lib] = "-"
    return out


def worker_report(sample: tuple[str, int] | None, token: tuple[str, str] | None) -> dict[str, Any]:
    """Run on a worker: its host, `reader_identity()`, whether it sees the sample raw file
    (path, size) with that size and reads the state token (path, content) back."""
    out: dict[str, Any] = {"host": socket.gethostname(), "identity": reader_identity()}
    if sample is not None:
        try:
            out["sample"] = os.stat(sample[0]).st_size == sample[1]
        except OSError:
            out["sample"] = False
    if token is not None:
        try:
            out["state"] = Path(token[0]).read_text(encoding="utf-8") == token[1]
        except OSError:
            out["state"] = False
    return out


def problems(local: Mapping[str, str], reports: Mapping[str, Mapping[str, Any]], sample: str | None,
             state: str | None) -> list[str]:
    """One sentence per worker that cannot take part (Vietnamese first, then the detail,
    ending with the reason code in brackets); empty when every worker is fit."""
    out = []
    for worker, rep in sorted(reports.items()):
        where = f"worker {worker} ({rep.get('host', '?')})"
        ident = rep.get("identity") or {}
        diff = sorted(k for k in set(local) | set(ident) if local.get(k) != ident.get(k))
        if diff:
            detail = ", ".join(f"{k}: {ident.get(k, '-')} != {local.get(k, '-')}" for k in diff)
            out.append(f"Máy đọc Dask {where} chạy bản coop hoặc thư viện đọc khác với máy điều phối "
                       f"(reading code/limits/libraries differ from the flow's: {detail}) [dask_worker_mismatch]")
        if sample is not None and not rep.get("sample"):
            out.append(f"Máy đọc Dask {where} không thấy thư mục dữ liệu gốc ở cùng đường dẫn "
                       f"(raw file {sample} missing or of another size on the worker: mount the raw folder "
                       f"at the same path) [dask_raw_not_shared]")
        if state is not None and not rep.get("state"):
            out.append(f"Máy đọc Dask {where} không dùng chung thư mục trạng thái .state của kho "
                       f"(cannot read the flow's token in {state}: the warehouse folder's .state/ must be "
                       f"the same shared folder at the same path) [dask_state_not_shared]")
    return out
