"""The package: public names, version, type information."""

import ast
import importlib.metadata
import inspect
import pathlib
import re
import subprocess
import sys
import tempfile

import pytest

import mptcpstate
from mptcpstate import _native
from pyshared import REPO

PUBLIC = {
    "__version__",
    "format",
    "generate_configurations",
    "show",
    "check",
    "apply",
    "commit",
    "rollback",
    "MptcpStateError",
    "InvalidArgumentError",
    "NotSupportedError",
    "PermissionDeniedError",
    "NetworkManagerError",
    "KernelError",
    "VerificationError",
    "TimeoutError",
    "BusyError",
    "BugError",
}

PACKAGE_DIR = pathlib.Path(mptcpstate.__file__).parent


def cargo_version():
    text = (REPO / "Cargo.toml").read_text(encoding="utf-8")
    section = re.search(r"^\[workspace\.package\]$(.*?)^\[", text, re.M | re.S)
    assert section, "no [workspace.package] in Cargo.toml"
    version = re.search(r'^version\s*=\s*"([^"]+)"', section.group(1), re.M)
    assert version, "no version in [workspace.package]"
    return version.group(1)


def test_all_is_the_public_api():
    assert set(mptcpstate.__all__) == PUBLIC
    assert len(mptcpstate.__all__) == len(PUBLIC)
    for name in mptcpstate.__all__:
        assert hasattr(mptcpstate, name), name


def test_version_is_the_cargo_version():
    assert mptcpstate.__version__ == cargo_version()
    assert importlib.metadata.version("mptcpstate") == mptcpstate.__version__


def test_signatures():
    sig = inspect.signature(mptcpstate.format)
    assert list(sig.parameters) == ["state", "yaml"]
    assert sig.parameters["yaml"].kind is inspect.Parameter.KEYWORD_ONLY
    assert sig.parameters["yaml"].default is True
    assert list(inspect.signature(mptcpstate.generate_configurations).parameters) == ["state"]
    assert mptcpstate.format.__doc__ and mptcpstate.generate_configurations.__doc__


def test_type_information_is_installed():
    assert (PACKAGE_DIR / "py.typed").is_file()
    assert (PACKAGE_DIR / "_native.pyi").is_file()


def test_native_stub_matches_the_module():
    tree = ast.parse((PACKAGE_DIR / "_native.pyi").read_text(encoding="utf-8"))
    functions = {n.name: n for n in tree.body if isinstance(n, ast.FunctionDef)}
    variables = {
        n.target.id
        for n in tree.body
        if isinstance(n, ast.AnnAssign) and isinstance(n.target, ast.Name)
    }
    runtime = {n for n in dir(_native) if not (n.startswith("__") and n != "__version__")}
    assert set(functions) | variables == runtime
    for name, node in functions.items():
        params = inspect.signature(getattr(_native, name)).parameters
        stub = [a.arg for a in node.args.args] + [a.arg for a in node.args.kwonlyargs]
        assert stub == list(params), name
        kwonly = [p for p, v in params.items() if v.kind is inspect.Parameter.KEYWORD_ONLY]
        assert [a.arg for a in node.args.kwonlyargs] == kwonly, name


def test_stubtest_agrees_with_the_runtime():
    """mypy's stubtest, where mypy is installed (not needed for the other tests)."""
    pytest.importorskip("mypy.stubtest")
    result = subprocess.run(
        [sys.executable, "-m", "mypy.stubtest", "mptcpstate"],
        capture_output=True,
        text=True,
        cwd=tempfile.gettempdir(),
        timeout=300,
    )
    assert result.returncode == 0, result.stdout + result.stderr
