//! MPTCP endpoint flags, as `mptcp.address-flags` and per-address `mptcp-flags` carry
//! them.

use std::fmt;

use serde::de::{self, Deserializer, SeqAccess, Visitor};
use serde::ser::{SerializeSeq, Serializer};
use serde::{Deserialize, Serialize};

/// One MPTCP endpoint flag (`ip mptcp endpoint` flags, see IP-MPTCP(8)).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum MptcpFlag {
    /// Announce the address to the peer with an ADD_ADDR.
    Signal,
    /// Use the address as a source for additional subflows.
    Subflow,
    /// Subflows over this address are backup subflows.
    Backup,
    /// With `subflow`: one subflow per known peer address (refused with `signal`).
    Fullmesh,
    /// An endpoint the kernel made itself, for a local address a connection used without
    /// one (`show` reports it; a desired state cannot ask for it).
    Implicit,
    /// Linux 6.18: use the address for subflows towards the addresses the peer announces,
    /// one per announced address (NetworkManager 0x100 from 1.56).
    Laminar,
}

impl MptcpFlag {
    /// In the kernel's bit order, which is also the canonical output order.
    pub const ALL: [MptcpFlag; 6] = [
        MptcpFlag::Signal,
        MptcpFlag::Subflow,
        MptcpFlag::Backup,
        MptcpFlag::Fullmesh,
        MptcpFlag::Implicit,
        MptcpFlag::Laminar,
    ];

    pub fn name(self) -> &'static str {
        match self {
            MptcpFlag::Signal => "signal",
            MptcpFlag::Subflow => "subflow",
            MptcpFlag::Backup => "backup",
            MptcpFlag::Fullmesh => "fullmesh",
            MptcpFlag::Implicit => "implicit",
            MptcpFlag::Laminar => "laminar",
        }
    }

    /// The bit of `MPTCP_PM_ADDR_FLAG_*` in the kernel's uapi.
    pub fn kernel_bit(self) -> u32 {
        match self {
            MptcpFlag::Signal => 1 << 0,
            MptcpFlag::Subflow => 1 << 1,
            MptcpFlag::Backup => 1 << 2,
            MptcpFlag::Fullmesh => 1 << 3,
            MptcpFlag::Implicit => 1 << 4,
            MptcpFlag::Laminar => 1 << 5,
        }
    }
}

impl fmt::Display for MptcpFlag {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// A set of MPTCP flags. The empty set means "MPTCP off" for an interface and "no
/// endpoint" for an address.
///
/// Serialized as a list in canonical order; deserialized from a list in any order,
/// duplicates folded. `signal` together with `fullmesh` is refused while parsing, so a
/// value of this type never holds both.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct MptcpFlags(u32);

impl MptcpFlags {
    pub const EMPTY: MptcpFlags = MptcpFlags(0);

    /// Builds a set from kernel `MPTCP_PM_ADDR_FLAG_*` bits; bits this library does not
    /// know are dropped.
    pub fn from_kernel_bits(bits: u32) -> Self {
        let known = MptcpFlag::ALL.iter().fold(0, |acc, f| acc | f.kernel_bit());
        MptcpFlags(bits & known)
    }

    pub fn kernel_bits(self) -> u32 {
        self.0
    }

    pub fn is_empty(self) -> bool {
        self.0 == 0
    }

    pub fn contains(self, flag: MptcpFlag) -> bool {
        self.0 & flag.kernel_bit() != 0
    }

    pub fn insert(&mut self, flag: MptcpFlag) {
        self.0 |= flag.kernel_bit();
    }

    pub fn iter(self) -> impl Iterator<Item = MptcpFlag> {
        MptcpFlag::ALL
            .into_iter()
            .filter(move |f| self.contains(*f))
    }

