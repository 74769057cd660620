"""The shared table of bad inputs (tests/fixtures/bad/): every case raises the
exception of its kind, from format and generate_configurations, and the message says
what the table says it must."""

import pytest

import mptcpstate
from pyshared import REPO, load_module

materialize = load_module(REPO / "tests" / "fixtures" / "bad" / "materialize.py", "materialize")
CASES = materialize.load_cases()
CLASSES = {
    cls.kind: cls
    for cls in (getattr(mptcpstate, name) for name in mptcpstate.__all__)
    if isinstance(cls, type) and issubclass(cls, mptcpstate.MptcpStateError) and hasattr(cls, "kind")
}


def test_the_table_is_not_empty():
    assert CASES
    assert {case["kind"] for case in CASES} <= set(CLASSES)


@pytest.mark.parametrize("call", ["format", "format-json", "generate_configurations"])
@pytest.mark.parametrize("case", CASES, ids=[case["name"] for case in CASES])
def test_bad_input(case, call):
    fn = {
        "format": mptcpstate.format,
        "format-json": lambda data: mptcpstate.format(data, yaml=False),
        "generate_configurations": mptcpstate.generate_configurations,
    }[call]
    with pytest.raises(mptcpstate.MptcpStateError) as info:
        fn(case["data"])
    err = info.value
    assert type(err) is CLASSES[case["kind"]], f"{err.kind}: {err}"
    assert err.kind == case["kind"]
    for substring in case["message"]:
        assert substring in str(err)
