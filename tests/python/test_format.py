"""mptcpstate.format: canonical YAML by default, JSON on request, from dict, str or
bytes."""

import json

import pytest

import mptcpstate
from pyshared import SEED_DICT, SEED_YAML


def test_seed_example_yaml_is_the_default():
    out = mptcpstate.format(SEED_YAML)
    assert out.startswith("---\n")
    # Canonical form: block lists, flags in kernel order (signal before subflow).
    assert "  mptcp:\n    address-flags:\n    - signal\n    - subflow\n" in out
    assert "    - ip: 192.0.2.2\n      prefix-length: 24\n" in out
    assert out == mptcpstate.format(SEED_YAML, yaml=True)


def test_seed_example_json():
    out = mptcpstate.format(SEED_YAML, yaml=False)
    assert out.lstrip().startswith("{")
    assert json.loads(out) == SEED_DICT


def test_canonical_output_is_a_fixed_point():
    yaml_out = mptcpstate.format(SEED_YAML)
    json_out = mptcpstate.format(SEED_YAML, yaml=False)
    assert mptcpstate.format(yaml_out) == yaml_out
    assert mptcpstate.format(json_out, yaml=False) == json_out
    # Either text form gives the same canonical output.
    assert mptcpstate.format(json_out) == yaml_out


@pytest.mark.parametrize(
    "state",
    [
        SEED_YAML,
        SEED_YAML.encode("utf-8"),
        SEED_DICT,
        json.dumps(SEED_DICT),
        json.dumps(SEED_DICT).encode("utf-8"),
    ],
    ids=["yaml-str", "yaml-bytes", "dict", "json-str", "json-bytes"],
)
def test_every_input_type_gives_the_same_output(state):
    assert mptcpstate.format(state) == mptcpstate.format(SEED_YAML)
    assert json.loads(mptcpstate.format(state, yaml=False)) == SEED_DICT


def test_dict_is_not_changed():
    state = json.loads(json.dumps(SEED_DICT))
    state["interfaces"][0]["mptcp"]["address-flags"] = ["subflow", "signal"]
    before = json.dumps(state)
    mptcpstate.format(state)
    assert json.dumps(state) == before


def test_state_keyword_and_yaml_is_keyword_only():
    assert mptcpstate.format(state=SEED_YAML) == mptcpstate.format(SEED_YAML)
    with pytest.raises(TypeError):
        mptcpstate.format(SEED_YAML, False)  # type: ignore[misc]


def test_non_utf8_bytes_get_the_core_message():
    with pytest.raises(mptcpstate.InvalidArgumentError) as info:
        mptcpstate.format(b"interfaces:\n- name: eth\xff1\n")
    assert "not valid UTF-8" in str(info.value)
    assert "offset 23" in str(info.value)


def test_str_with_lone_surrogate_is_invalid_argument():
    with pytest.raises(mptcpstate.InvalidArgumentError) as info:
        mptcpstate.format("interfaces:\n- name: eth\udcff1\n")
    assert "not valid Unicode" in str(info.value)
    assert isinstance(info.value.__cause__, UnicodeEncodeError)


@pytest.mark.parametrize(
    "state",
    [None, 42, ["interfaces"], bytearray(b"interfaces: []"), object()],
    ids=["None", "int", "list", "bytearray", "object"],
)
def test_other_types_are_invalid_argument(state):
    with pytest.raises(mptcpstate.InvalidArgumentError) as info:
        mptcpstate.format(state)
    assert "must be a dict, a str or bytes" in str(info.value)
    assert type(state).__name__ in str(info.value)


@pytest.mark.parametrize(
    "state, cause",
    [
        ({"interfaces": {"eth1", "eth2"}}, TypeError),
        ({"mptcp": {"limits": {"subflows": float("nan")}}}, ValueError),
    ],
    ids=["set", "nan"],
)
def test_dict_that_json_cannot_hold_is_invalid_argument(state, cause):
    with pytest.raises(mptcpstate.InvalidArgumentError) as info:
        mptcpstate.format(state)
    assert "cannot be written as JSON" in str(info.value)
    assert isinstance(info.value.__cause__, cause)


def test_dict_is_validated_by_the_core():
    with pytest.raises(mptcpstate.InvalidArgumentError) as info:
        mptcpstate.format({"interfaces": [{"name": "eth1", "mptcp": {"address-flags": ["subflw"]}}]})
    message = str(info.value)
    assert "interfaces[0].mptcp.address-flags[0]" in message
    assert "subflow" in message
