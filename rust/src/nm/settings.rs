//! An interface of the state as NetworkManager D-Bus settings (`a{sa{sv}}`), the argument
//! of `AddConnection2` and `Update2`. Pure: no D-Bus here.
//!
//! The mapping itself is [`ProfileModel`] (shared with the offline keyfiles); this file
//! writes it into settings, either a whole new profile or the least change to an
//! existing one.
//!
//! NM quirks this file exists for (seen on NM 1.42.4):
//! - `GetSettings` returns every IP address and route twice: in the current keys
//!   (`address-data`, `route-data`, `aa{sv}`) and in the deprecated ones (`addresses`,
//!   `aau` / `a(ayuay)`, `routes`). Sent back, **the daemon prefers the deprecated key
//!   whenever it is present**, even when it is empty: an `Update2` with a new
//!   `address-data` and the old `addresses` keeps the old addresses, and with
//!   `addresses: []` it fails with `ipv4.addresses: this property cannot be empty for
//!   'method=manual'`. The deprecated keys cannot carry attributes either: a route with
//!   `table=100` sent back with its `routes` twin comes out without its table. So every
//!   deprecated twin is dropped from settings this library writes: the `-data` keys hold
//!   all of it.
//! - `Update2` replaces the whole profile: a key left out takes NM's default. So an
//!   existing profile is changed by editing its `GetSettings` in place, never by sending
//!   only the keys that change.

use std::collections::HashMap;
use std::net::IpAddr;

use zbus::zvariant::{OwnedValue, Value};

use super::dbus::{Settings, VarDict};
use super::keyfile::profile_uuid;
use super::model::{IpProfile, ProfileModel};
use crate::state::{Interface, Ipv4Address, Ipv4Config, Ipv6Address, Ipv6Config};

/// The D-Bus name of the ethernet setting (`[ethernet]` in keyfiles); a veth is an
/// ethernet device to NM.
pub const ETHERNET: &str = "802-3-ethernet";

/// Deprecated keys and the key that replaces each, per IP setting.
const LEGACY_TWINS: [(&str, &str); 2] = [("addresses", "address-data"), ("routes", "route-data")];

/// The settings for `iface`: a whole new profile when `existing` is `None`, else
/// `existing` with only what the state sets changed (and the deprecated keys dropped, see
/// the module's note). Callers only pass interfaces that get a profile (configurable
/// types, not `state: absent`).
pub fn desired_settings(iface: &Interface, existing: Option<&Settings>) -> Settings {
    match existing {
        None => new_settings(iface),
        Some(existing) => {
            let model =
                ProfileModel::changes(iface, &current_ipv4(existing), &current_ipv6(existing));
            let mut s = existing.clone();
            strip_legacy(&mut s);
            apply_model(&mut s, &model);
            s
        }
    }
}

/// A new profile: `connection.{id, uuid, type, interface-name}` (the UUID derived from the
/// name, as the keyfiles' is), an empty ethernet setting, and both IP settings.
fn new_settings(iface: &Interface) -> Settings {
    let mut s = Settings::new();
    let conn = s.entry("connection".to_string()).or_default();
    conn.insert("id".into(), owned(iface.name.as_str()));
    conn.insert(
        "uuid".into(),
        owned(profile_uuid(&iface.name).to_string().as_str()),
    );
    conn.insert("type".into(), owned(ETHERNET));
    conn.insert("interface-name".into(), owned(iface.name.as_str()));
    s.insert(ETHERNET.to_string(), HashMap::new());
    apply_model(&mut s, &ProfileModel::new_profile(iface));
    s
}

/// Writes what the model sets; leaves every other key as it is.
fn apply_model(s: &mut Settings, model: &ProfileModel) {
    let conn = s.entry("connection".to_string()).or_default();
    match model.autoconnect {
        // `true` is NM's default, which `GetSettings` leaves out: writing it where it is
        // absent would make an unchanged profile look changed.
        Some(true) if !conn.contains_key("autoconnect") => {}
        Some(autoconnect) => {
            conn.insert("autoconnect".into(), owned(autoconnect));
        }
        None => {}
    }
    if let Some(flags) = model.mptcp_flags {
        conn.insert("mptcp-flags".into(), owned(flags));
    }
    for (section, ip) in [("ipv4", &model.ipv4), ("ipv6", &model.ipv6)] {
        if let Some(ip) = ip {
            write_ip(s.entry(section.to_string()).or_default(), ip);
        }
    }
}

