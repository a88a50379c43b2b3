"""Settings of a coop installation (`coop.toml`), read once where a command starts.

Lookup order for each setting: the environment (`COOP_<NAME>`, e.g. `COOP_PROVINCE`; the
CLI's `--province` sets it for the whole command, Prefect flows included), then the file
named by `COOP_CONFIG`, else `coop.toml` in the project root, then the defaults below.

    [coop]
    province = "25"          # today's province: GSO code or name; "VN" = the whole country

`province` is the province as it is today (one of the 34 since 1 July 2025). Its
predecessor provinces and their districts come from the reference data
(`schemas/reference/`), so the district-era history loads without more configuration.
"""

from __future__ import annotations

import os
import tomllib
from dataclasses import dataclass
from pathlib import Path

from coop.paths import PROJECT_ROOT

__all__ = ["Settings", "load_settings", "DEFAULT_PROVINCE", "CONFIG_FILE", "ENV_PROVINCE", "SettingsError"]

CONFIG_FILE = PROJECT_ROOT / "coop.toml"
DEFAULT_PROVINCE = "25"  # Phú Thọ (Hòa Bình, Vĩnh Phúc and Phú Thọ since 1 July 2025)
ENV_PROVINCE = "COOP_PROVINCE"


class SettingsError(Exception):
    """coop.toml cannot be read or holds a value of the wrong type."""


@dataclass(frozen=True)
class Settings:
    province: str = DEFAULT_PROVINCE
    source: str = "defaults"  # where the settings came from, for messages


def _config_path() -> Path:
    env = os.environ.get("COOP_CONFIG")
    return Path(env) if env else CONFIG_FILE


def load_settings(path: Path | None = None) -> Settings:
    """Settings from the environment, then `path` (default: $COOP_CONFIG or coop.toml)."""
    path = Path(path) if path is not None else _config_path()
    data: dict[str, object] = {}
    source = "defaults"
    if path.is_file():
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
    return Settings(province=str(province).strip(), source=source)
