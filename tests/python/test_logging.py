"""Log records of the core reach the `logging` logger "mptcpstate"."""

import logging

import pytest

import mptcpstate
from pyshared import link_local_state


def records_of(caplog):
    return [r for r in caplog.records if r.name == "mptcpstate"]


def test_link_local_warning_reaches_logging(caplog):
    caplog.set_level(logging.WARNING, logger="mptcpstate")
    mptcpstate.format(link_local_state())
    [record] = records_of(caplog)
    assert record.levelno == logging.WARNING
    assert record.levelname == "WARNING"
    assert "fe80::1" in record.getMessage()
    assert "link-local" in record.getMessage()
    # Where in the library it was written, and when.
    assert record.target.startswith("mptcpstate::")
    assert record.core_time.endswith("Z")
    # The record points at the caller's line, not at library internals.
    assert record.pathname == __file__


def test_warning_also_from_generate_configurations(caplog):
    caplog.set_level(logging.WARNING, logger="mptcpstate")
    mptcpstate.generate_configurations(link_local_state())
    assert any("link-local" in r.getMessage() for r in records_of(caplog))


def test_info_level(caplog):
    caplog.set_level(logging.DEBUG, logger="mptcpstate")
    mptcpstate.generate_configurations({"interfaces": [{"name": "eth1", "state": "absent"}]})
    infos = [r for r in records_of(caplog) if r.levelno == logging.INFO]
    assert infos, [r.getMessage() for r in records_of(caplog)]
    assert any("eth1" in r.getMessage() for r in infos)


def test_levels_below_the_logger_level_are_dropped(caplog):
    caplog.set_level(logging.ERROR, logger="mptcpstate")
    mptcpstate.format(link_local_state())
    assert records_of(caplog) == []


def test_no_record_for_a_clean_state(caplog):
    caplog.set_level(1, logger="mptcpstate")
    mptcpstate.format({"interfaces": [{"name": "eth1", "mptcp": {"address-flags": ["subflow"]}}]})
    assert [r for r in records_of(caplog) if r.levelno >= logging.WARNING] == []


def test_records_are_also_logged_when_the_call_fails(caplog):
    caplog.set_level(logging.WARNING, logger="mptcpstate")
    state = link_local_state()
    # The warning is written while validating interfaces[0]; the duplicate fails later.
    state["interfaces"].append({"name": "eth1"})
    with pytest.raises(mptcpstate.InvalidArgumentError, match="already given"):
        mptcpstate.format(state)
    assert any("link-local" in r.getMessage() for r in records_of(caplog))


def test_trace_level_is_named():
    assert logging.getLevelName(5) == "TRACE"