fn write_ip(setting: &mut HashMap<String, OwnedValue>, ip: &IpProfile) {
    setting.insert("method".into(), owned(ip.method.as_str()));
    // Keep the entries of addresses that stay as NM has them (they may carry attributes
    // this library does not know); new ones get `address` and `prefix` only.
    let current = setting
        .get("address-data")
        .map(dict_list)
        .unwrap_or_default();
    let entries: Vec<HashMap<String, Value<'static>>> = ip
        .addresses
        .iter()
        .map(|(addr, prefix)| {
            current
                .iter()
                .find(|e| address_of(e) == Some((*addr, *prefix)))
                .cloned()
                .unwrap_or_else(|| {
                    HashMap::from([
                        ("address".to_string(), Value::from(addr.to_string())),
                        ("prefix".to_string(), Value::U32(u32::from(*prefix))),
                    ])
                })
        })
        .collect();
    setting.insert("address-data".into(), owned(entries));
    setting.remove("addresses");
    // NM 1.42 refuses a gateway beside no static address, whatever the method (even
    // `auto`): "ipv4.gateway: gateway cannot be set if there are no addresses
    // configured". A state that removes the last address removes the gateway with it.
    if ip.addresses.is_empty() {
        setting.remove("gateway");
    }
}

/// Drops the deprecated twin of every key that has its replacement (module's note).
pub fn strip_legacy(s: &mut Settings) {
    for section in ["ipv4", "ipv6"] {
        if let Some(setting) = s.get_mut(section) {
            for (legacy, current) in LEGACY_TWINS {
                if setting.contains_key(current) {
                    setting.remove(legacy);
                }
            }
        }
    }
}

/// The `setting.key` names whose values differ between two profiles, sorted; deprecated
/// twins are not compared (as if [`strip_legacy`] had run on both: nothing is copied, an
/// apply of 1000 interfaces compares 1000 profiles and their applied connections).
/// Empty: writing `desired` would change nothing.
pub fn changed_keys(existing: &Settings, desired: &Settings) -> Vec<String> {
    let empty = VarDict::new();
    let mut out = Vec::new();
    let sections: std::collections::BTreeSet<&String> =
        existing.keys().chain(desired.keys()).collect();
    for section in sections {
        let sa = existing.get(section).unwrap_or(&empty);
        let sb = desired.get(section).unwrap_or(&empty);
        let keys: std::collections::BTreeSet<&String> = sa.keys().chain(sb.keys()).collect();
        for key in keys {
            if compared(section, key, sa) != compared(section, key, sb) {
                out.push(format!("{section}.{key}"));
            }
        }
    }
    out
}

/// `section.key` of one profile as [`changed_keys`] compares it: a deprecated twin beside
/// its replacement is not there.
fn compared<'a>(section: &str, key: &str, setting: &'a VarDict) -> Option<&'a OwnedValue> {
    let shadowed = matches!(section, "ipv4" | "ipv6")
        && LEGACY_TWINS
            .iter()
            .any(|(legacy, current)| key == *legacy && setting.contains_key(*current));
    if shadowed {
        None
    } else {
        setting.get(key)
    }
}

/// A string value of the settings (`connection.uuid`, ...).
pub fn get_str(s: &Settings, section: &str, key: &str) -> Option<String> {
    match s.get(section)?.get(key).map(|v| &**v) {
        Some(Value::Str(v)) => Some(v.to_string()),
        _ => None,
    }
}

/// A `b` value (`connection.autoconnect`, ...).
pub fn get_bool(s: &Settings, section: &str, key: &str) -> Option<bool> {
    match s.get(section)?.get(key).map(|v| &**v) {
        Some(Value::Bool(v)) => Some(*v),
        _ => None,
    }
}

/// A `u` value (`connection.mptcp-flags`, ...).
pub fn get_u32(s: &Settings, section: &str, key: &str) -> Option<u32> {
    match s.get(section)?.get(key).map(|v| &**v) {
        Some(Value::U32(v)) => Some(*v),
        _ => None,
    }
}

/// The IPv4 setting of a profile in the state's terms, as [`ProfileModel::changes`]
/// merges the desired state over it. A method this library does not write (`shared`,
/// `link-local`) reads as enabled without DHCP: a state that changes the section turns it
/// into one of ours.
pub fn current_ipv4(s: &Settings) -> Ipv4Config {
    let method = get_str(s, "ipv4", "method");
    let address = addresses(s, "ipv4")
        .into_iter()
        .filter_map(|(ip, prefix)| match ip {
            IpAddr::V4(ip) => Some(Ipv4Address {
                ip,
                prefix_length: prefix,
                mptcp_flags: None,
                mptcp_port: None,
            }),
            IpAddr::V6(_) => None,
        })
        .collect();
    Ipv4Config {
        enabled: Some(method.as_deref() != Some("disabled")),
        dhcp: Some(method.as_deref().is_none_or(|m| m == "auto")),
        address: Some(address),
    }
}

