"""The generated keyfile is right because a real NetworkManager makes the right kernel
endpoints from it — not because its text matches a string."""
import subprocess



def test_seed_keyfile_activates_with_signal_subflow_endpoint(sandbox, cli, tmp_path, seed_yaml):
    seed = tmp_path / "seed.yml"
    seed.write_text(seed_yaml)
    subprocess.run([cli, "gc", "--write-dir", sandbox.keyfile_dir, str(seed)], check=True)

    sandbox.nmcli("connection", "reload")
    profile = sandbox.nmcli("-g", "connection.id,connection.mptcp-flags,ipv4.addresses",
                            "connection", "show", "eth1").stdout.split("\n")
    assert profile[:3] == ["eth1", "0x38", "192.0.2.2/24"], profile
    sandbox.nmcli("connection", "up", "eth1")

    def endpoint():
        eps = [e for e in sandbox.endpoints() if e["address"] == "192.0.2.2"]
        return eps or None

    (ep,) = sandbox.wait_for(endpoint, timeout=10, what="the endpoint of 192.0.2.2")
    assert ep["dev"] == "eth1"
    assert ep["flags"] == ["signal", "subflow"]
    # Exactly the flags asked for, and no endpoint for anything else.
    assert [e["address"] for e in sandbox.endpoints()] == ["192.0.2.2"]
    text = sandbox.ip("mptcp", "endpoint", "show")
    assert "192.0.2.2 id" in text and "signal subflow dev eth1" in text, text
