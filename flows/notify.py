"""Tell someone when a scheduled or hand-started run fails: a Prefect flow hook that POSTs
JSON to a webhook of the operator's choosing.

Set `COOP_NOTIFY_WEBHOOK` (in the environment of `coop serve`) to an http(s) URL: a chat
webhook (Slack, Mattermost, Google Chat, Teams… read the `text` field), or a small receiver of
your own. Unset = no notification (the flow run is still Failed in the Prefect UI).

The hook runs once per flow run, when it ends Failed (after the nightly's retries are used
up: an attempt that will be retried is `AwaitingRetry`, not Failed) or Crashed (the process
was killed). It never raises: a notification that cannot be sent is logged as a warning.

Payload (JSON, UTF-8):

    {"event": "coop.run.failed", "text": "<Vietnamese line, then English>",
     "flow": "coop-nightly", "flow_run_id": "...", "flow_run_name": "...",
     "deployment_id": "...", "state": "Failed", "message": "<the error>",
     "run_count": 3, "parameters": {...}, "at": "29/11/2026 08:15 (giờ Việt Nam, UTC+07:00)",
     "at_utc": "2026-11-29T01:15:00+00:00", "ui_url": "http://127.0.0.1:4200/runs/flow-run/..."}
"""

from __future__ import annotations

import logging
import os
from datetime import UTC, datetime
from typing import Any

ENV_WEBHOOK = "COOP_NOTIFY_WEBHOOK"
TIMEOUT_SECONDS = 10.0

log = logging.getLogger("coop.notify")


def webhook_url() -> str | None:
    return (os.environ.get(ENV_WEBHOOK) or "").strip() or None


def _ui_url(flow_run_id: Any) -> str | None:
    api = os.environ.get("PREFECT_API_URL") or ""
    if not api:
        return None
    base = api.rstrip("/")
    if base.endswith("/api"):
        base = base[:-4]
    return f"{base}/runs/flow-run/{flow_run_id}"


def _local(dt: datetime) -> str:
    try:
        from coop.settings import local_time

        return local_time(dt)
    except Exception:  # noqa: BLE001 — a side job never fails the run
        return dt.isoformat()


def failure_payload(flow: Any, flow_run: Any, state: Any) -> dict[str, Any]:
    now = datetime.now(UTC)
    flow_name = getattr(flow, "name", None) or str(flow)
    state_name = getattr(state, "name", None) or str(getattr(state, "type", "Failed"))
    message = (getattr(state, "message", None) or "").strip()
    run_name = getattr(flow_run, "name", None)
    text = (f"⚠ coop: lượt chạy {flow_name} ({run_name}) THẤT BẠI lúc {_local(now)}; kho dữ liệu đã công bố "
            f"không thay đổi. Xem nhật ký trong Prefect. — The {flow_name} run {run_name} ended {state_name}: "
            f"{message[:500]}")
    params = getattr(flow_run, "parameters", None) or {}
    return {
        "event": "coop.run.failed",
        "text": text,
        "flow": flow_name,
        "flow_run_id": str(getattr(flow_run, "id", "")),
        "flow_run_name": run_name,
        "deployment_id": str(getattr(flow_run, "deployment_id", None) or "") or None,
        "state": state_name,
        "message": message[:4000],
        "run_count": getattr(flow_run, "run_count", None),
        "parameters": {k: (v if isinstance(v, (str, int, float, bool, type(None))) else str(v))
                       for k, v in dict(params).items()},
        "at": _local(now),
        "at_utc": now.isoformat(),
        "ui_url": _ui_url(getattr(flow_run, "id", "")),
    }


def send(payload: dict[str, Any], url: str | None = None) -> bool:
    """POST `payload` as JSON to `url` (default: COOP_NOTIFY_WEBHOOK). True when it was
    accepted (2xx); never raises."""
    url = url or webhook_url()
    if not url:
        return False
    try:
        import httpx

        resp = httpx.post(url, json=payload, timeout=TIMEOUT_SECONDS)
        if resp.is_success:
            return True
        log.warning("The failure notification to %s was refused: HTTP %s", url, resp.status_code)
    except Exception as exc:  # noqa: BLE001 — a side job never fails the run
        log.warning("Could not send the failure notification to %s: %s", url, exc)
    return False


def notify_failure(flow: Any, flow_run: Any, state: Any) -> None:
    """Prefect `on_failure` / `on_crashed` hook: POST the failure to COOP_NOTIFY_WEBHOOK."""
    url = webhook_url()
    if not url:
        return
    payload = failure_payload(flow, flow_run, state)
    if send(payload, url):
        log.info("Failure notification sent to %s.", url)


HOOKS = {"on_failure": [notify_failure], "on_crashed": [notify_failure]}