/// [`current_ipv4`] for IPv6. `ignore` (NM leaves IPv6 to the kernel) reads as disabled.
pub fn current_ipv6(s: &Settings) -> Ipv6Config {
    let method = get_str(s, "ipv6", "method");
    let address = addresses(s, "ipv6")
        .into_iter()
        .filter_map(|(ip, prefix)| match ip {
            IpAddr::V6(ip) => Some(Ipv6Address {
                ip,
                prefix_length: prefix,
                mptcp_flags: None,
                mptcp_port: None,
            }),
            IpAddr::V4(_) => None,
        })
        .collect();
    // NM's default for a missing method is `auto`.
    let method = method.unwrap_or_else(|| "auto".to_string());
    Ipv6Config {
        enabled: Some(!matches!(method.as_str(), "disabled" | "ignore")),
        dhcp: Some(matches!(method.as_str(), "auto" | "dhcp")),
        autoconf: Some(method == "auto"),
        address: Some(address),
    }
}

/// The static addresses of an IP setting, from `address-data`.
fn addresses(s: &Settings, section: &str) -> Vec<(IpAddr, u8)> {
    s.get(section)
        .and_then(|m| m.get("address-data"))
        .map(dict_list)
        .unwrap_or_default()
        .iter()
        .filter_map(address_of)
        .collect()
}

/// An `aa{sv}` value as a list of maps (empty when it is something else).
fn dict_list(v: &OwnedValue) -> Vec<HashMap<String, Value<'static>>> {
    let Value::Array(arr) = &**v else {
        return Vec::new();
    };
    arr.iter()
        .filter_map(|entry| {
            let Value::Dict(d) = entry else { return None };
            let mut out = HashMap::new();
            for (k, v) in d.iter() {
                let Value::Str(k) = k else { continue };
                // Values of an a{sv} come wrapped in a variant.
                let v = match v {
                    Value::Value(inner) => inner.as_ref(),
                    other => other,
                };
                out.insert(k.to_string(), v.try_clone().ok()?);
            }
            Some(out)
        })
        .collect()
}

/// `address` and `prefix` of an `address-data` entry.
fn address_of(entry: &HashMap<String, Value<'static>>) -> Option<(IpAddr, u8)> {
    let Some(Value::Str(addr)) = entry.get("address") else {
        return None;
    };
    let Some(Value::U32(prefix)) = entry.get("prefix") else {
        return None;
    };
    Some((addr.as_str().parse().ok()?, u8::try_from(*prefix).ok()?))
}

/// A settings value. Only values holding file descriptors can fail to convert, and
/// settings hold none.
fn owned<'a>(v: impl Into<Value<'a>>) -> OwnedValue {
    v.into()
        .try_to_owned()
        .unwrap_or_else(|_| OwnedValue::from(0u32))
}

#[cfg(test)]
mod tests {
    use super::*;
    use zbus::zvariant::serialized::Context;
    use zbus::zvariant::{to_bytes, LE};

    fn iface(json: &str) -> Interface {
        serde_json::from_str(json).unwrap()
    }

    /// The settings as NM would hand them back: through the wire format and back.
    fn over_the_wire(s: &Settings) -> Settings {
        let ctxt = Context::new_dbus(LE, 0);
        let bytes = to_bytes(ctxt, s).unwrap();
        bytes.deserialize().unwrap().0
    }

