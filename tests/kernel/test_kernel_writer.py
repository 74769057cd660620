"""mptcpstate::netlink's Writer and read_kernel_for against the real kernel: each write
does what the same `ip` command does (compared in `ip -j` output, in the same
namespace), the kernel's refusals come back as Kernel errors with its words, and the
scoped read is the full read restricted to the named links."""
import json
import shutil
import statistics

import pytest

from test_kernel_reader import configure, expected_addresses, got_addresses

FOREVER = 4294967295


def ifindex(sb, name):
    return sb.ip("link", "show", "dev", name, json=True)[0]["ifindex"]


def addr_info(sb, dev, local):
    """`ip -j addr` of one address, without what names it (address, label)."""
    for link in sb.ip("addr", "show", "dev", dev, json=True):
        for a in link.get("addr_info", []):
            if a["local"] == local:
                return {k: v for k, v in a.items() if k not in ("local", "label")}
    return None


def link_flags(sb, name):
    return sorted(sb.ip("link", "show", "dev", name, json=True)[0]["flags"])


def endpoints(sb):
    return [{k: e[k] for k in ("address", "id", "port", "dev", "flags")} for e in sb.endpoints()]


def endpoint(sb, eid):
    return next((e for e in endpoints(sb) if e["id"] == eid), None)


IFF_RUNNING = 0x40


def settled(dump):
    """A full read once fresh veths have settled: every eth* link running (with 1000
    veths IFF_RUNNING comes late) with its IPv6 link-local address past duplicate
    address detection, so that two reads can be compared. None until then."""
    state = dump()
    link_local = {a["ifindex"] for a in state["addresses"]
                  if a["address"].startswith("fe80:") and not a["tentative"]}
    veths = [l for l in state["links"] if l["name"].startswith("eth")]
    if any(a["tentative"] for a in state["addresses"]) or not all(
            l["flags"] & IFF_RUNNING and l["index"] in link_local for l in veths):
        return None
    return state


def test_addresses_are_what_ip_addr_add_makes(sandbox, dump):
    eth1 = ifindex(sandbox, "eth1")
    # The same addresses, made by us on eth1 and by ip on eth2: ip shows them alike.
    dump("addr-add", "eth1", "192.0.2.2/24")
    sandbox.ip("addr", "add", "198.51.100.2/24", "dev", "eth2")
    ours, theirs = addr_info(sandbox, "eth1", "192.0.2.2"), addr_info(sandbox, "eth2", "198.51.100.2")
    assert ours == theirs, (ours, theirs)
    assert ours["prefixlen"] == 24 and ours["valid_life_time"] == FOREVER
    assert "broadcast" not in ours and "dynamic" not in ours and ours["scope"] == "global"

    dump("addr-add", "eth1", "2001:db8:1::2/64", "nodad", "noprefixroute", "mngtmpaddr", "home")
    sandbox.ip("addr", "add", "2001:db8:2::2/64", "dev", "eth2",
               "nodad", "noprefixroute", "mngtmpaddr", "home")
    ours = addr_info(sandbox, "eth1", "2001:db8:1::2")
    assert ours == addr_info(sandbox, "eth2", "2001:db8:2::2")
    assert ours["nodad"] and ours["noprefixroute"] and ours["mngtmpaddr"] and ours["home"]
    # noprefixroute did what it says: no route for the prefix.
    routes = sandbox.ip("-6", "route", "show", "dev", "eth1", json=True)
    assert not any(r["dst"].startswith("2001:db8:1::") for r in routes), routes

    # Loopback addresses get host scope, as ip gives them.
    dump("addr-add", "lo", "127.0.0.2/8")
    assert addr_info(sandbox, "lo", "127.0.0.2")["scope"] == "host"

    # The reader sees what ip sees.
    state = dump()
    assert got_addresses(state) == expected_addresses(sandbox.ip("addr", "show", json=True))
    mine = [a for a in state["addresses"]
            if a["ifindex"] == eth1 and a["address"] in ("192.0.2.2", "2001:db8:1::2")]
    assert len(mine) == 2
    assert all(a["permanent"] and a["valid_lft"] is None for a in mine)


