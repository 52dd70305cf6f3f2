"""The configuration: loading and validation (:mod:`.loader`) and the typed settings (:mod:`.settings`).

Everything outside this package reads :attr:`Config.settings`, never raw keys.
"""

from support.config.loader import (
    DEFAULT_CONFIG,
    ENV_VAR,
    MISSING,
    SCHEMA_PATH,
    Config,
    ConfigError,
    default_run_id,
    is_secret_key,
    load_config,
    section_defaults,
)
from support.config.settings import Settings, build_settings

__all__ = [
    "DEFAULT_CONFIG",
    "ENV_VAR",
    "MISSING",
    "SCHEMA_PATH",
    "Config",
    "ConfigError",
    "Settings",
    "build_settings",
    "default_run_id",
    "is_secret_key",
    "load_config",
    "section_defaults",
]
