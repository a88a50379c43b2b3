"""The nightly flow's task runner: threads here, or Dask (docs/scale-out.md).

`ReadingTaskRunner` is a Prefect `TaskRunner` that picks, when a flow run starts, the runner
the `dask_address` setting asks for (`coop.settings`, env `COOP_DASK_ADDRESS`), so `coop run`,
`coop backfill`, the served deployments and a flow called in a test all follow it:

- `""` (default): Prefect's `ThreadPoolTaskRunner` in the flow process;
- `"local:N"`: `prefect_dask.DaskTaskRunner` on a `distributed.LocalCluster` of N worker
  processes (one thread each) started for the flow run, on first use only (a run with
  nothing to read starts none), closed with it;
- `"tcp://host:port"` / `"tls://…"`: `DaskTaskRunner` on the running Dask scheduler there.

Only what the flow `.submit()`s runs on it: the reading tasks (`read-batch`,
`cached-batch`). Every other task is called directly and runs in the flow process: DuckDB
stays the single writer. With Dask, before the first batch is sent, every connected worker
is checked (`coop.run.scaleout`: same reading code and libraries, the raw folder and the
warehouse's `.state/` at the same paths); a worker that fails fails the run with the reason.
Each batch's files advance the flow's "Reading files" display when the batch is done; a
batch's Dask future is released once its result is in the flow (a worker lost later is not
made to read it again); Prefect's logs and task-run events still held by the workers are
sent before the cluster is left.
"""

from __future__ import annotations

import functools
import logging
import os
import threading
import uuid
from pathlib import Path
from typing import Any

from prefect.task_runners import TaskRunner, ThreadPoolTaskRunner

from coop.settings import check_dask_address, load_settings

log = logging.getLogger("coop.flow")

#: Tasks whose `batch` of files advances the "Reading files" display when done on Dask (on
#: threads the reader advances it itself, file by file).
PROGRESS_TASKS = ("read-batch",)
#: Seconds to wait for a first worker of a running cluster (`tcp://`), else the run fails
#: (`COOP_DASK_WORKER_WAIT_SECONDS` overrides).
WORKER_WAIT_S = 60.0


def worker_wait_s() -> float:
    try:
        return float(os.environ.get("COOP_DASK_WORKER_WAIT_SECONDS") or WORKER_WAIT_S)
    except ValueError:
        return WORKER_WAIT_S


def _unquoted(value: Any) -> Any:
    """A task parameter as the task sees it: `prefect.utilities.annotations.quote(x)` -> x."""
    from prefect.utilities.annotations import BaseAnnotation

    return value.unwrap() if isinstance(value, BaseAnnotation) else value


class ScaleOutError(RuntimeError):
    """The Dask cluster cannot read for this run (no worker, a worker unfit): nothing was read."""


def dask_runner(address: str) -> Any:
    """`prefect_dask.DaskTaskRunner` for a `local:N` or `tcp://` address (see the module doc)."""
    from prefect_dask.task_runners import DaskTaskRunner

    if address.startswith("local:"):
        return DaskTaskRunner(cluster_kwargs={
            "n_workers": int(address.split(":", 1)[1]), "threads_per_worker": 1, "processes": True,
            "dashboard_address": None,  # no fixed port 8787 to collide on
            # the nanny's "Worker process still alive after 4 s, killing" when the cluster closes
            # (interpreter teardown after Prefect was imported, on a loaded machine) is no news
            "silence_logs": logging.ERROR,
        })
    return DaskTaskRunner(address=address)


