"""What mptcpstate::netlink reads agrees with iproute2 in the same namespace, its write
primitives do what `ip mptcp` does, and its errors have the contract's kinds."""
import subprocess
import time

FOREVER = 4294967295
TYPES = {None: "ethernet", "veth": "veth", "bridge": "linux-bridge", "bond": "bond",
         "vlan": "vlan", "dummy": "dummy"}


def configure(sb):
    """The fixture state: IPv4 and IPv6 addresses, a bridge, endpoints (one with a port,
    which makes the kernel listen on it: its address must be local), limits."""
    sb.run("set -e\n"
           "ip addr add 192.0.2.2/24 dev eth1\n"
           "ip addr add 192.0.2.3/24 dev eth1\n"
           "ip addr add 198.51.100.7/32 peer 198.51.100.8 dev eth1\n"
           "ip addr add 2001:db8:1::2/64 dev eth2 nodad\n"
           "ip link add br0 type bridge\n"
           "ip mptcp endpoint add 192.0.2.2 dev eth1 signal subflow\n"
           "ip mptcp endpoint add 2001:db8:1::2 id 5 dev eth2 subflow backup\n"
           "ip mptcp endpoint add 192.0.2.3 port 4000 signal\n"
           "ip mptcp limits set subflows 3 add_addr_accepted 4\n")


def ip_state(sb):
    links = sb.ip("-d", "link", "show", json=True)
    addrs = sb.ip("addr", "show", json=True)
    return links, addrs


def expected_links(links):
    out = []
    for l in links:
        kind = l.get("linkinfo", {}).get("info_kind")
        typ = "loopback" if l.get("link_type") == "loopback" else TYPES.get(kind, "unknown")
        out.append({"index": l["ifindex"], "name": l["ifname"], "type": typ,
                    "up": "UP" in l["flags"]})
    return sorted(out, key=lambda l: l["index"])


def expected_addresses(addrs):
    out = []
    for link in addrs:
        for a in link.get("addr_info", []):
            out.append({
                "ifindex": link["ifindex"], "address": a["local"], "prefix_len": a["prefixlen"],
                "scope": a["scope"], "permanent": not a.get("dynamic", False),
                "temporary": bool(a.get("temporary")), "tentative": bool(a.get("tentative")),
                "deprecated": bool(a.get("deprecated")),
                "valid_lft": None if a["valid_life_time"] == FOREVER else a["valid_life_time"],
            })
    return sorted(out, key=lambda a: (a["ifindex"], a["address"]))


SCOPES = {"Universe": "global", "Link": "link", "Host": "host", "Site": "site"}


def got_addresses(state):
    return sorted(({
        "ifindex": a["ifindex"], "address": a["address"], "prefix_len": a["prefix_len"],
        "scope": SCOPES.get(a["scope"], a["scope"]), "permanent": a["permanent"],
        "temporary": a["temporary"], "tentative": a["tentative"],
        "deprecated": a["deprecated"], "valid_lft": a["valid_lft"],
    } for a in state["addresses"]), key=lambda a: (a["ifindex"], a["address"]))


def got_endpoints(state):
    names = {l["index"]: l["name"] for l in state["links"]}
    return sorted(({
        "address": e["address"], "id": e["id"], "port": e["port"],
        "dev": names.get(e["ifindex"]), "flags": sorted(e["flag_names"]),
    } for e in state["mptcp"]["endpoints"]), key=lambda e: e["id"])


def ip_endpoints(sb):
    return sorted(({k: e[k] for k in ("address", "id", "port", "dev", "flags")}
                   for e in sb.endpoints()), key=lambda e: e["id"])


def sysctl(sb):
    return sb.run(["cat", "/proc/sys/net/mptcp/enabled"]).stdout.strip() == "1"


