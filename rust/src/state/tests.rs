//! The schema as a whole: every key survives `format` (YAML and JSON) unchanged, in the
//! canonical order, and canonical output is a fixed point.

use super::{parse, MptcpFlag, NetworkState, OutputFormat};
use crate::Log;

/// Every key of the schema, with the new ones (`path-manager`, `scheduler`, `laminar`,
/// `implicit`, `mptcp-port`) in the order nobody would write them.
const ALL_KEYS: &str = r#"
interfaces:
  - name: eth1
    ipv6:
      address:
        - mptcp-port: 10000
          mptcp-flags: [laminar, signal]
          prefix-length: 64
          ip: 2001:db8::2
    ipv4:
      address:
        - ip: 192.0.2.2
          prefix-length: 24
          mptcp-port: 8080
          mptcp-flags: [backup, signal]
        - ip: 192.0.2.3
          prefix-length: 24
          mptcp-flags: [implicit]
      dhcp: false
      enabled: true
    mptcp:
      address-flags: [laminar, fullmesh, backup, subflow, subflow]
    state: up
    type: veth
mptcp:
  limits: {add-addr-accepted: 1, subflows: 2}
  scheduler: bpf_burst
  path-manager: userspace
  enabled: true
"#;

const ALL_KEYS_CANONICAL: &str = "---
mptcp:
  enabled: true
  path-manager: userspace
  scheduler: bpf_burst
  limits:
    subflows: 2
    add-addr-accepted: 1
interfaces:
- name: eth1
  type: veth
  state: up
  mptcp:
    address-flags:
    - subflow
    - backup
    - fullmesh
    - laminar
  ipv4:
    enabled: true
    dhcp: false
    address:
    - ip: 192.0.2.2
      prefix-length: 24
      mptcp-flags:
      - signal
      - backup
      mptcp-port: 8080
    - ip: 192.0.2.3
      prefix-length: 24
      mptcp-flags:
      - implicit
  ipv6:
    address:
    - ip: 2001:db8::2
      prefix-length: 64
      mptcp-flags:
      - signal
      - laminar
      mptcp-port: 10000
";

fn format(input: &str, out: OutputFormat) -> String {
    parse(input, &Log::new()).unwrap().to_text(out).unwrap()
}

#[test]
fn every_key_round_trips_in_canonical_order() {
    let yaml = format(ALL_KEYS, OutputFormat::Yaml);
    assert_eq!(yaml, ALL_KEYS_CANONICAL);
    assert_eq!(format(&yaml, OutputFormat::Yaml), yaml);
    // JSON holds the same state, and its canonical form is a fixed point too.
    let json = format(ALL_KEYS, OutputFormat::Json);
    assert_eq!(format(&json, OutputFormat::Json), json);
    assert_eq!(format(&json, OutputFormat::Yaml), yaml);
    let state: NetworkState = parse(&json, &Log::new()).unwrap();
    let host = state.mptcp.as_ref().unwrap();
    assert_eq!(host.path_manager.unwrap().name(), "userspace");
    assert_eq!(host.scheduler.as_deref(), Some("bpf_burst"));
    let ports: Vec<Option<u16>> = state.interfaces[0]
        .addresses()
        .map(|a| a.mptcp_port)
        .collect();
    assert_eq!(ports, [Some(8080), None, Some(10000)]);
}

#[test]
fn flags_print_in_kernel_bit_order() {
    // Every flag a desired state may give per address, listed backwards, prints in the
    // kernel's bit order. (signal and fullmesh cannot go together, nor implicit with any.)
    let cases: [(&str, &[MptcpFlag]); 3] = [
        (
            "[laminar, fullmesh, backup, subflow]",
            &[
                MptcpFlag::Subflow,
                MptcpFlag::Backup,
                MptcpFlag::Fullmesh,
                MptcpFlag::Laminar,
            ],
        ),
        (
            "[laminar, backup, subflow, signal]",
            &[
                MptcpFlag::Signal,
                MptcpFlag::Subflow,
                MptcpFlag::Backup,
                MptcpFlag::Laminar,
            ],
        ),
        ("[implicit]", &[MptcpFlag::Implicit]),
    ];
    for (given, want) in cases {
        let input = format!(
            "interfaces: [{{name: eth1, ipv4: {{address: [{{ip: 192.0.2.2, prefix-length: 24, \
             mptcp-flags: {given}}}]}}}}]"
        );
        let json = format(&input, OutputFormat::Json);
        let doc: serde_json::Value = serde_json::from_str(&json).unwrap();
        let got = &doc["interfaces"][0]["ipv4"]["address"][0]["mptcp-flags"];
        let want: Vec<&str> = want.iter().map(|f| f.name()).collect();
        assert_eq!(got, &serde_json::json!(want), "{given}");
    }
}

#[test]
fn each_host_knob_alone() {
    for (input, want) in [
        (
            "mptcp: {path-manager: kernel}",
            "---\nmptcp:\n  path-manager: kernel\ninterfaces: []\n",
        ),
        (
            "mptcp: {scheduler: default}",
            "---\nmptcp:\n  scheduler: default\ninterfaces: []\n",
        ),
        (
            // 15 bytes, the kernel's longest name.
            "{\"mptcp\": {\"scheduler\": \"a23456789012345\"}}",
            "---\nmptcp:\n  scheduler: a23456789012345\ninterfaces: []\n",
        ),
    ] {
        assert_eq!(format(input, OutputFormat::Yaml), want, "{input}");
    }
}

