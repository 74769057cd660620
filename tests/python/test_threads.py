"""Concurrent calls: each gets its own result and its own log records, and the GIL is
released while the core works."""

import logging
import threading
import time
from concurrent.futures import ThreadPoolExecutor

import mptcpstate
from pyshared import link_local_state

THREADS = 8
CALLS = 25


def test_concurrent_format_calls(caplog):
    caplog.set_level(logging.WARNING, logger="mptcpstate")
    names = [f"t{t}c{c}" for t in range(THREADS) for c in range(CALLS)]
    expected = {
        (name, yaml): mptcpstate.format(link_local_state(name), yaml=yaml)
        for name in names
        for yaml in (True, False)
    }
    caplog.clear()

    def work(t):
        done = {}
        for c in range(CALLS):
            name = f"t{t}c{c}"
            yaml = c % 2 == 0
            out = mptcpstate.format(link_local_state(name), yaml=yaml)
            done[name] = (threading.get_ident(), out == expected[name, yaml])
        return done

    results = {}
    with ThreadPoolExecutor(max_workers=THREADS) as pool:
        for done in pool.map(work, range(THREADS)):
            results.update(done)

    assert sorted(results) == sorted(names)
    assert all(same for _, same in results.values())
    # Every call logged its own warning, once, in the thread that made the call.
    warned = {}
    for record in caplog.records:
        if record.name != "mptcpstate":
            continue
        name = record.getMessage().split(":", 1)[0]
        assert name not in warned, f"two warnings for {name}"
        warned[name] = record.thread
    assert warned == {name: ident for name, (ident, _) in results.items()}


def test_gil_is_released_during_the_call():
    # A large valid state keeps the core busy for a while (a few tenths of a second).
    text = "interfaces:\n" + "".join(
        f"- name: e{i}\n  type: ethernet\n  state: up\n" for i in range(30000)
    )
    stop = threading.Event()
    count = [0]

    def spin():
        while not stop.is_set():
            count[0] += 1

    spinner = threading.Thread(target=spin)
    spinner.start()
    try:
        time.sleep(0.05)
        # How fast the spinner counts while this thread only sleeps.
        c0, t0 = count[0], time.perf_counter()
        time.sleep(0.2)
        rate = (count[0] - c0) / (time.perf_counter() - t0)
        # How much it counts during the call: with the GIL held, at most a switch
        # interval's worth (5 ms) before and after the call.
        c0, t0 = count[0], time.perf_counter()
        mptcpstate.format(text)
        elapsed = time.perf_counter() - t0
        counted = count[0] - c0
    finally:
        stop.set()
        spinner.join()
    assert elapsed > 0.05, "the call was too short to tell"
    assert counted > 0.25 * rate * elapsed, (counted, rate, elapsed)