class ReadingTaskRunner(TaskRunner):
    """Threads or Dask for the flow's submitted tasks, from `dask_address` (None = the
    setting, read when the flow run starts)."""

    def __init__(self, dask_address: str | None = None, threads: int | None = None):
        super().__init__()  # type: ignore[no-untyped-call]  # Prefect's TaskRunner.__init__ is untyped
        self.dask_address = dask_address
        self.threads = threads
        self.address: str | None = None  # resolved when started
        self._inner: Any = None
        self._checked = False

    @property
    def name(self) -> str:
        return "coop-reading"

    def duplicate(self) -> ReadingTaskRunner:
        return type(self)(self.dask_address, self.threads)

    def for_address(self, dask_address: str | None) -> ReadingTaskRunner:
        """The same runner with another address (None = the setting when the run starts)."""
        return type(self)(dask_address, self.threads)

    def __eq__(self, other: object) -> bool:
        return (isinstance(other, ReadingTaskRunner) and other.dask_address == self.dask_address
                and other.threads == self.threads)

    __hash__ = None  # type: ignore[assignment]  # mutable, like Prefect's runners

    def __getstate__(self) -> dict[str, Any]:  # the configuration only, never a live pool or client
        return {"dask_address": self.dask_address, "threads": self.threads}

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__init__(state["dask_address"], state["threads"])  # type: ignore[misc]  # re-initialise in place

    @property
    def on_dask(self) -> bool:
        return bool(self.address)

    def __enter__(self) -> ReadingTaskRunner:
        self.address = check_dask_address(load_settings().dask_address if self.dask_address is None
                                          else self.dask_address)
        self._inner = dask_runner(self.address) if self.address else ThreadPoolTaskRunner(max_workers=self.threads)
        self._inner.__enter__()
        self._checked = False
        super().__enter__()
        return self

    def __exit__(self, exc_type: Any, exc_value: Any, traceback: Any) -> None:
        inner, self._inner = self._inner, None
        try:
            if inner is not None and self.on_dask and inner._client is not None:
                _drain_workers(inner._client)
        finally:
            try:
                if inner is not None:
                    inner.__exit__(exc_type, exc_value, traceback)
            finally:
                super().__exit__(exc_type, exc_value, traceback)

    def cancel_all(self) -> None:
        if self._inner is not None and hasattr(self._inner, "cancel_all"):
            self._inner.cancel_all()

    def submit(self, task: Any, parameters: dict[str, Any], wait_for: Any = None, dependencies: Any = None) -> Any:
        if not self._started or self._inner is None:
            raise RuntimeError("The task runner must be started before submitting work.")
        if not self.on_dask:
            return self._inner.submit(task, parameters, wait_for, dependencies)
        parameters_seen = {k: _unquoted(v) for k, v in parameters.items()}  # the flow quotes its big inputs
        if not self._checked:
            self._check_workers(parameters_seen)
            self._checked = True
        # unquoted: a Dask worker's task engine does not unwrap `quote` as the threads' one does
        submitted = self._inner.submit(task, parameters_seen, wait_for, dependencies)
        future = _releasing_future_class()(wrapped_future=submitted.wrapped_future,
                                           task_run_id=submitted.task_run_id)
        batch = parameters_seen.get("batch") or []
        if getattr(task, "name", None) in PROGRESS_TASKS and batch:
            future._ticker = _Ticker([getattr(f, "source_file", None) for f in batch])
            future.wrapped_future.add_done_callback(future._ticker.fire)  # as batches finish
        return future

    def _check_workers(self, parameters: dict[str, Any]) -> None:
        """Every connected worker reads like this process and sees the run's raw folder and
        `.state/` (coop.run.scaleout); at least one worker within `worker_wait_s()`."""
        from coop.run.scaleout import problems, reader_identity, worker_report

        try:
            client = self._inner.client  # starts the LocalCluster, or connects to the scheduler
        except Exception as e:  # noqa: BLE001 — OSError, distributed's timeouts, a cluster that did not start
            what = ("Không khởi động được cụm Dask trên máy này" if (self.address or "").startswith("local:")
                    else f"Không kết nối được tới Dask scheduler {self.address}")
            raise ScaleOutError(f"{what} (Dask cluster {self.address} unavailable: {type(e).__name__}: {e}) "
                                f"[dask_unavailable]") from None
        wait = worker_wait_s()
        try:
            client.wait_for_workers(1, timeout=wait)
        except Exception as e:  # noqa: BLE001 — distributed's TimeoutError and connection errors
            raise ScaleOutError(
                f"Không có máy đọc Dask nào sẵn sàng sau {wait:.0f} giây "
                f"(no Dask worker connected to the scheduler {self.address} within {wait:.0f} s: "
                f"{type(e).__name__}: {e}) [dask_no_worker]") from None
        sample = _sample_file(parameters.get("batch") or [])
        state = parameters.get("state") or getattr(parameters.get("ctx"), "state", None)  # the run's .state/
        token_path = None
        token = None
        if state is not None:
            Path(state).mkdir(parents=True, exist_ok=True)
            token_path = Path(state) / f".tmp-dask-probe-{uuid.uuid4().hex}"  # .tmp-*: cleanup_stale's
            token = (str(token_path), uuid.uuid4().hex)
            token_path.write_text(token[1], encoding="utf-8")
        try:
            reports = client.run(worker_report, sample, token)
        finally:
            if token_path is not None:
                token_path.unlink(missing_ok=True)
        found = problems(reader_identity(), reports, sample[0] if sample else None, str(state) if state else None)
        if found:
            raise ScaleOutError("\n".join(found))
        log.info("Reading on Dask %s: %d worker(s) checked.", self.address, len(reports))


