"""Python threads calling show, apply, commit and rollback at once, against a real
NetworkManager: one process in the sandbox namespace, four threads each applying
(no-commit) a flag change on its own interface (profiles made beforehand by one apply),
then committing or rolling back its own checkpoint, while four more call show
(NetworkManager's view and kernel-only) the whole time. Each call gets its own result:
the checkpoint of its own device, and in the end the committed interfaces have the new
flags, the rolled back ones the old."""
import json
import sys

from nmsandbox import Sandbox
from test_apply import checkpoints, cli_apply, endpoint_lines, pending_records

SCRIPT = r'''
import json, sys, threading, time
import mptcpstate

N = 4
out = {"applies": {}, "finish": {}, "shows": 0, "errors": []}
lock = threading.Lock()
go = threading.Barrier(2 * N)
done = threading.Event()

def state(i):
    return {"interfaces": [{"name": f"eth{i}", "type": "ethernet", "state": "up",
             "mptcp": {"address-flags": ["subflow", "backup"]},
             "ipv4": {"enabled": True, "dhcp": False,
                      "address": [{"ip": f"10.{i}.0.2", "prefix-length": 24}]}}]}

def applier(i):
    try:
        go.wait()
        cp = mptcpstate.apply(state(i), commit=False, rollback_timeout=60)
        with lock:
            out["applies"][i] = cp
        if i % 2:
            r = mptcpstate.commit(cp)
        else:
            r = mptcpstate.rollback(cp)
        with lock:
            out["finish"][i] = r
    except Exception as e:
        with lock:
            out["errors"].append(f"apply eth{i}: {type(e).__name__}: {e}")

def shower(k):
    try:
        go.wait()
        while not done.is_set():
            s = mptcpstate.show(kernel_only=bool(k % 2))
            names = [i["name"] for i in s["interfaces"]]
            assert names == sorted(names) and "eth1" in names, names
            with lock:
                out["shows"] += 1
    except Exception as e:
        with lock:
            out["errors"].append(f"show {k}: {type(e).__name__}: {e}")

appliers = [threading.Thread(target=applier, args=(i,)) for i in range(1, N + 1)]
showers = [threading.Thread(target=shower, args=(k,)) for k in range(N)]
for t in appliers + showers:
    t.start()
for t in appliers:
    t.join(120)
done.set()
for t in showers:
    t.join(30)
print(json.dumps(out))
'''


def first_state() -> str:
    return json.dumps({"interfaces": [
        {"name": f"eth{i}", "type": "ethernet", "state": "up",
         "mptcp": {"address-flags": ["subflow", "signal"]},
         "ipv4": {"enabled": True, "dhcp": False,
                  "address": [{"ip": f"10.{i}.0.2", "prefix-length": 24}]}}
        for i in range(1, 5)]})


def test_show_apply_commit_rollback_from_threads(require_nm, cli):
    with Sandbox(["eth1", "eth2", "eth3", "eth4"]) as sb:
        assert cli_apply(sb, cli, first_state()).returncode == 0
        sb.wait_for(lambda: len(endpoint_lines(sb)) == 4, what="4 endpoints")
        r = sb.run([sys.executable, "-c", SCRIPT], check=False, timeout=180)
        assert r.returncode == 0, r.stderr
        out = json.loads(r.stdout.strip().splitlines()[-1])
        assert out["errors"] == []
        applies = {int(k): v for k, v in out["applies"].items()}
        assert sorted(applies) == [1, 2, 3, 4]
        # Each apply made its own checkpoint (one device each), and each finish acted on
        # the checkpoint it was given.
        assert len(set(applies.values())) == 4, applies
        assert all(cp.startswith("/org/freedesktop/NetworkManager/Checkpoint/")
                   for cp in applies.values())
        assert {int(k): v for k, v in out["finish"].items()} == applies
        assert out["shows"] >= 4
        assert not checkpoints(sb) and not pending_records(sb)
        want = ["10.1.0.2 backup,subflow eth1", "10.2.0.2 signal,subflow eth2",
                "10.3.0.2 backup,subflow eth3", "10.4.0.2 signal,subflow eth4"]
        sb.wait_for(lambda: endpoint_lines(sb) == want, timeout=5,
                    what="committed: the new flags; rolled back: the old")
        flags = {n: sb.nmcli("-g", "connection.mptcp-flags", "connection", "show", n).stdout.strip()
                 for n in ("eth1", "eth2", "eth3", "eth4")}
        assert flags == {"eth1": "0x68", "eth2": "0x38", "eth3": "0x68", "eth4": "0x38"}
