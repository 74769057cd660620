//! `connection.mptcp-flags`, NetworkManager's per-profile MPTCP setting
//! (`NMMptcpFlags` in libnm).

use crate::state::{MptcpFlag, MptcpFlags};

pub const NM_MPTCP_FLAGS_NONE: u32 = 0x0;
pub const NM_MPTCP_FLAGS_DISABLED: u32 = 0x1;
pub const NM_MPTCP_FLAGS_ENABLED: u32 = 0x2;
pub const NM_MPTCP_FLAGS_ALSO_WITHOUT_SYSCTL: u32 = 0x4;
pub const NM_MPTCP_FLAGS_ALSO_WITHOUT_DEFAULT_ROUTE: u32 = 0x8;
pub const NM_MPTCP_FLAGS_SIGNAL: u32 = 0x10;
pub const NM_MPTCP_FLAGS_SUBFLOW: u32 = 0x20;
pub const NM_MPTCP_FLAGS_BACKUP: u32 = 0x40;
pub const NM_MPTCP_FLAGS_FULLMESH: u32 = 0x80;
/// NetworkManager 1.56 and later.
pub const NM_MPTCP_FLAGS_LAMINAR: u32 = 0x100;

/// NM's bit for an endpoint flag; `implicit` has none (the kernel makes such endpoints,
/// nobody configures them).
fn nm_bit(flag: MptcpFlag) -> u32 {
    match flag {
        MptcpFlag::Signal => NM_MPTCP_FLAGS_SIGNAL,
        MptcpFlag::Subflow => NM_MPTCP_FLAGS_SUBFLOW,
        MptcpFlag::Backup => NM_MPTCP_FLAGS_BACKUP,
        MptcpFlag::Fullmesh => NM_MPTCP_FLAGS_FULLMESH,
        MptcpFlag::Laminar => NM_MPTCP_FLAGS_LAMINAR,
        MptcpFlag::Implicit => 0,
    }
}

/// The `connection.mptcp-flags` value for an interface's `address-flags`.
///
/// `[]` is "disabled". Otherwise the endpoint flags plus also-without-default-route: NM
/// by default only adds endpoints on interfaces that carry a default route, and a user
/// who lists flags wants the endpoints whatever the routing (nmstate forces it too).
/// The seed's `[subflow, signal]` gives 0x38 = 56.
pub fn to_nm(flags: MptcpFlags) -> u32 {
    if flags.is_empty() {
        return NM_MPTCP_FLAGS_DISABLED;
    }
    flags
        .iter()
        .fold(NM_MPTCP_FLAGS_ALSO_WITHOUT_DEFAULT_ROUTE, |acc, f| {
            acc | nm_bit(f)
        })
}

/// The endpoint flags a `connection.mptcp-flags` value asks for, as far as the profile
/// alone tells: `Some([])` when MPTCP is disabled, `None` for NM's default (0), whose
/// effect depends on the default route and the sysctl.
pub fn from_nm(value: u32) -> Option<MptcpFlags> {
    if value == NM_MPTCP_FLAGS_NONE {
        return None;
    }
    if value & NM_MPTCP_FLAGS_DISABLED != 0 {
        return Some(MptcpFlags::EMPTY);
    }
    Some(
        MptcpFlag::ALL
            .into_iter()
            .filter(|f| value & nm_bit(*f) != 0)
            .collect(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seed_is_56() {
        let flags: MptcpFlags = [MptcpFlag::Subflow, MptcpFlag::Signal]
            .into_iter()
            .collect();
        assert_eq!(to_nm(flags), 56);
        assert_eq!(to_nm(MptcpFlags::EMPTY), 1);
    }

    #[test]
    fn round_trip_all_sets() {
        // signal, subflow, backup, fullmesh and laminar (0x20); not implicit (0x10).
        for bits in (0..64u32).filter(|b| b & 0x10 == 0) {
            let flags = MptcpFlags::from_kernel_bits(bits);
            assert_eq!(from_nm(to_nm(flags)), Some(flags), "{bits:#x}");
        }
        assert_eq!(from_nm(0), None);
    }
}