def test_duplicate_and_missing_addresses_are_kernel_errors(sandbox, dump):
    eth1 = ifindex(sandbox, "eth1")
    dump("addr-add", "eth1", "192.0.2.2/24")
    rc, _, err = dump.run("addr-add", "eth1", "192.0.2.2/24")
    assert (rc, err["kind"]) == (5, "Kernel"), err
    assert err["message"] == (f"adding address 192.0.2.2/24 to ifindex {eth1} failed: "
                              "File exists (os error 17): ipv4: Address already assigned"), err
    dump("addr-add", "eth1", "2001:db8::2/64", "nodad")
    rc, _, err = dump.run("addr-add", "eth1", "2001:db8::2/64", "nodad")
    assert (rc, err["kind"]) == (5, "Kernel"), err
    assert "File exists (os error 17): ipv6: address already assigned" in err["message"], err

    # Deleting needs the prefix the address has, as `ip addr del` does.
    rc, _, err = dump.run("addr-del", "eth1", "192.0.2.2/16")
    assert (rc, err["kind"]) == (5, "Kernel"), err
    assert err["message"] == (f"deleting address 192.0.2.2/16 from ifindex {eth1} failed: "
                              "Cannot assign requested address (os error 99): "
                              "ipv4: Address not found"), err
    assert addr_info(sandbox, "eth1", "192.0.2.2") is not None
    dump("addr-del", "eth1", "192.0.2.2/24")
    dump("addr-del", "eth1", "2001:db8::2/64")
    assert addr_info(sandbox, "eth1", "192.0.2.2") is None
    assert addr_info(sandbox, "eth1", "2001:db8::2") is None
    rc, _, err = dump.run("addr-del", "eth1", "2001:db8::2/64")
    assert (rc, err["kind"]) == (5, "Kernel") and "address not found" in err["message"], err


def test_link_set_changes_only_iff_up(sandbox, dump):
    sandbox.ip("link", "set", "dev", "eth1", "promisc", "on")
    before = link_flags(sandbox, "eth1")
    assert "UP" in before and "PROMISC" in before
    dump("link-set", "eth1", "down")
    assert link_flags(sandbox, "eth1") == sorted(f for f in before if f not in ("UP", "LOWER_UP"))
    link = next(l for l in dump()["links"] if l["name"] == "eth1")
    assert not link["up"] and not link["carrier"]
    dump("link-set", "eth1", "down")  # already down: no error, as with ip
    dump("link-set", "eth1", "up")
    sandbox.wait_for(lambda: link_flags(sandbox, "eth1") == before, what="eth1 back up")
    assert "UP" in link_flags(sandbox, "eth2")