def test_dump_agrees_with_iproute2(sandbox, dump):
    configure(sandbox)
    state = dump()
    links, addrs = ip_state(sandbox)

    got = [{k: l[k] for k in ("index", "name", "type", "up")} for l in state["links"]]
    assert got == expected_links(links)
    types = {l["name"]: l["type"] for l in state["links"]}
    assert types == {"lo": "loopback", "eth1": "veth", "eth2": "veth", "br0": "linux-bridge"}

    assert got_addresses(state) == expected_addresses(addrs)
    by_addr = {a["address"]: a for a in state["addresses"]}
    # The point-to-point address is the local one, not the peer.
    assert "198.51.100.7" in by_addr and "198.51.100.8" not in by_addr
    # Every veth has its IPv6 link-local, reported with link scope.
    link_locals = [a for a in state["addresses"] if a["address"].startswith("fe80:")]
    assert len(link_locals) >= 2 and all(a["scope"] == "Link" for a in link_locals)

    assert got_endpoints(state) == ip_endpoints(sandbox)
    assert {e["flags"] for e in state["mptcp"]["endpoints"]} == {0b11, 0b110, 0b1}
    assert state["mptcp"]["limits"] == sandbox.mptcp_limits() == {
        "subflows": 3, "add_addr_accepted": 4}
    assert state["mptcp"]["enabled"] is sysctl(sandbox) is True

    sandbox.run(["sysctl", "-qw", "net.mptcp.enabled=0"])
    assert dump()["mptcp"]["enabled"] is False


def test_temporary_addresses(sandbox, dump):
    # With use_tempaddr=2, the kernel makes a privacy (temporary) address from a
    # mngtmpaddr one.
    sandbox.run("set -e\nsysctl -qw net.ipv6.conf.eth2.use_tempaddr=2\n"
                "ip addr add 2001:db8:3::1/64 dev eth2 mngtmpaddr nodad\n")

    def with_temporary():
        state = dump()
        return state if any(a["temporary"] for a in state["addresses"]) else None

    state = sandbox.wait_for(with_temporary, what="a temporary address")
    temp = [a for a in state["addresses"] if a["temporary"]]
    assert len(temp) == 1 and temp[0]["address"].startswith("2001:db8:3:")
    assert not temp[0]["permanent"] and temp[0]["valid_lft"] is not None
    mng = next(a for a in state["addresses"] if a["address"] == "2001:db8:3::1")
    assert mng["permanent"] and not mng["temporary"] and mng["valid_lft"] is None
    assert got_addresses(state) == expected_addresses(ip_state(sandbox)[1])


def test_endpoint_and_limit_writes(sandbox, dump):
    # An endpoint with a port listens on it: its address must be local.
    sandbox.run("ip addr add 192.0.2.2/24 dev eth1 && ip addr add 2001:db8:1::2/64 dev eth2 nodad")
    dump("endpoint-add", "192.0.2.2", "dev", "eth1", "signal", "subflow")
    dump("endpoint-add", "2001:db8:1::2", "id", "7", "port", "8080", "dev", "eth2", "signal")
    dump("endpoint-add", "192.0.2.9", "id", "9", "subflow", "fullmesh", "backup")
    assert ip_endpoints(sandbox) == [
        {"address": "192.0.2.2", "id": 1, "port": None, "dev": "eth1",
         "flags": ["signal", "subflow"]},
        {"address": "2001:db8:1::2", "id": 7, "port": 8080, "dev": "eth2", "flags": ["signal"]},
        {"address": "192.0.2.9", "id": 9, "port": None, "dev": None,
         "flags": ["backup", "fullmesh", "subflow"]},
    ]
    assert got_endpoints(dump()) == ip_endpoints(sandbox)

    dump("endpoint-del", 7)
    assert [e["id"] for e in sandbox.endpoints()] == [1, 9]
    dump("endpoint-flush")
    assert sandbox.endpoints() == []

    dump("limits-set", 8, 0)
    assert sandbox.mptcp_limits() == {"subflows": 8, "add_addr_accepted": 0}
    assert dump("limits") == {"subflows": 8, "add_addr_accepted": 0}

    dump("sysctl", 0)
    assert sysctl(sandbox) is False
    dump("sysctl", 1)
    assert sysctl(sandbox) is True