    fn seed() -> Interface {
        iface(
            r#"{"name": "eth1", "type": "ethernet", "state": "up",
                "mptcp": {"address-flags": ["subflow", "signal"]},
                "ipv4": {"enabled": true, "dhcp": false,
                         "address": [{"ip": "192.0.2.2", "prefix-length": 24}]}}"#,
        )
    }

    #[test]
    fn new_profile_for_the_seed() {
        let s = desired_settings(&seed(), None);
        assert_eq!(get_str(&s, "connection", "id").as_deref(), Some("eth1"));
        assert_eq!(
            get_str(&s, "connection", "uuid"),
            Some(profile_uuid("eth1").to_string())
        );
        assert_eq!(get_str(&s, "connection", "type").as_deref(), Some(ETHERNET));
        assert_eq!(
            get_str(&s, "connection", "interface-name").as_deref(),
            Some("eth1")
        );
        assert_eq!(get_u32(&s, "connection", "mptcp-flags"), Some(56));
        // `state: up` is NM's default autoconnect, left out as NM leaves it out.
        assert!(!s["connection"].contains_key("autoconnect"));
        assert!(s[ETHERNET].is_empty());
        assert_eq!(get_str(&s, "ipv4", "method").as_deref(), Some("manual"));
        assert_eq!(
            addresses(&s, "ipv4"),
            vec![("192.0.2.2".parse().unwrap(), 24)]
        );
        assert_eq!(get_str(&s, "ipv6", "method").as_deref(), Some("disabled"));
        assert!(!s["ipv4"].contains_key("addresses"));
    }

    #[test]
    fn the_wire_format_changes_nothing() {
        let s = desired_settings(&seed(), None);
        let back = over_the_wire(&s);
        assert_eq!(back, s);
        assert!(changed_keys(&s, &back).is_empty());
    }

    /// What `GetSettings` returns for a profile nmcli made: deprecated twins included.
    fn existing() -> Settings {
        let mut s = desired_settings(&seed(), None);
        let v4 = s.get_mut("ipv4").unwrap();
        v4.insert("addresses".into(), owned(vec![vec![33685696u32, 24, 0]]));
        v4.insert("routes".into(), owned(Vec::<Vec<u32>>::new()));
        v4.insert(
            "route-data".into(),
            owned(Vec::<HashMap<String, Value>>::new()),
        );
        v4.insert("gateway".into(), owned("192.0.2.1"));
        s.get_mut("connection")
            .unwrap()
            .insert("timestamp".into(), owned(1234u64));
        s.get_mut("connection").unwrap().remove("autoconnect");
        over_the_wire(&s)
    }

    #[test]
    fn an_absent_key_leaves_the_profile_alone() {
        let ex = existing();
        let d = desired_settings(&iface(r#"{"name": "eth1"}"#), Some(&ex));
        assert!(
            changed_keys(&ex, &d).is_empty(),
            "{:?}",
            changed_keys(&ex, &d)
        );
        // ... but the deprecated twins are gone, so NM reads the current keys.
        assert!(!d["ipv4"].contains_key("addresses"));
        assert!(!d["ipv4"].contains_key("routes"));
        assert!(d["ipv4"].contains_key("route-data"));
        assert!(d["connection"].contains_key("timestamp"));
    }

    #[test]
    fn flags_only() {
        let ex = existing();
        let d = desired_settings(
            &iface(r#"{"name": "eth1", "mptcp": {"address-flags": ["backup", "subflow"]}}"#),
            Some(&ex),
        );
        assert_eq!(changed_keys(&ex, &d), vec!["connection.mptcp-flags"]);
        assert_eq!(get_u32(&d, "connection", "mptcp-flags"), Some(0x68));
        let off = desired_settings(
            &iface(r#"{"name": "eth1", "mptcp": {"address-flags": []}}"#),
            Some(&ex),
        );
        assert_eq!(get_u32(&off, "connection", "mptcp-flags"), Some(1));
    }

    #[test]
    fn the_seed_again_changes_nothing() {
        let ex = existing();
        let d = desired_settings(&seed(), Some(&ex));
        assert!(changed_keys(&ex, &d).is_empty());
        // `state: down` turns autoconnect off, and `up` on again.
        let down = desired_settings(&iface(r#"{"name": "eth1", "state": "down"}"#), Some(&ex));
        assert_eq!(changed_keys(&ex, &down), vec!["connection.autoconnect"]);
        let up = desired_settings(&iface(r#"{"name": "eth1", "state": "up"}"#), Some(&down));
        assert_eq!(up["connection"]["autoconnect"], OwnedValue::from(true));
    }

    #[test]
    fn addresses_change_and_attributes_stay() {
        let mut ex = existing();
        // An attribute NM may carry on an address entry.
        let with_label = vec![HashMap::from([
            ("address".to_string(), Value::from("192.0.2.2")),
            ("prefix".to_string(), Value::U32(24)),
            ("label".to_string(), Value::from("eth1:a")),
        ])];
        ex.get_mut("ipv4")
            .unwrap()
            .insert("address-data".into(), owned(with_label));
        let ex = over_the_wire(&ex);
        let d = desired_settings(
            &iface(
                r#"{"name": "eth1", "ipv4": {"address": [
                    {"ip": "192.0.2.3", "prefix-length": 24},
                    {"ip": "192.0.2.2", "prefix-length": 24}]}}"#,
            ),
            Some(&ex),
        );
        assert_eq!(changed_keys(&ex, &d), vec!["ipv4.address-data"]);
        let entries = dict_list(&d["ipv4"]["address-data"]);
        assert_eq!(entries.len(), 2);
        assert_eq!(entries[1].get("label"), Some(&Value::from("eth1:a")));
        assert_eq!(get_str(&d, "ipv4", "method").as_deref(), Some("manual"));
        assert_eq!(over_the_wire(&d), d);
    }

    #[test]
    fn disabling_drops_addresses_and_gateway() {
        let ex = existing();
        let d = desired_settings(
            &iface(r#"{"name": "eth1", "ipv4": {"enabled": false}}"#),
            Some(&ex),
        );
        assert_eq!(get_str(&d, "ipv4", "method").as_deref(), Some("disabled"));
        assert!(addresses(&d, "ipv4").is_empty());
        assert!(!d["ipv4"].contains_key("gateway"));
    }

    #[test]
    fn the_last_address_takes_the_gateway_with_it() {
        let ex = existing();
        let d = desired_settings(
            &iface(r#"{"name": "eth1", "ipv4": {"dhcp": true, "address": []}}"#),
            Some(&ex),
        );
        assert_eq!(get_str(&d, "ipv4", "method").as_deref(), Some("auto"));
        assert_eq!(
            changed_keys(&ex, &d),
            vec!["ipv4.address-data", "ipv4.gateway", "ipv4.method"]
        );
    }

    #[test]
    fn dhcp_keeps_static_addresses() {
        let ex = existing();
        let d = desired_settings(
            &iface(r#"{"name": "eth1", "ipv4": {"dhcp": true}}"#),
            Some(&ex),
        );
        assert_eq!(get_str(&d, "ipv4", "method").as_deref(), Some("auto"));
        assert_eq!(addresses(&d, "ipv4").len(), 1);
        assert_eq!(
            changed_keys(&ex, &d),
            vec!["ipv4.method"],
            "only the method changes"
        );
    }

    #[test]
    fn ipv6_methods_read_back() {
        for (method, enabled, dhcp, autoconf) in [
            ("auto", true, true, true),
            ("dhcp", true, true, false),
            ("manual", true, false, false),
            ("link-local", true, false, false),
            ("disabled", false, false, false),
            ("ignore", false, false, false),
        ] {
            let mut s = Settings::new();
            s.entry("ipv6".into())
                .or_default()
                .insert("method".into(), owned(method));
            let c = current_ipv6(&s);
            assert_eq!(
                (c.enabled, c.dhcp, c.autoconf),
                (Some(enabled), Some(dhcp), Some(autoconf)),
                "{method}"
            );
        }
        // A profile whose ipv6 reads back is unchanged by its own reading.
        let six = iface(
            r#"{"name": "eth1", "ipv6": {"enabled": true, "dhcp": false, "autoconf": false,
                "address": [{"ip": "2001:db8::2", "prefix-length": 64}]}}"#,
        );
        let s = over_the_wire(&desired_settings(&six, None));
        assert_eq!(get_str(&s, "ipv6", "method").as_deref(), Some("manual"));
        let again = desired_settings(&six, Some(&s));
        assert!(changed_keys(&s, &again).is_empty());
    }

    #[test]
    fn keyfile_and_settings_agree() {
        // Both print the same model: the keyfile's method lines match the settings.
        for json in [
            r#"{"name": "eth2", "state": "down", "ipv4": {"dhcp": true},
                "ipv6": {"autoconf": true, "dhcp": true}}"#,
            r#"{"name": "eth3", "mptcp": {"address-flags": []},
                "ipv6": {"enabled": true, "dhcp": true, "autoconf": false}}"#,
            r#"{"name": "eth4", "ipv4": {"enabled": true},
                "ipv6": {"address": [{"ip": "2001:db8::2", "prefix-length": 64}]}}"#,
        ] {
            let i = iface(json);
            let s = desired_settings(&i, None);
            let (_, text) = super::super::keyfile::keyfile(&i, &crate::Log::new()).unwrap();
            for section in ["ipv4", "ipv6"] {
                let method = get_str(&s, section, "method").unwrap();
                let block = text.split(&format!("[{section}]\n")).nth(1).unwrap();
                assert!(block.contains(&format!("method={method}\n")), "{json}");
            }
            let flags = get_u32(&s, "connection", "mptcp-flags");
            assert_eq!(
                flags.map(|f| text.contains(&format!("mptcp-flags={f}\n"))),
                flags.map(|_| true)
            );
            assert_eq!(
                text.contains("autoconnect=false"),
                s["connection"].get("autoconnect") == Some(&OwnedValue::from(false))
            );
        }
    }
}
