"""The warehouse slot: one Prefect global concurrency limit, `coop-warehouse` (limit 1), held
by every scheduled or hand-started deployment run (nightly, backfill) for its whole body.

A nightly run that comes due while a backfill holds the slot waits for it in Prefect (the flow
run stays Running, logging that it waits) and goes on when the backfill ends, instead of
meeting the run lock (`RunLockBusy`) and failing. The file lock (`coop.run.lock.run_lock`) still
guards the warehouse against a `coop run` started in a shell, outside Prefect; the
deployment runs wait for it too (`wait=True`).

`ensure_limit()` creates the limit (or sets it back to 1 and active) on the Prefect API; it is
called by `coop serve` and again by each run before it asks for the slot, so a limit deleted
by hand in the UI comes back instead of leaving runs unguarded.

`require_persistent_api()` is `coop serve`'s first step: it refuses (`ServeRefused`, exit 2)
without a `PREFECT_API_URL` that answers, and says how to start one; it never starts a server.

Settings (environment of `coop serve`): `COOP_SLOT_TIMEOUT_SECONDS` — give up waiting after
that long (the run fails with a clear message); unset = wait as long as it takes.
"""

from __future__ import annotations

import logging
import os
import time
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager

WAREHOUSE_LIMIT = "coop-warehouse"
ENV_SLOT_TIMEOUT = "COOP_SLOT_TIMEOUT_SECONDS"
LOCAL_API = "http://127.0.0.1:4200/api"


class SlotTimeout(RuntimeError):
    """The slot was not free within COOP_SLOT_TIMEOUT_SECONDS."""


def _log() -> logging.Logger | logging.LoggerAdapter[logging.Logger]:
    try:
        from prefect import get_run_logger

        return get_run_logger()
    except Exception:  # noqa: BLE001 — a side job never fails the run
        return logging.getLogger("coop.flow")


def slot_timeout() -> float | None:
    raw = (os.environ.get(ENV_SLOT_TIMEOUT) or "").strip()
    return float(raw) if raw else None


def ensure_limit(name: str = WAREHOUSE_LIMIT, limit: int = 1) -> None:
    """Create the global concurrency limit `name` with `limit` slots, or set it back to
    `limit` and active if someone changed it. Idempotent."""
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.actions import GlobalConcurrencyLimitCreate, GlobalConcurrencyLimitUpdate
    from prefect.exceptions import ObjectAlreadyExists, ObjectNotFound

    with get_client(sync_client=True) as client:
        try:
            existing = client.read_global_concurrency_limit_by_name(name)
        except ObjectNotFound:
            existing = None
        if existing is None:
            try:
                client.create_global_concurrency_limit(GlobalConcurrencyLimitCreate(name=name, limit=limit))
                return
            except ObjectAlreadyExists:  # another process created it meanwhile
                existing = client.read_global_concurrency_limit_by_name(name)
        if existing.limit != limit or not existing.active:
            client.update_global_concurrency_limit(name, GlobalConcurrencyLimitUpdate(limit=limit, active=True))


@contextmanager
def warehouse_slot(what: str) -> Iterator[float]:
    """Hold the `coop-warehouse` slot for the block; yields the seconds waited for it."""
    from prefect.concurrency.sync import concurrency

    log = _log()
    ensure_limit()
    timeout = slot_timeout()
    log.info("%s: asking for the warehouse slot %r (a run already holding it, e.g. a backfill, "
             "is waited for%s).", what, WAREHOUSE_LIMIT,
             f", at most {timeout:.0f} s" if timeout else "")
    t0 = time.monotonic()
    acquired = False
    try:
        with concurrency(WAREHOUSE_LIMIT, occupy=1, strict=True, timeout_seconds=timeout):
            acquired = True
            waited = time.monotonic() - t0
            log.info("%s: got the warehouse slot after %.1f s.", what, waited)
            yield waited
    except TimeoutError as exc:
        if acquired:  # raised by the run itself, not by the wait
            raise
        raise SlotTimeout(
            f"Hết thời gian chờ: một lượt chạy khác giữ kho dữ liệu quá {timeout:.0f} giây; lượt này không chạy. "
            f"(The warehouse slot {WAREHOUSE_LIMIT!r} was not free within {timeout:.0f} s "
            f"({ENV_SLOT_TIMEOUT}); nothing was done.)") from exc


class ServeRefused(RuntimeError):
    """`coop serve` needs a persistent Prefect API; the message says how to start one."""


def require_persistent_api(timeout: float = 5.0) -> str:
    """The PREFECT_API_URL to serve against, or ServeRefused (Vietnamese first, then English)
    when it is unset or does not answer."""
    from coop.run.prefect_env import prefect_api_url

    how = ("  .venv/bin/prefect server start                      # terminal 1 (or a systemd service)\n"
           f"  export PREFECT_API_URL={LOCAL_API}   # then, where coop serve runs\n"
           "  .venv/bin/coop serve")
    url = prefect_api_url()
    if not url:
        raise ServeRefused(
            "coop serve: chưa có máy chủ Prefect lâu dài (PREFECT_API_URL chưa đặt), nên không phục vụ lịch chạy.\n"
            "coop serve needs a persistent Prefect API and will not start one: PREFECT_API_URL is not set, "
            "and deployments served by a temporary API would vanish with it. Start one and point coop at it:\n"
            + how)
    health = url.rstrip("/") + "/health"
    try:
        from urllib.parse import urlparse

        local = urlparse(url).hostname in ("127.0.0.1", "localhost", "::1")
        # a local API is never reached through a proxy (offline, the proxy is unreachable)
        opener = (urllib.request.build_opener(urllib.request.ProxyHandler({})) if local
                  else urllib.request.build_opener())
        with opener.open(health, timeout=timeout) as resp:
            if resp.status == 200:
                return url
            problem = f"HTTP {resp.status}"
    except Exception as exc:  # noqa: BLE001 — a side job never fails the run
        problem = str(getattr(exc, "reason", None) or exc)
    raise ServeRefused(
        f"coop serve: không kết nối được máy chủ Prefect tại {url} ({problem}).\n"
        f"coop serve: the Prefect API at PREFECT_API_URL={url} does not answer ({health}: {problem}). "
        "Start it, or fix PREFECT_API_URL:\n" + how)
