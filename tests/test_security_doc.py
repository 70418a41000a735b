"""SECURITY.md claims nothing that no test shows: every test its threat table names exists."""

from __future__ import annotations

import ast
import re

from tests.support import ROOT

SECURITY = ROOT / "SECURITY.md"


def named_tests() -> list[tuple[str, str]]:
    table_rows = [line for line in SECURITY.read_text().splitlines() if line.startswith("| ")]
    return [(path, name) for row in table_rows for path, name in re.findall(r"`(tests/[\w/]+\.py)::(\w+)`", row)]


def test_every_threat_in_the_table_names_a_test() -> None:
    rows = [line for line in SECURITY.read_text().split("## Threat model")[1].splitlines() if line.startswith("| ")]
    threats = [row for row in rows if not row.startswith(("| threat", "|---"))]
    assert len(threats) >= 30
    assert all("`tests/" in row for row in threats), [row for row in threats if "`tests/" not in row]


def test_every_test_the_threat_table_names_exists() -> None:
    missing = []
    for path, name in named_tests():
        source = ROOT / path
        defined = (
            {node.name for node in ast.walk(ast.parse(source.read_text())) if isinstance(node, ast.FunctionDef)}
            if source.exists()
            else set()
        )
        if name not in defined:
            missing.append(f"{path}::{name}")
    assert not missing