def _sample_file(batch: list[Any]) -> tuple[str, int] | None:
    """(path, size) of the first file of the batch this process sees with its planned size."""
    for f in batch:
        try:
            if os.stat(f.path).st_size == f.size:
                return str(f.path), int(f.size)
        except (OSError, AttributeError, TypeError):
            continue
    return None


class _Ticker:
    """Advances the flow's progress display by a batch's files, once: when Dask reports the
    batch done (any order), at the latest when the flow takes its result."""

    def __init__(self, labels: list[str | None]):
        self.labels = labels
        self._lock = threading.Lock()
        self._done = False

    def fire(self, *_: Any) -> None:
        from coop.outputs.run_report import progress_tick

        with self._lock:
            if self._done:
                return
            self._done = True
        for label in self.labels:
            progress_tick(label)


def _drain_workers(client: Any) -> None:
    """Prefect's logs and task-run events still queued in the workers, sent to the API now
    (the states of the reading tasks; a LocalCluster is about to stop its workers)."""
    try:
        client.run(_drain_here)
    except Exception as e:  # noqa: BLE001 — logs only: never fail a run for them
        log.debug("Could not drain Prefect on the Dask workers: %s", e)


def _drain_here(timeout: float = 5) -> None:
    """Run on a worker: `drain_prefect_workers` on a thread of its own (`client.run` calls this
    on the worker's event loop, where Prefect's `drain_all` would only return a coroutine)."""
    import threading

    from coop.run.prefect_env import drain_prefect_workers

    t = threading.Thread(target=drain_prefect_workers, args=(timeout,), name="coop-drain", daemon=True)
    t.start()
    t.join(timeout + 1)


@functools.cache
def _releasing_future_class() -> type:
    from prefect_dask.task_runners import PrefectDaskFuture

    class ReleasingDaskFuture(PrefectDaskFuture[Any]):
        """A `PrefectDaskFuture` that releases its Dask future once its final state is in the
        flow: the workers then drop the batch's results, and a worker lost later in the run
        is not made to read the batch again (prefect#15442)."""

        _ticker: _Ticker | None = None

        def result(self, timeout: float | None = None, raise_on_failure: bool = True) -> Any:
            try:
                return super().result(timeout=timeout, raise_on_failure=raise_on_failure)
            finally:
                if self._final_state is not None:
                    self._wrapped_future.release()  # type: ignore[no-untyped-call]  # distributed is untyped
                    if self._ticker is not None:
                        self._ticker.fire()

        def wait(self, timeout: float | None = None) -> None:
            if self._final_state is None:
                super().wait(timeout)

    return ReleasingDaskFuture