    /// Checks the combinations the kernel refuses.
    pub fn check(self) -> Result<(), String> {
        if self.contains(MptcpFlag::Signal) && self.contains(MptcpFlag::Fullmesh) {
            return Err(
                "`signal` and `fullmesh` cannot be set together: the kernel refuses \
                 fullmesh on a signal endpoint; drop one of them"
                    .to_string(),
            );
        }
        if self.contains(MptcpFlag::Implicit) && self.0 != MptcpFlag::Implicit.kernel_bit() {
            return Err(
                "`implicit` cannot be combined with other flags: the kernel makes implicit \
                 endpoints itself, for addresses a connection used without an endpoint"
                    .to_string(),
            );
        }
        Ok(())
    }
}

impl FromIterator<MptcpFlag> for MptcpFlags {
    fn from_iter<I: IntoIterator<Item = MptcpFlag>>(iter: I) -> Self {
        let mut flags = MptcpFlags::EMPTY;
        for f in iter {
            flags.insert(f);
        }
        flags
    }
}

impl fmt::Display for MptcpFlags {
    /// `[signal, subflow]`, as in the schema.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("[")?;
        for (i, flag) in self.iter().enumerate() {
            if i > 0 {
                f.write_str(", ")?;
            }
            f.write_str(flag.name())?;
        }
        f.write_str("]")
    }
}

impl Serialize for MptcpFlags {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let mut seq = serializer.serialize_seq(Some(self.iter().count()))?;
        for flag in self.iter() {
            seq.serialize_element(&flag)?;
        }
        seq.end()
    }
}

impl<'de> Deserialize<'de> for MptcpFlags {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct FlagsVisitor;

        impl<'de> Visitor<'de> for FlagsVisitor {
            type Value = MptcpFlags;

            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(
                    "a list of MPTCP flags (signal, subflow, backup, fullmesh, laminar), e.g. \
                     [subflow]",
                )
            }

            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
                let mut flags = MptcpFlags::EMPTY;
                while let Some(flag) = seq.next_element::<MptcpFlag>()? {
                    flags.insert(flag);
                }
                flags.check().map_err(de::Error::custom)?;
                Ok(flags)
            }
        }

        deserializer.deserialize_seq(FlagsVisitor)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn canonical_order_and_duplicates() {
        let f: MptcpFlags = serde_json::from_str(r#"["subflow","signal","subflow"]"#).unwrap();
        assert_eq!(
            serde_json::to_string(&f).unwrap(),
            r#"["signal","subflow"]"#
        );
        assert_eq!(f.kernel_bits(), 0b11);
        assert_eq!(f.to_string(), "[signal, subflow]");
    }

    #[test]
    fn signal_with_fullmesh_is_refused() {
        let e = serde_json::from_str::<MptcpFlags>(r#"["fullmesh","signal"]"#).unwrap_err();
        assert!(e.to_string().contains("cannot be set together"), "{e}");
    }

    #[test]
    fn scalar_is_refused_with_a_hint() {
        let e = serde_json::from_str::<MptcpFlags>(r#""subflow""#).unwrap_err();
        assert!(e.to_string().contains("a list of MPTCP flags"), "{e}");
    }

    #[test]
    fn unknown_kernel_bits_are_dropped() {
        // 0x10 is the kernel's `implicit` flag, 0x20 `laminar`; 0x40 is not defined.
        let f = MptcpFlags::from_kernel_bits(0x40 | 0x20 | 0x2);
        assert_eq!(
            f.iter().collect::<Vec<_>>(),
            vec![MptcpFlag::Subflow, MptcpFlag::Laminar]
        );
        let f = MptcpFlags::from_kernel_bits(0x10);
        assert_eq!(f.iter().collect::<Vec<_>>(), vec![MptcpFlag::Implicit]);
    }

    #[test]
    fn implicit_stands_alone() {
        assert!(serde_json::from_str::<MptcpFlags>(r#"["implicit"]"#).is_ok());
        let e = serde_json::from_str::<MptcpFlags>(r#"["implicit","subflow"]"#).unwrap_err();
        assert!(e.to_string().contains("the kernel makes implicit"), "{e}");
    }
}
