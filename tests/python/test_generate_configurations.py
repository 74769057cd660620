"""mptcpstate.generate_configurations: NetworkManager keyfiles, offline."""

import pytest

import mptcpstate
from pyshared import SEED_DICT, SEED_YAML


def test_seed_example_gives_one_keyfile():
    configs = mptcpstate.generate_configurations(SEED_YAML)
    assert list(configs) == ["NetworkManager"]
    files = configs["NetworkManager"]
    assert isinstance(files, list) and len(files) == 1
    name, text = files[0]
    assert isinstance(files[0], list)
    assert name == "eth1.nmconnection"
    lines = text.splitlines()
    # signal 0x10 | subflow 0x20 | also-without-default-route 0x08
    assert "mptcp-flags=56" in lines
    assert "interface-name=eth1" in lines
    assert "address1=192.0.2.2/24" in lines


@pytest.mark.parametrize(
    "state",
    [SEED_YAML, SEED_YAML.encode("utf-8"), SEED_DICT],
    ids=["str", "bytes", "dict"],
)
def test_deterministic_for_every_input_type(state):
    assert mptcpstate.generate_configurations(state) == mptcpstate.generate_configurations(
        SEED_YAML
    )


def test_mptcp_off_is_flag_1():
    configs = mptcpstate.generate_configurations(
        {"interfaces": [{"name": "eth2", "mptcp": {"address-flags": []}}]}
    )
    [[name, text]] = configs["NetworkManager"]
    assert name == "eth2.nmconnection"
    assert "mptcp-flags=1" in text.splitlines()


def test_bad_input_raises():
    with pytest.raises(mptcpstate.InvalidArgumentError, match="signal"):
        mptcpstate.generate_configurations(
            {"interfaces": [{"name": "eth1", "mptcp": {"address-flags": ["signal", "fullmesh"]}}]}
        )
    with pytest.raises(mptcpstate.InvalidArgumentError):
        mptcpstate.generate_configurations(3.5)


def test_laminar_is_bit_0x100_and_warns_about_the_version(caplog):
    with caplog.at_level("WARNING", logger="mptcpstate"):
        configs = mptcpstate.generate_configurations(
            {"interfaces": [{"name": "eth1", "mptcp": {"address-flags": ["laminar", "subflow"]}}]}
        )
    [[_, text]] = configs["NetworkManager"]
    # laminar 0x100 | subflow 0x20 | also-without-default-route 0x08
    assert "mptcp-flags=296" in text.splitlines()
    assert any("NetworkManager 1.56 or newer" in r.getMessage() for r in caplog.records)


def test_endpoint_port_is_not_supported():
    state = {"interfaces": [{"name": "eth1", "ipv4": {"address": [
        {"ip": "192.0.2.2", "prefix-length": 24, "mptcp-flags": ["signal"], "mptcp-port": 8080}]}}]}
    with pytest.raises(mptcpstate.NotSupportedError) as info:
        mptcpstate.generate_configurations(state)
    message = str(info.value)
    assert "interfaces[0].ipv4.address[0].mptcp-port" in message
    assert "kernel-only mode" in message
    # format has no NetworkManager to answer to: the same state is valid input.
    assert "mptcp-port: 8080" in mptcpstate.format(state)
