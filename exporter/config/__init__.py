"""The configuration wing: flags, environment and the configuration file, validated into one frozen Config.

Other wings import from here (or from exporter.values), never from the modules inside.
"""

from exporter.config.environment import Flags, build_config
from exporter.config.model import (
    CLOUDS,
    GRAPH_GLOBAL_LIMIT,
    LOG_FORMATS,
    LOG_LEVELS,
    MICROSOFT_AUTHORITY_HOSTS,
    SOURCES,
    Certificate,
    ClientSecret,
    Cloud,
    Config,
    Credential,
    Demo,
    FederatedToken,
    ManagedIdentity,
    Tenant,
)

__all__ = [
    "CLOUDS",
    "GRAPH_GLOBAL_LIMIT",
    "LOG_FORMATS",
    "LOG_LEVELS",
    "MICROSOFT_AUTHORITY_HOSTS",
    "SOURCES",
    "Certificate",
    "ClientSecret",
    "Cloud",
    "Config",
    "Credential",
    "Demo",
    "FederatedToken",
    "Flags",
    "ManagedIdentity",
    "Tenant",
    "build_config",
]
