"""Mutation run over the core: do the fast tests notice a one-operator change?

For each module below, every comparison, boolean operator, `not`, boolean constant and small integer constant
is changed once (`==`→`!=`, `<`→`<=`, `and`→`or`, `not x`→`x`, `True`→`False`, `n`→`n + 1`), the module is
written into a scratch copy of the repository, and the module's fast tests run against it. A mutant the tests
do not fail "survives": either the tests miss a behaviour, or the change is equivalent (it cannot change what a
user sees). docs/mutation.md lists the survivors of the last run, each judged.

    python3 benchmarks/mutation.py                      # every module below
    python3 benchmarks/mutation.py exporter/graph/urls.py

Each mutant costs one pytest run of the module's tests (a few seconds): the whole run takes tens of minutes.
"""

from __future__ import annotations

import argparse
import ast
import copy
import os
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent

# module → the fast tests that should notice a change in it
TARGETS: dict[str, list[str]] = {
    "exporter/graph/urls.py": ["tests/test_urls.py"],
    "exporter/graph/retry_after.py": ["tests/test_pacing.py"],
    "exporter/graph/pacing.py": ["tests/test_pacing.py"],
    "exporter/sources/legacy.py": ["tests/test_legacy_parsing.py"],
    "exporter/sources/strength.py": ["tests/test_tally.py"],
    "exporter/snapshot.py": ["tests/test_legacy_parsing.py", "tests/test_tally.py"],
}

SWAPS: dict[type[ast.AST], type[ast.AST]] = {
    ast.Eq: ast.NotEq,
    ast.NotEq: ast.Eq,
    ast.Lt: ast.LtE,
    ast.LtE: ast.Lt,
    ast.Gt: ast.GtE,
    ast.GtE: ast.Gt,
    ast.In: ast.NotIn,
    ast.NotIn: ast.In,
    ast.Is: ast.IsNot,
    ast.IsNot: ast.Is,
    ast.And: ast.Or,
    ast.Or: ast.And,
}


@dataclass(frozen=True)
class Mutant:
    line: int
    what: str
    source: str


def mutants(source: str) -> Iterator[Mutant]:
    """Every single-point mutant of a module, as the whole mutated source (docstrings left alone)."""
    tree = ast.parse(source)
    nodes = list(ast.walk(tree))
    docstrings = {
        id(node.body[0].value)
        for node in nodes
        if isinstance(node, ast.Module | ast.ClassDef | ast.FunctionDef | ast.AsyncFunctionDef)
        and node.body
        and isinstance(node.body[0], ast.Expr)
    }
    for index, node in enumerate(nodes):
        if id(node) in docstrings:
            continue
        for what, change in _changes(node):
            mutated = copy.deepcopy(tree)
            change(list(ast.walk(mutated))[index])  # ast.walk visits the copy in the same order
            yield Mutant(getattr(node, "lineno", 0), what, ast.unparse(mutated))


def _changes(node: ast.AST) -> Iterator[tuple[str, Callable[[Any], None]]]:
    if isinstance(node, ast.Compare):
        for i, op in enumerate(node.ops):
            if type(op) in SWAPS:
                new = SWAPS[type(op)]

                def swap(n: ast.Compare, i: int = i, new: type[ast.AST] = new) -> None:
                    n.ops[i] = new()

                yield f"{type(op).__name__} → {new.__name__}", swap
    elif isinstance(node, ast.BoolOp):
        new = SWAPS[type(node.op)]

        def swap_bool(n: ast.BoolOp, new: type[ast.AST] = new) -> None:
            n.op = new()

        yield f"{type(node.op).__name__} → {new.__name__}", swap_bool
    elif isinstance(node, ast.UnaryOp) and isinstance(node.op, ast.Not):

        def drop_not(n: ast.UnaryOp) -> None:
            n.operand = ast.UnaryOp(ast.Not(), n.operand)  # `not not x`: the truth of x, `not` undone

        yield "not x → x", drop_not
    elif isinstance(node, ast.Constant) and isinstance(node.value, bool):

        def flip(n: ast.Constant) -> None:
            n.value = not n.value

        yield f"{node.value} → {not node.value}", flip
    elif isinstance(node, ast.Constant) and type(node.value) is int and 0 <= node.value < 10**6:

        def bump(n: ast.Constant) -> None:
            n.value += 1

        yield f"{node.value} → {node.value + 1}", bump


def run(module: str, tests: list[str], scratch: Path, timeout: float) -> list[tuple[Mutant, str]]:
    path = scratch / module
    original = path.read_text()
    found = list(mutants(original))
    survivors = []
    env = {**os.environ, "PYTHONPATH": str(scratch)}
    command = [sys.executable, "-m", "pytest", "-x", "-q", "-p", "no:cacheprovider", *tests]
    try:
        for number, mutant in enumerate(found, 1):
            path.write_text(mutant.source)
            try:
                result = subprocess.run(command, cwd=scratch, env=env, capture_output=True, timeout=timeout)
                verdict = "survived" if result.returncode == 0 else "killed"
            except subprocess.TimeoutExpired:
                verdict = "killed (timeout)"
            print(f"{module}:{mutant.line} {mutant.what}: {verdict} [{number}/{len(found)}]", flush=True)
            if verdict == "survived":
                survivors.append((mutant, verdict))
    finally:
        path.write_text(original)
    return survivors


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("modules", nargs="*", default=list(TARGETS), help="modules to mutate (default: all)")
    parser.add_argument("--timeout", type=float, default=300, help="seconds a test run may take")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        scratch = Path(tmp) / "repo"
        shutil.copytree(ROOT, scratch, ignore=shutil.ignore_patterns(".git", "__pycache__", ".venv", "*.egg-info"))
        total = []
        for module in args.modules:
            total += [(module, m) for m, _ in run(module, TARGETS[module], scratch, args.timeout)]
    print(f"\n{len(total)} survivors")
    for module, mutant in total:
        print(f"- {module}:{mutant.line} {mutant.what}")


if __name__ == "__main__":
    main()
