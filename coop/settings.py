"""Settings of a coop installation (`coop.toml`), read once where a command starts.

Lookup order for each setting: the environment (`COOP_<NAME>`, e.g. `COOP_PROVINCE`; the
CLI's `--province` sets it for the whole command, Prefect flows included), then the file
named by `COOP_CONFIG`, else `coop.toml` in the project root, then the defaults below.

    [coop]
    province = "25"          # today's province: GSO code or name; "VN" = the whole country
    former_plan_province = "17"  # before 2025 the province folder holds this former province's plans
    timezone = "Asia/Ho_Chi_Minh"   # zone of every time shown to people (the warehouse stores UTC)
    backlog_window_years = 3        # funding backlog: HTX established in the last N report years
    dask_address = ""        # reading on Dask (docs/scale-out.md): "" = threads here, "local:N", "tcp://host:8786"

`province` is the province as it is today (one of the 34 since 1 July 2025). Its
predecessor provinces and their districts come from the reference data
(`schemas/reference/`), so the district-era history loads without more configuration.

`timezone` (env `COOP_TIMEZONE`) is an IANA zone name; `local_time(dt)` writes a moment in it
with the zone named: "29/11/2026 08:15 (giờ Việt Nam, UTC+07:00)". Naive datetimes (as
stored in the warehouse) are UTC.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta, timezone, tzinfo
from pathlib import Path
from typing import Any

from coop.paths import PROJECT_ROOT

__all__ = ["Settings", "load_settings", "DEFAULT_PROVINCE", "CONFIG_FILE", "ENV_PROVINCE", "SettingsError",
           "DEFAULT_TIMEZONE", "ENV_TIMEZONE", "local_time", "zone_label", "local_zone", "to_local",
           "ENV_DASK_ADDRESS", "check_dask_address"]

CONFIG_FILE = PROJECT_ROOT / "coop.toml"
DEFAULT_PROVINCE = "25"  # Phú Thọ (Hòa Bình, Vĩnh Phúc and Phú Thọ since 1 July 2025)
ENV_PROVINCE = "COOP_PROVINCE"
DEFAULT_TIMEZONE = "Asia/Ho_Chi_Minh"  # the operators' zone: UTC+7 all year (no summer time)
ENV_TIMEZONE = "COOP_TIMEZONE"
ENV_DASK_ADDRESS = "COOP_DASK_ADDRESS"
_VIETNAM_ZONES = {"Asia/Ho_Chi_Minh", "Asia/Saigon"}


class SettingsError(Exception):
    """coop.toml cannot be read or holds a value of the wrong type."""


@dataclass(frozen=True)
class Settings:
    province: str = DEFAULT_PROVINCE
    source: str = "defaults"  # where the settings came from, for messages
    timezone: str = DEFAULT_TIMEZONE  # IANA zone of the times shown to people
    # the former province whose plans the province folder holds before 2025 (a province of today
    # formed from several: which history this installation carries); None = the only predecessor
    former_plan_province: str | None = None
    # the funding backlog's window (warehouse.md: "the window, 3 years, is a setting"): HTX
    # established in Y-N+1..Y; env COOP_BACKLOG_WINDOW_YEARS; written to ref.settings by the build
    backlog_window_years: int = 3
    # where the reading tasks run (docs/scale-out.md; env COOP_DASK_ADDRESS): "" = a thread pool in
    # the flow process, "local:N" = a Dask LocalCluster of N worker processes started for the run,
    # "tcp://host:port" (or tls://) = the scheduler of a running Dask cluster
    dask_address: str = ""


def config_path() -> Path:
    """The settings file: $COOP_CONFIG, else coop.toml in the project root."""
    env = os.environ.get("COOP_CONFIG")
    return Path(env) if env else CONFIG_FILE


def load_settings(path: Path | None = None) -> Settings:
    """Settings from the environment, then `path` (default: $COOP_CONFIG or coop.toml)."""
    path = Path(path) if path is not None else config_path()
    data: dict[str, object] = {}
    source = "defaults"
    if path.is_file():
        import tomllib  # here: the quick nothing-changed check (coop.run.quick) imports this module

        try:
            with path.open("rb") as fh:
                raw = tomllib.load(fh)
        except (OSError, tomllib.TOMLDecodeError) as exc:
            raise SettingsError(f"{path}: {exc}") from None
        section = raw.get("coop", {})
        if not isinstance(section, dict):
            raise SettingsError(f"{path}: [coop] must be a table")
        data = section
        source = str(path)
    province = os.environ.get(ENV_PROVINCE) or data.get("province") or DEFAULT_PROVINCE
    if os.environ.get(ENV_PROVINCE):
        source = f"${ENV_PROVINCE}"
    if not isinstance(province, (str, int)):
        raise SettingsError(f"{source}: province must be a GSO code or a name, got {province!r}")
    tz = os.environ.get(ENV_TIMEZONE) or data.get("timezone") or DEFAULT_TIMEZONE
    where = f"${ENV_TIMEZONE}" if os.environ.get(ENV_TIMEZONE) else source
    if not isinstance(tz, str) or _zone(tz.strip()) is None:
        raise SettingsError(f"{where}: timezone must be an IANA zone name such as {DEFAULT_TIMEZONE!r}, got {tz!r}")
    plan = os.environ.get("COOP_FORMER_PLAN_PROVINCE") or data.get("former_plan_province")
    window = os.environ.get("COOP_BACKLOG_WINDOW_YEARS") or data.get("backlog_window_years") or 3
    where = "$COOP_BACKLOG_WINDOW_YEARS" if os.environ.get("COOP_BACKLOG_WINDOW_YEARS") else source
    try:
        window_years = int(str(window).strip())
    except ValueError:
        window_years = 0
    if isinstance(window, (bool, float)) or window_years < 1:
        raise SettingsError(f"{where}: backlog_window_years must be a whole number of years >= 1, got {window!r}")
    # checked where it is used (`check_dask_address`: coop run, the flow's task runner), so that a
    # typo in it never stops the commands that do not read on Dask (coop validate, coop report, ...)
    dask = str(os.environ.get(ENV_DASK_ADDRESS) or data.get("dask_address") or "").strip()
    return Settings(province=str(province).strip(), source=source, timezone=tz.strip(),
                    former_plan_province=str(plan).strip() if plan else None, backlog_window_years=window_years,
                    dask_address=dask)


_DASK_ADDRESS = re.compile(
    r"(?:local:(?P<n>[0-9]{1,4})|(?:tcp|tls)://(?:\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9._-]+):[0-9]{1,5})")


def check_dask_address(value: object, where: str | None = None) -> str:
    """The `dask_address` setting, normalised (trimmed; "" = no Dask), or SettingsError naming
    where it came from (default: $COOP_DASK_ADDRESS when set, else the settings file):
    "" | "local:N" (1 <= N <= 1024) | "tcp://host:port" | "tls://host:port"."""
    if where is None:
        where = f"${ENV_DASK_ADDRESS}" if os.environ.get(ENV_DASK_ADDRESS) else str(config_path())
    text = value.strip() if isinstance(value, str) else None
    if text == "":
        return ""
    m = _DASK_ADDRESS.fullmatch(text) if text is not None else None
    if m is None or (m.group("n") is not None and not 1 <= int(m.group("n")) <= 1024):
        raise SettingsError(
            f"{where}: dask_address {value!r} không hợp lệ — để trống (đọc bằng các luồng trên máy này), "
            "'local:N' (N tiến trình Dask trên máy này) hoặc 'tcp://máy:cổng' (một Dask scheduler đang "
            "chạy) (dask_address must be empty, local:N with 1 <= N <= 1024, or tcp://host:port / "
            "tls://host:port of a running Dask scheduler) [invalid_setting]")
    return m.group(0)


# --------------------------------------------------------------------------- times shown to people
def _zone(name: str) -> tzinfo | None:
    """The zone called `name`, None when unknown. Vietnam without a tz database (bare
    Windows): a fixed UTC+7, which is exact (no summer time since 1975)."""
    try:
        from zoneinfo import ZoneInfo

        return ZoneInfo(name)
    except Exception:  # noqa: BLE001 — ZoneInfoNotFoundError, ValueError, no tzdata
        if name in _VIETNAM_ZONES:
            return timezone(timedelta(hours=7), name)
        return None


_zone_cache: dict[tuple[str | None, str, int | None], str] = {}


def local_zone() -> str:
    """The `timezone` setting (COOP_TIMEZONE, coop.toml, default Asia/Ho_Chi_Minh); the
    default when the setting cannot be read (a time is never worth an exception)."""
    path = config_path()
    try:
        mtime = path.stat().st_mtime_ns
    except OSError:
        mtime = None
    key = (os.environ.get(ENV_TIMEZONE), str(path), mtime)
    if key not in _zone_cache:
        try:
            _zone_cache.clear()
            _zone_cache[key] = load_settings().timezone
        except Exception:  # noqa: BLE001 — SettingsError: the command that loads settings says so
            return DEFAULT_TIMEZONE
    return _zone_cache[key]


def _as_datetime(value: Any) -> datetime | None:
    if isinstance(value, str):
        try:
            value = datetime.fromisoformat(value.strip().replace("Z", "+00:00"))
        except ValueError:
            return None
    if not isinstance(value, datetime):
        return None
    return value if value.tzinfo is not None else value.replace(tzinfo=UTC)  # naive = UTC (warehouse)


def to_local(value: Any, zone: str | None = None) -> datetime | None:
    """`value` (aware datetime, naive UTC datetime or ISO text) in the `timezone` setting
    (or `zone`); None when it is not a time."""
    t = _as_datetime(value)
    if t is None:
        return None
    tz = _zone(zone or local_zone()) or _zone(DEFAULT_TIMEZONE)
    return t.astimezone(tz)


def zone_label(zone: str | None = None, at: datetime | None = None) -> str:
    """'giờ Việt Nam, UTC+07:00' (another zone: 'Europe/Paris, UTC+01:00')."""
    name = zone or local_zone()
    t = to_local(at or datetime.now(UTC), name)
    off = t.strftime("%z") if t else ""
    off = f"UTC{off[:3]}:{off[3:]}" if len(off) == 5 else "UTC"
    return f"giờ Việt Nam, {off}" if name in _VIETNAM_ZONES else f"{name}, {off}"


def local_time(dt: Any, zone: str | None = None, *, seconds: bool = False, marker: bool = True) -> str:
    """A moment for people: '29/11/2026 08:15 (giờ Việt Nam, UTC+07:00)', in the `timezone`
    setting (or `zone`). Accepts aware datetimes, naive ones (UTC, as the warehouse stores
    them) and ISO 8601 text; '—' for None, the text itself when it is not a time. Never raises."""
    if dt is None:
        return "—"
    try:
        name = zone or local_zone()
        t = to_local(dt, name)
        if t is None:
            return str(dt)
        text = t.strftime("%d/%m/%Y %H:%M:%S" if seconds else "%d/%m/%Y %H:%M")
        return f"{text} ({zone_label(name, t)})" if marker else text
    except Exception:  # noqa: BLE001 — shown in messages: never the cause of a failure
        return str(dt)
