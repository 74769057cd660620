//! The plan of an apply as data, the same for both backends: what a dry run would do, and
//! what a real apply did (`ApplyOutcome::plan`). Empty exactly when the apply writes
//! nothing.
//!
//! JSON (`serde_json::to_string(&plan)`):
//!
//! ```json
//! {"interfaces": [{"name": "eth1", "actions": ["profile-updated", "reapply"],
//!                  "before": {"mptcp.address-flags": ["subflow"]},
//!                  "after": {"mptcp.address-flags": ["subflow", "signal"]}}],
//!  "host": [{"key": "mptcp.limits.subflows", "before": 2, "after": 4}]}
//! ```

use std::cmp::Ordering;

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use super::host::HostChange;
use crate::netlink::{KernelState, Link};
use crate::query::{interface_of, EndpointIndex};
use crate::state::{Interface, InterfaceState};

/// What an apply does to one interface, in the order it happens.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Action {
    /// NetworkManager: a new profile is added.
    ProfileAdded,
    /// NetworkManager: the interface's profile is rewritten.
    ProfileUpdated,
    /// NetworkManager: the device's profile is reapplied (`Device.Reapply`).
    Reapply,
    /// NetworkManager: the profile is activated on the device.
    Activation,
    /// NetworkManager: the device's active connection is deactivated.
    Deactivation,
    /// NetworkManager: the interface's profiles are deleted (`state: absent`).
    ProfileDeleted,
    /// Kernel-only: the link is set up.
    LinkUp,
    /// Kernel-only: the link is set down.
    LinkDown,
    /// Kernel-only: an address is added to the link.
    AddressAdded,
    /// Kernel-only: an address is removed from the link.
    AddressRemoved,
    /// Kernel-only: an MPTCP endpoint is added.
    EndpointAdded,
    /// Kernel-only: an MPTCP endpoint is removed (its subflows close).
    EndpointRemoved,
    /// Kernel-only: an endpoint's backup/fullmesh flags change in place (it keeps its id
    /// and its subflows).
    EndpointFlagsChangedInPlace,
    /// Kernel-only: an endpoint is deleted and re-added with other flags or another port
    /// (the subflows that use it close).
    EndpointReplaced,
}

impl Action {
    /// The word for a summary's count (`280 reapplied`), by the most telling action of
    /// an interface (see [`InterfaceChange::kind`]).
    fn past(self) -> &'static str {
        match self {
            Action::ProfileAdded => "profiles added",
            Action::ProfileUpdated => "profiles updated",
            Action::Reapply => "reapplied",
            Action::Activation => "activated",
            Action::Deactivation => "deactivated",
            Action::ProfileDeleted => "deleted",
            Action::LinkUp => "set up",
            Action::LinkDown => "set down",
            Action::AddressAdded | Action::AddressRemoved => "addresses changed",
            Action::EndpointAdded | Action::EndpointRemoved => "endpoints changed",
            Action::EndpointFlagsChangedInPlace => "endpoint flags changed in place",
            Action::EndpointReplaced => "endpoints replaced",
        }
    }
}

/// The change of one interface.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct InterfaceChange {
    pub name: String,
    /// What is done, in order; each action once.
    pub actions: Vec<Action>,
    /// The keys the state gives that differ from the kernel, as the kernel had them
    /// (`show --kernel`'s values; `null` where it has none), by their dotted schema
    /// names (`ipv4.address`, `mptcp.address-flags`, `state`).
    pub before: Map<String, Value>,
    /// The same keys as the state gives them.
    pub after: Map<String, Value>,
}

impl InterfaceChange {
    /// The kind of change, for counts: the most telling action (removal, then
    /// activation, reapply, replaced endpoints, ...).
    pub fn kind(&self) -> &'static str {
        const RANK: [Action; 14] = [
            Action::ProfileDeleted,
            Action::Deactivation,
            Action::Activation,
            Action::Reapply,
            Action::LinkDown,
            Action::LinkUp,
            Action::EndpointReplaced,
            Action::EndpointFlagsChangedInPlace,
            Action::EndpointAdded,
            Action::EndpointRemoved,
            Action::AddressAdded,
            Action::AddressRemoved,
            Action::ProfileAdded,
            Action::ProfileUpdated,
        ];
        RANK.iter()
            .find(|a| self.actions.contains(a))
            .map_or("changed", |a| a.past())
    }
}

/// A host knob that changes.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct KnobChange {
    /// `mptcp.enabled`, `mptcp.path-manager`, `mptcp.scheduler`, `mptcp.limits.subflows`,
    /// `mptcp.limits.add-addr-accepted`.
    pub key: String,
    pub before: Value,
    pub after: Value,
}