#[test]
fn port_needs_signal_and_no_subflow() {
    let ok = |flags: &str, iface: &str| {
        let input = format!(
            "interfaces: [{{name: eth1, {iface} ipv4: {{address: [{{ip: 192.0.2.2, \
             prefix-length: 24, {flags} mptcp-port: 65535}}]}}}}]"
        );
        parse(&input, &Log::new()).map(|_| ())
    };
    assert!(ok("mptcp-flags: [signal],", "").is_ok());
    assert!(ok("mptcp-flags: [signal, backup, laminar],", "").is_ok());
    // The interface's flags count when the address has none of its own...
    assert!(ok("", "mptcp: {address-flags: [signal]},").is_ok());
    // ...and the address's own win over them.
    assert!(ok(
        "mptcp-flags: [signal],",
        "mptcp: {address-flags: [signal, subflow]},"
    )
    .is_ok());
    let e = ok(
        "mptcp-flags: [subflow],",
        "mptcp: {address-flags: [signal]},",
    )
    .unwrap_err();
    assert!(
        e.msg()
            .starts_with("interfaces[0].ipv4.address[0].mptcp-port: port 65535 with `subflow`"),
        "{e}"
    );
    let e = ok("mptcp-flags: [implicit],", "").unwrap_err();
    assert!(e.msg().contains("needs `signal`"), "{e}");
}

/// nmstate's inputs are taken unchanged: booleans and integers written as strings, in
/// exactly the spellings of nmstate's `deserializer::option_bool_or_string` and
/// `option_u64_or_string` (its unit tests and templated playbooks rely on them).
#[test]
fn nmstate_string_spellings_are_taken() {
    let canonical = |input: &str| {
        parse(input, &Log::new())
            .unwrap_or_else(|e| panic!("{input}: {e}"))
            .to_text(OutputFormat::Yaml)
            .unwrap()
    };
    let want = canonical(
        "mptcp: {enabled: true, limits: {subflows: 2, add-addr-accepted: 1}}\ninterfaces:\n- name: eth1\n  ipv4: {enabled: true, dhcp: false, address: [{ip: 192.0.2.2, prefix-length: 24, mptcp-flags: [signal], mptcp-port: 10000}]}\n  ipv6: {enabled: false, dhcp: false, autoconf: false}\n",
    );
    for (t, f, n24, n2) in [
        ("\"true\"", "\"false\"", "\"24\"", "\"2\""),
        ("\"TRUE\"", "\"False\"", "\"+24\"", "\"0x2\""),
        ("yes", "no", "0x18", "\"02\""),
        ("\"On\"", "\"OFF\"", "\"0x18\"", "\"+2\""),
        ("Y", "n", "\"0x+18\"", "2"),
        ("1", "0", "\"0024\"", "\"0x02\""),
        ("\"1\"", "\"0\"", "24", "\"2\""),
    ] {
        let input = format!(
            "mptcp: {{enabled: {t}, limits: {{subflows: {n2}, add-addr-accepted: \"1\"}}}}\ninterfaces:\n- name: eth1\n  ipv4: {{enabled: {t}, dhcp: {f}, address: [{{ip: 192.0.2.2, prefix-length: {n24}, mptcp-flags: [signal], mptcp-port: \"10000\"}}]}}\n  ipv6: {{enabled: {f}, dhcp: {f}, autoconf: {f}}}\n"
        );
        assert_eq!(canonical(&input), want, "{input}");
        // The same through JSON (Python's dicts and the C face's JSON callers).
        let yaml: serde_yaml::Value = serde_yaml::from_str(&input).unwrap();
        let json = serde_json::to_string(&yaml).unwrap();
        assert_eq!(canonical(&json), want, "{json}");
    }
    // null stays "absent", as before.
    assert_eq!(
        canonical("interfaces: [{name: eth1, ipv4: {enabled: null}}]"),
        canonical("interfaces: [{name: eth1, ipv4: {}}]")
    );
}

/// Nothing looser than nmstate: every spelling nmstate refuses is refused, with the
/// value's path and position.
#[test]
fn spellings_nmstate_refuses_are_refused() {
    let err = |field: &str, value: &str| {
        let input = match field {
            "enabled" => format!("interfaces:\n- name: eth1\n  ipv4:\n    enabled: {value}\n"),
            _ => format!(
                "interfaces:\n- name: eth1\n  ipv4:\n    address:\n    - ip: 192.0.2.2\n      prefix-length: {value}\n"
            ),
        };
        parse(&input, &Log::new())
            .map(|_| ())
            .expect_err(&input)
            .msg()
            .to_string()
    };
    for v in [
        "\"t\"",
        "\"ja\"",
        "\" true\"",
        "\"true \"",
        "\"\"",
        "2",
        "-1",
        "\"2\"",
        "\"0x1\"",
        "1.0",
        "\"yes please\"",
        "[true]",
    ] {
        let m = err("enabled", v);
        assert!(m.starts_with("interfaces[0].ipv4.enabled: "), "{v}: {m}");
        assert!(m.contains("(YAML line 4"), "{v}: {m}");
    }
    for v in [
        "\" 24\"",
        "\"24 \"",
        "\"\"",
        "\"0X18\"",
        "\"0o30\"",
        "\"0b11000\"",
        "\"-24\"",
        "\"2_4\"",
        "\"24.0\"",
        "24.0",
        "\"0x\"",
        "\"twenty\"",
        "true",
        "\"1e1\"",
    ] {
        let m = err("prefix", v);
        assert!(
            m.starts_with("interfaces[0].ipv4.address[0].prefix-length: "),
            "{v}: {m}"
        );
        assert!(m.contains("(YAML line 6"), "{v}: {m}");
    }
    // A string in range of u64 but not of the field says the range.
    assert!(err("prefix", "\"33\"").contains("IPv4 prefix-length 33 is out of range"));
    assert!(err("prefix", "\"0x21\"").contains("33 is out of range"));
}
