"""Run the Dockerfile's build steps without a container engine, and the result as the image would.

CI has no Docker engine. So that the image's install steps are exercised rather than only linted, this
reads the Dockerfile and carries out its build stage here: WORKDIR, COPY and RUN in order, with every
absolute path the stage uses moved under a temporary directory. Then it checks what the final stage relies
on: the virtual environment it copies exists, the ENTRYPOINT program is in it, and it runs as the image's
numeric USER: `--version`, and `--demo --once` (one poll of the simulated tenant, metrics on stdout).

Usage: python3 .ci/dockerfile_steps.py [Dockerfile]
"""

from __future__ import annotations

import json
import os
import re
import shlex
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path


def instructions(text: str) -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) pairs, continuation lines joined, comments and blank lines dropped."""
    out: list[tuple[str, str]] = []
    current = ""
    for line in text.splitlines():
        stripped = line.strip()
        if not current and (not stripped or stripped.startswith("#")):
            continue
        if stripped.startswith("#"):
            continue  # a comment inside a continued instruction
        if stripped.endswith("\\"):
            current += stripped[:-1] + " "
            continue
        current += stripped
        keyword, _, rest = current.partition(" ")
        out.append((keyword.upper(), rest.strip()))
        current = ""
    return out


def main() -> int:
    root = Path(__file__).resolve().parent.parent
    dockerfile = Path(sys.argv[1]) if len(sys.argv) > 1 else root / "Dockerfile"
    steps = instructions(dockerfile.read_text())
    stages = [i for i, (keyword, _) in enumerate(steps) if keyword == "FROM"]
    assert len(stages) == 2, "expected a build stage and a final stage"
    build, final = steps[stages[0] + 1 : stages[1]], steps[stages[1] + 1 :]

    # Absolute paths the Dockerfile uses move under one temporary root, the same way in every instruction.
    absolute = set()
    for _, args in build + final:
        absolute.update(re.findall(r"(?<![\w.$])(/(?:opt|src|app|usr/src)(?:/[\w.-]+)*)", args))
    tmp = Path(tempfile.mkdtemp(prefix="dockerfile-steps-"))
    tmp.chmod(0o755)  # the image's user must reach the venv

    def moved(text: str) -> str:
        for path in sorted(absolute, key=len, reverse=True):
            text = re.sub(rf"(?<![\w.$]){re.escape(path)}", str(tmp) + path, text)
        return text

    env = {k: v for k, v in os.environ.items() if not k.startswith(("PIP_", "PYTHON", "VIRTUAL_ENV"))}
    workdir = tmp
    try:
        for keyword, args in build:
            if keyword == "ENV":
                for key, value in re.findall(r"(\w+)=(\S+)", args):
                    env[key] = moved(value).replace("$PATH", env.get("PATH", ""))
            elif keyword == "WORKDIR":
                workdir = Path(moved(args))
                workdir.mkdir(parents=True, exist_ok=True)
            elif keyword == "COPY":
                *sources, dest = shlex.split(args)
                assert not any(s.startswith("--") for s in sources), f"unsupported COPY flags: {args}"
                target = Path(moved(dest)) if dest.startswith("/") else workdir / dest
                for source in sources:
                    src = root / source
                    if src.is_dir():
                        shutil.copytree(src, target, ignore=shutil.ignore_patterns("__pycache__"), dirs_exist_ok=True)
                    else:
                        target.mkdir(parents=True, exist_ok=True)
                        shutil.copy(src, target / src.name)
            elif keyword == "RUN":
                command = moved(args)
                print(f"+ RUN {command}", flush=True)
                subprocess.run(["/bin/sh", "-c", command], cwd=workdir, env=env, check=True)
            elif keyword not in ("ARG", "LABEL"):
                raise SystemExit(f"unsupported instruction in the build stage: {keyword}")

        final_env = dict(env)
        user = entrypoint = None
        for keyword, args in final:
            if keyword == "COPY":
                assert args.startswith("--from=build "), f"the final stage copies only from the build stage: {args}"
                source, dest = shlex.split(args)[1:]
                assert source == dest, "the venv must keep its path (its scripts name their interpreter)"
                assert Path(moved(source)).is_dir(), f"{source} was not built"
            elif keyword == "ENV":
                for key, value in re.findall(r"(\w+)=(\S+)", args):
                    final_env[key] = moved(value).replace("$PATH", os.environ.get("PATH", ""))
            elif keyword == "USER":
                user = args
            elif keyword == "ENTRYPOINT":
                entrypoint = json.loads(args)
        assert user and re.fullmatch(r"\d+(:\d+)?", user), f"USER must be numeric: {user}"
        assert isinstance(entrypoint, list), "ENTRYPOINT must be in exec form"
        uid, _, gid = user.partition(":")
        as_user = ["setpriv", f"--reuid={uid}", f"--regid={gid or uid}", "--clear-groups"]
        program = shutil.which(entrypoint[0], path=final_env["PATH"])
        assert program and program.startswith(str(tmp)), f"{entrypoint[0]} is not in the image's venv"
        for extra in (["--version"], ["--demo", "--once"]):
            print(f"+ (as {user}) {' '.join(entrypoint + extra)}", flush=True)
            result = subprocess.run(
                [*as_user, program, *entrypoint[1:], *extra],
                env=final_env,
                cwd="/",
                capture_output=True,
                text=True,
                timeout=60,
            )
            assert result.returncode == 0, result.stderr
            if "--once" in extra:
                assert 'credential_exporter_up{tenant="demo"} 1.0' in result.stdout, result.stdout
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    print("Dockerfile steps: OK")
    return 0


if __name__ == "__main__":
    sys.exit(main())