/// The plan of an apply: per interface what happens, and the host knobs that change.
/// Empty when nothing would change (then an apply writes nothing).
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct ApplyPlan {
    /// Sorted by name in natural order (`veth2` before `veth10`).
    pub interfaces: Vec<InterfaceChange>,
    pub host: Vec<KnobChange>,
}

impl ApplyPlan {
    pub fn is_empty(&self) -> bool {
        self.interfaces.is_empty() && self.host.is_empty()
    }

    /// The plan as JSON (one line).
    pub fn to_json(&self) -> String {
        // A map of strings to JSON values always serializes.
        serde_json::to_string(self).unwrap_or_default()
    }

    /// The changes counted by kind, most frequent first: `[(280, "reapplied"), ...]`.
    pub fn counts(&self) -> Vec<(usize, &'static str)> {
        let mut counts: Vec<(usize, &'static str)> = Vec::new();
        for i in &self.interfaces {
            let k = i.kind();
            match counts.iter_mut().find(|(_, n)| *n == k) {
                Some(c) => c.0 += 1,
                None => counts.push((1, k)),
            }
        }
        counts.sort_by_key(|c| std::cmp::Reverse(c.0));
        counts
    }

    /// The host knobs that change, grouped as the state spells them (`mptcp.limits`).
    pub fn knob_groups(&self) -> Vec<String> {
        let mut out: Vec<String> = Vec::new();
        for k in &self.host {
            let group = if k.key.starts_with("mptcp.limits.") {
                "mptcp.limits".to_string()
            } else {
                k.key.clone()
            };
            if !out.contains(&group) {
                out.push(group);
            }
        }
        out
    }
}

/// Orders names the way a person counts: digit runs by their value (`veth2` < `veth10`).
pub fn natural_cmp(a: &str, b: &str) -> Ordering {
    let (mut x, mut y) = (a.as_bytes(), b.as_bytes());
    loop {
        match (x.first(), y.first()) {
            (None, None) => return a.cmp(b),
            (None, _) => return Ordering::Less,
            (_, None) => return Ordering::Greater,
            (Some(c), Some(d)) if c.is_ascii_digit() && d.is_ascii_digit() => {
                let n = x.iter().take_while(|c| c.is_ascii_digit()).count();
                let m = y.iter().take_while(|c| c.is_ascii_digit()).count();
                let (p, q) = (&x[..n], &y[..m]);
                let strip = |s: &[u8]| -> usize { s.iter().take_while(|c| **c == b'0').count() };
                let (p2, q2) = (&p[strip(p)..], &q[strip(q)..]);
                let o = p2.len().cmp(&q2.len()).then_with(|| p2.cmp(q2));
                if o != Ordering::Equal {
                    return o;
                }
                x = &x[n..];
                y = &y[m..];
            }
            (Some(c), Some(d)) => {
                if c != d {
                    return c.cmp(d);
                }
                x = &x[1..];
                y = &y[1..];
            }
        }
    }
}

/// The keys of `iface` (as the state gives them) that differ from what the kernel has on
/// its `link` (`None`: the kernel has no such link): `(before, after)` by dotted schema
/// names.
pub fn differing_keys(
    iface: &Interface,
    link: Option<&Link>,
    kernel: &KernelState,
    index: &EndpointIndex,
) -> (Map<String, Value>, Map<String, Value>) {
    let mut before = Map::new();
    let mut after = Map::new();
    let Ok(Value::Object(desired)) = serde_json::to_value(iface) else {
        return (before, after);
    };
    let shown = link
        .map(|link| {
            let st = if link.is_up() {
                InterfaceState::Up
            } else {
                InterfaceState::Down
            };
            interface_of(kernel, index, link, st, None)
        })
        .and_then(|i| serde_json::to_value(i).ok());
    let shown = match shown {
        Some(Value::Object(m)) => m,
        // No link: everything the state says is new (`state: absent` of a link not
        // there is no change at all, and gets no entry).
        _ => {
            let mut m = Map::new();
            m.insert("state".into(), Value::String("absent".into()));
            m
        }
    };
    for (k, want) in &desired {
        if k == "name" || k == "type" {
            continue;
        }
        match want {
            Value::Object(sub) => {
                let have = shown.get(k).and_then(Value::as_object);
                for (sk, w) in sub {
                    let h = have.and_then(|m| m.get(sk));
                    if !h.is_some_and(|h| same(w, h)) {
                        let key = format!("{k}.{sk}");
                        before.insert(key.clone(), h.cloned().unwrap_or(Value::Null));
                        after.insert(key, w.clone());
                    }
                }
            }
            w => {
                let h = shown.get(k);
                if !h.is_some_and(|h| same(w, h)) {
                    before.insert(k.clone(), h.cloned().unwrap_or(Value::Null));
                    after.insert(k.clone(), w.clone());
                }
            }
        }
    }
    (before, after)
}

/// `want` holds in `have`: objects by the keys `want` gives, arrays as sets of such
/// elements (of the same size), other values equal.
fn same(want: &Value, have: &Value) -> bool {
    match (want, have) {
        (Value::Object(a), Value::Object(b)) => {
            a.iter().all(|(k, v)| b.get(k).is_some_and(|w| same(v, w)))
        }
        (Value::Array(a), Value::Array(b)) => {
            a.len() == b.len() && a.iter().all(|v| b.iter().any(|w| same(v, w)))
        }
        _ => want == have,
    }
}

/// The knobs of `change` with their values before (as read) and after.
pub fn knob_changes(change: &HostChange, kernel: &KernelState) -> Vec<KnobChange> {
    let mut out = Vec::new();
    let opt = |v: Option<Value>| v.unwrap_or(Value::Null);
    if let Some(e) = change.enabled {
        out.push(KnobChange {
            key: "mptcp.enabled".into(),
            before: opt(kernel.mptcp_enabled.map(Value::from)),
            after: Value::from(e),
        });
    }
    if let Some(pm) = change.path_manager {
        out.push(KnobChange {
            key: "mptcp.path-manager".into(),
            before: opt(kernel.sysctls.path_manager.clone().map(Value::from)),
            after: Value::from(pm.name()),
        });
    }
    if let Some(s) = &change.scheduler {
        out.push(KnobChange {
            key: "mptcp.scheduler".into(),
            before: opt(kernel.sysctls.scheduler.clone().map(Value::from)),
            after: Value::from(s.clone()),
        });
    }
    if let Some(l) = change.limits {
        let now = kernel.limits;
        if now.map(|n| n.subflows) != Some(l.subflows) {
            out.push(KnobChange {
                key: "mptcp.limits.subflows".into(),
                before: opt(now.map(|n| Value::from(n.subflows))),
                after: Value::from(l.subflows),
            });
        }
        if now.map(|n| n.add_addr_accepted) != Some(l.add_addr_accepted) {
            out.push(KnobChange {
                key: "mptcp.limits.add-addr-accepted".into(),
                before: opt(now.map(|n| Value::from(n.add_addr_accepted))),
                after: Value::from(l.add_addr_accepted),
            });
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testkit;

    #[test]
    fn natural_order() {
        let mut v = vec!["veth10", "veth2", "veth1", "eth0", "veth100", "veth02", "a"];
        v.sort_by(|a, b| natural_cmp(a, b));
        assert_eq!(
            v,
            ["a", "eth0", "veth1", "veth02", "veth2", "veth10", "veth100"]
        );
    }

    #[test]
    fn counts_by_kind_and_json_shape() {
        let mut p = ApplyPlan::default();
        for i in 0..3 {
            p.interfaces.push(InterfaceChange {
                name: format!("veth{i}"),
                actions: vec![Action::ProfileUpdated, Action::Reapply],
                ..Default::default()
            });
        }
        p.interfaces.push(InterfaceChange {
            name: "veth9".into(),
            actions: vec![Action::ProfileAdded, Action::Activation],
            ..Default::default()
        });
        assert_eq!(p.counts(), vec![(3, "reapplied"), (1, "activated")]);
        let v: Value = serde_json::from_str(&p.to_json()).unwrap();
        assert_eq!(v["interfaces"][0]["actions"][1], "reapply");
        assert_eq!(v["interfaces"][3]["actions"][0], "profile-added");
        assert!(!p.is_empty());
        assert!(ApplyPlan::default().is_empty());
    }

    #[test]
    fn only_the_differing_keys() {
        let k = testkit::two_links_six_endpoints();
        let st = testkit::state(
            "interfaces:\n- name: eth1\n  mptcp: {address-flags: [signal]}\n  ipv4: {address: [{ip: 192.0.2.2, prefix-length: 24}]}\n",
        );
        let (before, after) = differing_keys(
            &st.interfaces[0],
            k.links.iter().find(|l| l.name == st.interfaces[0].name),
            &k,
            &EndpointIndex::new(&k),
        );
        assert_eq!(
            after.keys().collect::<Vec<_>>(),
            ["mptcp.address-flags"],
            "{before:?} {after:?}"
        );
        assert_eq!(after["mptcp.address-flags"], serde_json::json!(["signal"]));
        assert!(before.contains_key("mptcp.address-flags"));
    }
}