def test_endpoint_change_keeps_the_id_and_only_backup_and_fullmesh(sandbox, dump):
    sandbox.run("set -e\n"
                "ip mptcp endpoint add 192.0.2.3 id 3 dev eth1 subflow\n"
                "ip mptcp endpoint add 192.0.2.4 id 4 signal\n")
    dump("endpoint-change", 3, "192.0.2.3", "backup", "fullmesh")
    assert endpoint(sandbox, 3) == {"address": "192.0.2.3", "id": 3, "dev": "eth1", "port": None,
                                    "flags": ["backup", "fullmesh", "subflow"]}
    dump("endpoint-change", 3, "192.0.2.3", "nobackup", "fullmesh")
    assert endpoint(sandbox, 3)["flags"] == ["fullmesh", "subflow"]
    dump("endpoint-change", 3, "192.0.2.3", "nobackup", "nofullmesh")
    assert endpoint(sandbox, 3)["flags"] == ["subflow"]

    # Other bits cannot change in place: the kernel ignores them (no error).
    dump("endpoint-change", 3, "192.0.2.3", "signal", "laminar")
    assert endpoint(sandbox, 3)["flags"] == ["subflow"]
    dump("endpoint-change", 4, "192.0.2.4", "subflow", "backup")
    assert endpoint(sandbox, 4)["flags"] == ["backup", "signal"]
    # ... and refuses fullmesh on a signal endpoint.
    rc, _, err = dump.run("endpoint-change", 4, "192.0.2.4", "fullmesh")
    assert (rc, err["kind"]) == (5, "Kernel"), err
    assert err["message"] == ("setting the flags of MPTCP endpoint id 4 failed: "
                              "Invalid argument (os error 22): invalid addr flags"), err
    assert endpoint(sandbox, 4)["flags"] == ["backup", "signal"]
    rc, _, err = dump.run("endpoint-change", 9, "192.0.2.9", "backup")
    assert (rc, err["kind"]) == (5, "Kernel") and "address not found" in err["message"], err

    # Selected by id: the kernel would take the address and ignore the id when a request
    # carries both, as ip shows...
    sandbox.ip("mptcp", "endpoint", "change", "id", "3", "192.0.2.4", "nobackup")
    assert endpoint(sandbox, 4)["flags"] == ["signal"]
    assert endpoint(sandbox, 3)["flags"] == ["subflow"]
    # ... so the writer sends the id alone: id 3 changes, not 192.0.2.4's endpoint.
    dump("endpoint-change", 3, "192.0.2.4", "backup")
    assert endpoint(sandbox, 3)["flags"] == ["backup", "subflow"]
    assert endpoint(sandbox, 4)["flags"] == ["signal"]
    # With id 0 it goes by address.
    dump("endpoint-change", 0, "192.0.2.4", "backup")
    assert endpoint(sandbox, 4) == {"address": "192.0.2.4", "id": 4, "dev": None, "port": None,
                                    "flags": ["backup", "signal"]}
    assert [e["id"] for e in sandbox.endpoints()] == [3, 4]


def batch(sandbox, exe, lines, strace=False):
    argv = ([shutil.which("strace"), "-f", "-qq", "-e", "trace=socket", "-o", "/dev/stderr"]
            if strace else []) + [exe, "batch"]
    proc = sandbox.run(argv, input="".join(f"{l}\n" for l in lines), check=False)
    assert proc.returncode == 0, proc.stderr
    return proc.stderr


def test_a_batch_of_writes_on_one_writer(sandbox, kernel_dump_exe):
    lines = ["addr-add eth1 192.0.2.2/24", "addr-add eth2 2001:db8:1::2/64 nodad",
             "endpoint-add 192.0.2.2 id 2 dev eth1 subflow",
             "endpoint-add 2001:db8:1::2 dev eth2 signal",
             "endpoint-change 2 192.0.2.2 backup", "limits-set 4 3",
             "link-set eth2 down", "link-set eth2 up"]
    timings = json.loads(batch(sandbox, kernel_dump_exe, lines).strip().splitlines()[-1])
    assert timings["writes"] == len(lines)
    assert addr_info(sandbox, "eth1", "192.0.2.2")["prefixlen"] == 24
    assert endpoints(sandbox) == [
        {"address": "192.0.2.2", "id": 2, "dev": "eth1", "port": None,
         "flags": ["backup", "subflow"]},
        {"address": "2001:db8:1::2", "id": 3, "dev": "eth2", "port": None, "flags": ["signal"]},
    ]
    assert sandbox.mptcp_limits() == {"subflows": 4, "add_addr_accepted": 3}
    # A link set down loses its IPv6 addresses (the kernel's keep_addr_on_down=0).
    assert addr_info(sandbox, "eth2", "2001:db8:1::2") is None

    if shutil.which("strace") is None:
        pytest.skip("no strace to count sockets")
    # The sockets a batch opens do not grow with its writes: the scoped read's route and
    # generic sockets, and the writer's two.
    def sockets(lines):
        trace = batch(sandbox, kernel_dump_exe, lines, strace=True)
        return sorted(l.split("socket(")[1].split(")")[0] for l in trace.splitlines()
                      if "socket(AF_NETLINK" in l)

    one = sockets(["link-set eth1 up"])
    many = sockets(["link-set eth1 up"] * 6 + ["endpoint-del 2", "endpoint-del 3",
                                              "limits-set 2 0", "limits-set 2 1"])
    assert one == many and len(one) == 4, (one, many)
    assert sum("NETLINK_ROUTE" in s for s in one) == 2, one


