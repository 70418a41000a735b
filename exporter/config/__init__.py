"""The configuration wing: the option table, the command line, the file and the environment, validated into
one frozen Config.

Other wings import from here (or from exporter.values), never from the modules inside.
"""

from exporter.config.commandline import PROG, parse_command_line
from exporter.config.filemodes import readable_by_others
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
from exporter.config.reader import changed_options, read_config

__all__ = [
    "CLOUDS",
    "GRAPH_GLOBAL_LIMIT",
    "LOG_FORMATS",
    "LOG_LEVELS",
    "MICROSOFT_AUTHORITY_HOSTS",
    "PROG",
    "SOURCES",
    "Certificate",
    "ClientSecret",
    "Cloud",
    "Config",
    "Credential",
    "Demo",
    "FederatedToken",
    "ManagedIdentity",
    "Tenant",
    "changed_options",
    "parse_command_line",
    "read_config",
    "readable_by_others",
]
