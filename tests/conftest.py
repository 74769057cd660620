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


# --- in CI a skip is a failure -----------------------------------------------------------
#
# MPTCPSTATE_REQUIRE_ALL=1 (scripts/test.sh sets it; so does CI=true) turns every skip
# (pytest.skip, skipif, importorskip, a module skipped at collection) into a failure
# naming its reason: a proof that did not run is not a pass. The one way out is the
# marker `allowed_skip_in_ci(reason)` on the test, for a skip that is expected where CI
# runs (it must say why); its skip then stays a skip, with the marker's reason shown.


def require_all() -> bool:
    return bool(os.environ.get("MPTCPSTATE_REQUIRE_ALL")) or \
        os.environ.get("CI", "").lower() in ("1", "true", "yes")


def pytest_configure(config):
    config.addinivalue_line(
        "markers",
        "allowed_skip_in_ci(reason): this test may skip even where every skip fails "
        "(MPTCPSTATE_REQUIRE_ALL / CI); the reason says why")


def _skip_reason(report) -> str:
    longrepr = report.longrepr
    if isinstance(longrepr, tuple) and len(longrepr) == 3:
        return str(longrepr[2])
    return str(longrepr)


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    outcome = yield
    report = outcome.get_result()
    if not (report.skipped and require_all()) or hasattr(report, "wasxfail"):
        return
    allowed = item.get_closest_marker("allowed_skip_in_ci")
    if allowed is not None:
        why = allowed.args[0] if allowed.args else allowed.kwargs.get("reason")
        assert why, f"{item.nodeid}: allowed_skip_in_ci needs a reason"
        return
    report.outcome = "failed"
    report.longrepr = (f"skipped where every skip fails (MPTCPSTATE_REQUIRE_ALL or CI is set): "
                       f"{_skip_reason(report)}")


@pytest.hookimpl(hookwrapper=True)
def pytest_make_collect_report(collector):
    outcome = yield
    report = outcome.get_result()
    if report.skipped and require_all():
        report.outcome = "failed"
        report.longrepr = (f"{collector.nodeid} skipped at collection where every skip fails "
                           f"(MPTCPSTATE_REQUIRE_ALL or CI is set): {_skip_reason(report)}")
