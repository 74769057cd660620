"""mptcpstatectl format on the shared table of good inputs (tests/fixtures/good/):
inputs nmstate takes unchanged are taken, with the canonical form the table gives."""
import importlib.util
import pathlib
import subprocess

import pytest

ROOT = pathlib.Path(__file__).resolve().parents[2]
_spec = importlib.util.spec_from_file_location(
    "good", ROOT / "tests" / "fixtures" / "good" / "materialize.py"
)
_good = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(_good)
CASES = _good.load_cases()


@pytest.mark.parametrize("case", CASES, ids=[c["name"] for c in CASES])
def test_good_input(cli, case):
    out = subprocess.run([cli, "format", case["input"]], capture_output=True, timeout=30)
    assert out.returncode == 0, out.stderr
    assert out.stdout.decode() == case["canonical"]
    out = subprocess.run([cli, "format", "-"], input=case["data"], capture_output=True, timeout=30)
    assert out.stdout.decode() == case["canonical"], out.stderr
