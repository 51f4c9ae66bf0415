"""Typed settings: a TOML file, then ``REGISTRY__SECTION__KEY`` environment overrides, then flags.

This package is the only code that reads ``os.environ`` for configuration.
"""

from config.loader import ConfigError, load_settings, settings_from_mapping
from config.settings import (
    AuthSettings,
    LimitSettings,
    LogSettings,
    ServerSettings,
    Settings,
    StorageSettings,
    UploadSettings,
)

__all__ = [
    "AuthSettings",
    "ConfigError",
    "LimitSettings",
    "LogSettings",
    "ServerSettings",
    "Settings",
    "StorageSettings",
    "UploadSettings",
    "load_settings",
    "settings_from_mapping",
]
