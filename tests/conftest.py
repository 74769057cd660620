"""Fixtures shared by the pytest suites under tests/ (CLI, NetworkManager, Python)."""
import os
import pathlib
import shutil

import pytest

ROOT = pathlib.Path(__file__).resolve().parents[1]
FIXTURES = ROOT / "tests" / "fixtures"


def find_cli():
    """The mptcpstatectl under test: $MPTCPSTATECTL, else the workspace's release build."""
    path = os.environ.get("MPTCPSTATECTL") or str(ROOT / "target" / "release" / "mptcpstatectl")
    if not os.access(path, os.X_OK):
        found = shutil.which("mptcpstatectl")
        if not found:
            pytest.fail(f"no mptcpstatectl at {path}: run `cargo build --release -p mptcpstatectl`")
        path = found
    return path


@pytest.fixture(scope="session")
def cli():
    return find_cli()


@pytest.fixture(scope="session")
def seed_yaml():
    """The first example of nmstate's MPTCP page (the project's seed)."""
    return (FIXTURES / "seed.yml").read_text()