def test_writes_need_cap_net_admin(sandbox, dump):
    sandbox.ip("mptcp", "endpoint", "add", "192.0.2.3", "id", "3", "subflow")
    for args, what in [
        (("addr-add", "eth1", "192.0.2.50/24"), "adding address 192.0.2.50/24 to ifindex"),
        (("addr-del", "eth1", "192.0.2.50/24"), "deleting address 192.0.2.50/24 from ifindex"),
        (("link-set", "eth1", "down"), "setting ifindex"),
        (("endpoint-change", 3, "192.0.2.3", "backup"),
         "setting the flags of MPTCP endpoint id 3"),
    ]:
        rc, _, err = dump.run(*args, user="nobody")
        assert (rc, err["kind"]) == (3, "PermissionDenied"), (args, err)
        assert err["message"].startswith(what) and "needs CAP_NET_ADMIN" in err["message"], err
    assert "UP" in link_flags(sandbox, "eth1")
    assert endpoint(sandbox, 3)["flags"] == ["subflow"]


def restricted(state, names):
    """read_kernel's JSON restricted to the links of these names."""
    links = [l for l in state["links"] if l["name"] in names]
    indexes = {l["index"] for l in links}
    return dict(state, links=links,
                addresses=[a for a in state["addresses"] if a["ifindex"] in indexes])


def test_scoped_read_is_the_full_read_restricted(sandbox, dump):
    configure(sandbox)  # addresses on eth1 and eth2, br0, endpoints, limits
    sandbox.ip("link", "property", "add", "dev", "eth2", "altname", "second")
    full = sandbox.wait_for(lambda: settled(dump), what="settled links")
    assert full["mptcp"]["endpoints"] and full["addresses"]
    for names in (["eth1"], ["eth2", "eth1", "lo", "br0"], ["br0"], []):
        assert dump("--only", *names) == restricted(full, names), names
    # Absent: a name no link has, one no link can have, and an alternative name.
    weird = ["nosuch", "eth1", "x" * 16, "", "a/b", "..", "second", "eth1"]
    assert dump("--only", *weird) == restricted(full, ["eth1"])
    assert dump("--only", "nosuch", "second")["links"] == []
    # The MPTCP part is the namespace's, whatever the names.
    assert dump("--only")["mptcp"] == full["mptcp"]
    assert dump() == full


def test_scoped_read_at_1000_veths(kernel_dump_exe, sandbox_factory, dumper):
    """8 names among 1000 veths: the same answer as the full read restricted, at a small
    fraction of its cost (the figures are printed: run with -s to see them)."""
    sb = sandbox_factory(None, count=1000)
    dump = dumper(sb)
    names = ["eth1", "eth2", "eth3", "eth500", "eth501", "eth998", "eth999", "eth1000"]
    full = sb.wait_for(lambda: settled(dump), timeout=30, what="settled links")
    assert len(full["links"]) == 1001
    scoped = dump("--only", *names)
    assert scoped == restricted(full, names)
    assert len(scoped["links"]) == 8 and len(scoped["addresses"]) == 8
    assert all(a["address"].startswith("fe80:") for a in scoped["addresses"])

    def median(*args, reads):
        proc = sb.run([kernel_dump_exe, *args, "--repeat", str(reads)])
        return json.loads(proc.stderr.strip().splitlines()[-1])["median_us"]

    full_us = median(reads=50)
    scoped_us = median("--only", *names, reads=200)
    print(f"\n1000 veths: read_kernel {full_us} us, read_kernel_for(8 names) {scoped_us} us "
          f"(medians)")
    assert scoped_us * 5 < full_us, (scoped_us, full_us)
