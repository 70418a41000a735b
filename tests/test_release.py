"""What a release ships: one version everywhere, the build's revision in build_info, pinned image
dependencies, the licence, and release and CI workflows that do what the README says."""

from __future__ import annotations

import platform
import re
import tomllib
from typing import Any

import yaml

from exporter import __version__
from tests.support import ROOT, run_cli

WORKFLOWS = ROOT / ".github" / "workflows"


def load(relative: str) -> Any:
    return yaml.safe_load((ROOT / relative).read_text())


def test_the_version_comes_from_exporter_init_everywhere() -> None:
    pyproject = tomllib.loads((ROOT / "pyproject.toml").read_text())
    assert "version" in pyproject["project"]["dynamic"]
    assert pyproject["tool"]["setuptools"]["dynamic"]["version"] == {"attr": "exporter.__version__"}
    chart = load("deploy/helm/entra-credential-exporter/Chart.yaml")
    assert chart["version"] == chart["appVersion"] == __version__, "bump the chart with exporter.__version__"
    for overlay in ("base", "sharded"):
        (image,) = load(f"deploy/kubernetes/{overlay}/kustomization.yaml")["images"]
        assert image["newTag"] == __version__, overlay
    # The image's version label is the release workflow's build argument, never a second literal.
    dockerfile = (ROOT / "Dockerfile").read_text()
    assert re.search(r"^ARG VERSION$", dockerfile, re.M)
    assert __version__ not in dockerfile
    release = (WORKFLOWS / "release.yml").read_text()
    assert "exporter.__version__" in release and "VERSION=${{ needs.version.outputs.version }}" in release


def test_build_info_reports_the_revision_baked_into_the_image_and_the_python_version() -> None:
    baked = run_cli("--demo", "--once", env={"ENTRA_CREDENTIAL_EXPORTER_REVISION": "0123abc"})
    assert baked.returncode == 0, baked.stderr
    expected = f'python_version="{platform.python_version()}",revision="0123abc",version="{__version__}"'
    assert f"credential_exporter_build_info{{{expected}}} 1.0" in baked.stdout
    plain = run_cli("--demo", "--once", env={"ENTRA_CREDENTIAL_EXPORTER_REVISION": ""})
    assert 'revision="unknown"' in plain.stdout
    dockerfile = (ROOT / "Dockerfile").read_text()
    assert "ENTRA_CREDENTIAL_EXPORTER_REVISION=${REVISION}" in dockerfile
    assert "REVISION=${{ github.sha }}" in (WORKFLOWS / "release.yml").read_text()


def test_the_image_installs_every_dependency_at_a_pinned_version() -> None:
    pins = {}
    for line in (ROOT / "constraints.txt").read_text().splitlines():
        if line.strip() and not line.startswith("#"):
            name, _, version = line.partition("==")
            assert version, f"{line}: constraints pin exact versions"
            pins[re.sub(r"[-_.]+", "-", name).lower()] = version
    dependencies = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["dependencies"]
    for requirement in dependencies:
        name = re.sub(r"[-_.]+", "-", re.match(r"[A-Za-z0-9_.-]+", requirement)[0]).lower()  # type: ignore[index]
        assert name in pins, f"{name} is not pinned in constraints.txt"
    dockerfile = (ROOT / "Dockerfile").read_text()
    assert "pip install --no-cache-dir -c constraints.txt ." in dockerfile
    assert "!constraints.txt" in (ROOT / ".dockerignore").read_text().splitlines()


def test_the_licence_the_package_and_image_declare_is_shipped() -> None:
    assert tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["license"] == {"text": "Apache-2.0"}
    assert 'org.opencontainers.image.licenses="Apache-2.0"' in (ROOT / "Dockerfile").read_text()
    text = (ROOT / "LICENSE").read_text()
    assert "Apache License" in text and "Version 2.0, January 2004" in text
    assert "END OF TERMS AND CONDITIONS" in text  # the full text, not a pointer to it


def test_the_release_publishes_a_multi_arch_image_with_provenance_the_wheel_and_the_chart() -> None:
    release = load(".github/workflows/release.yml")
    assert release[True]["push"]["tags"] == ["v*"]  # YAML 1.1 reads the key `on` as True
    jobs = release["jobs"]
    build = next(s for s in jobs["image"]["steps"] if s.get("uses", "").startswith("docker/build-push-action"))
    assert set(build["with"]["platforms"].split(",")) == {"linux/amd64", "linux/arm64"}
    assert build["with"]["provenance"] == "mode=max" and build["with"]["push"] is True
    assert "ghcr.io/" in jobs["version"]["steps"][-1]["run"]
    assert jobs["pypi"]["permissions"]["id-token"] == "write"  # trusted publishing: no token stored
    assert any(s.get("uses", "").startswith("pypa/gh-action-pypi-publish") for s in jobs["pypi"]["steps"])
    assert re.search(r"helm push \S+ \"oci://ghcr\.io/", jobs["chart"]["steps"][-1]["run"])
    for job in ("image", "pypi", "chart"):
        assert set(jobs[job]["needs"]) == {"version", "ci"}, job


def test_pull_requests_run_ci_run() -> None:
    ci = load(".github/workflows/ci.yml")
    assert "pull_request" in ci[True] and "workflow_call" in ci[True]
    (job,) = ci["jobs"].values()
    assert job["steps"][-1]["run"].endswith(" .ci/run")
