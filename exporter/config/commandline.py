"""The command line, made from the option table: grouped --help, and one line (exit 2) for any misuse."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from typing import NoReturn

from exporter import __version__
from exporter.config.environment import VARIABLES
from exporter.config.options import OPTIONS

PROG = "entra-credential-exporter"


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> NoReturn:
        """One line, as for a bad value, instead of argparse's usage dump."""
        self.exit(2, f"{PROG}: {message} (see --help)\n")


def parser() -> argparse.ArgumentParser:
    epilog = "environment (one tenant without --config.file; never a secret on the command line):\n" + "\n".join(
        f"  {name:<37} {what}" for name, what in VARIABLES.items()
    )
    p = _Parser(
        prog=PROG,
        description="Prometheus exporter for the MFA and SSPR registration of Microsoft Entra ID users.",
        epilog=epilog,
        formatter_class=argparse.RawDescriptionHelpFormatter,
        allow_abbrev=False,  # a misspelt flag is an error, not a guess
    )
    groups: dict[str, argparse._ArgumentGroup] = {}
    for name, option in OPTIONS.items():
        group = groups.get(option.group) or groups.setdefault(option.group, p.add_argument_group(option.group))
        shown = f"{option.help} (default {option.default})" if option.default and not option.switch else option.help
        if option.key:
            shown += f"; file key {option.key}"
        if option.switch:
            group.add_argument(option.flag, dest=name, action="store_true", default=argparse.SUPPRESS, help=shown)
        else:
            group.add_argument(
                option.flag, dest=name, metavar=option.metavar, default=argparse.SUPPRESS, help=shown.replace("%", "%%")
            )
    p.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    return p


def parse_command_line(argv: Sequence[str] | None = None) -> dict[str, object]:
    """The options written on the command line, by Options field; values unparsed (text, or True for a switch).

    Only what was written is returned: a flag given, even with its default value, wins over the file.
    """
    return vars(parser().parse_args(sys.argv[1:] if argv is None else argv))
