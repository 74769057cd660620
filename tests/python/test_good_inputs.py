"""The shared table of good inputs (tests/fixtures/good/): inputs nmstate takes unchanged
(booleans and integers written as strings) are taken, as str, bytes and (JSON ones) as a
dict, and format gives the canonical YAML the table says."""

import json

import pytest

import mptcpstate
from pyshared import REPO, load_module

materialize = load_module(REPO / "tests" / "fixtures" / "good" / "materialize.py", "good")
CASES = materialize.load_cases()


def forms(case):
    yield "bytes", case["data"]
    yield "str", case["data"].decode()
    if case["input"].endswith(".json"):
        yield "dict", json.loads(case["data"])


@pytest.mark.parametrize("case", CASES, ids=[case["name"] for case in CASES])
def test_good_input(case):
    for form, data in forms(case):
        assert mptcpstate.format(data) == case["canonical"], form
        # JSON output means the same.
        assert mptcpstate.format(json.loads(mptcpstate.format(data, yaml=False))) == case["canonical"]


def test_python_values_as_a_template_renders_them():
    """A dict whose booleans and integers are strings, as Jinja renders them."""
    rendered = {"interfaces": [{"name": "eth1", "ipv4": {
        "enabled": "True", "dhcp": "False",
        "address": [{"ip": "192.0.2.2", "prefix-length": "24"}]}}]}
    native = {"interfaces": [{"name": "eth1", "ipv4": {
        "enabled": True, "dhcp": False,
        "address": [{"ip": "192.0.2.2", "prefix-length": 24}]}}]}
    assert mptcpstate.format(rendered) == mptcpstate.format(native)