def test_kernel_refusals_are_kernel_errors_with_its_words(sandbox, dump):
    for i in range(1, 9):
        dump("endpoint-add", f"192.0.2.{i}", "subflow")
    rc, _, err = dump.run("endpoint-add", "192.0.2.100", "subflow")
    assert (rc, err["kind"]) == (5, "Kernel"), err
    assert err["message"].startswith("adding MPTCP endpoint 192.0.2.100 failed: ")
    assert "too many addresses" in err["message"], err  # the kernel's extended ack
    assert len(sandbox.endpoints()) == 8

    rc, _, err = dump.run("limits-set", 9, 1)
    assert (rc, err["kind"]) == (5, "Kernel")
    assert "limit greater than maximum" in err["message"], err

    rc, _, err = dump.run("endpoint-del", 200)
    assert (rc, err["kind"]) == (5, "Kernel")
    assert "deleting MPTCP endpoint id 200 failed" in err["message"], err


def test_unprivileged_user(sandbox, dump):
    configure(sandbox)
    root_view = dump()
    # Reading: links and addresses need no privilege. Endpoints and limits: this kernel
    # (6.18) lets anyone read them; where a kernel refuses, the error must be
    # PermissionDenied naming the capability.
    rc, out, err = dump.run(user="nobody")
    if rc == 0:
        assert out == root_view
    else:
        assert (rc, err["kind"]) == (3, "PermissionDenied"), err
        assert "reading MPTCP endpoints needs CAP_NET_ADMIN" in err["message"], err

    # Writing needs CAP_NET_ADMIN on every kernel.
    for args, what in [
        (("endpoint-add", "192.0.2.50", "signal"), "adding MPTCP endpoint 192.0.2.50"),
        (("endpoint-del", 1), "deleting MPTCP endpoint id 1"),
        (("endpoint-flush",), "flushing MPTCP endpoints"),
        (("limits-set", 1, 1), "setting MPTCP limits"),
        (("sysctl", 0), "writing /proc/sys/net/mptcp/enabled"),
    ]:
        rc, _, err = dump.run(*args, user="nobody")
        assert (rc, err["kind"]) == (3, "PermissionDenied"), (args, err)
        assert err["message"].startswith(what) and "needs CAP_NET_ADMIN" in err["message"], err
    assert dump() == root_view


def test_threads_read_their_own_namespace(sandbox, dump, sandbox_factory):
    """Concurrent reads from threads that joined different namespaces (setns) each see
    their own namespace: sockets are opened on the calling thread."""
    configure(sandbox)
    other = sandbox_factory(["veth7", "veth8", "veth9"])
    paths = [f"/run/netns/{ns}" for ns in (sandbox.netns, other.netns, sandbox.netns)]
    # Run from the sandbox namespace; each thread switches to its own.
    out = dump(*sum((["--netns", p] for p in paths), []), "--repeat", 50)
    names = [[l["name"] for l in t["state"]["links"]] for t in out]
    assert names == [["lo", "eth1", "eth2", "br0"], ["lo", "veth7", "veth8", "veth9"],
                     ["lo", "eth1", "eth2", "br0"]]
    assert all(t["consistent"] for t in out)
    assert len(out[0]["state"]["mptcp"]["endpoints"]) == 3
    assert out[1]["state"]["mptcp"]["endpoints"] == []


def test_links_vanishing_during_reads_are_not_errors(sandbox, dump):
    """Links and addresses created and deleted while the reader dumps: every read
    succeeds and is coherent (no address without its link)."""
    churn = subprocess.Popen(
        ["ip", "netns", "exec", sandbox.netns, "sh", "-c",
         "i=0; while :; do ip link add t$i type veth peer name tp$i; "
         "ip addr add 198.51.100.$((i % 250 + 1))/32 dev t$i; "
         "ip link del t$i; i=$((i + 1)); done"],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 2.0
        while time.monotonic() < deadline:
            state = dump("--repeat", 100)
            indexes = {l["index"] for l in state["links"]}
            assert all(a["ifindex"] in indexes for a in state["addresses"])
    finally:
        churn.kill()
        churn.wait()
    # The churn really ran: the newest link index has moved far past eth1/eth2.
    sandbox.run("ip link add probe type veth peer name probep")
    assert max(l["index"] for l in dump()["links"]) > 50
