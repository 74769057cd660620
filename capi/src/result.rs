//! The result codes of the C ABI (SPEC section 4), one per [`ErrorKind`] plus success.

use mptcpstate::ErrorKind;

/// The result of a call: `MPTCPSTATE_RESULT_OK` (0) or the kind of the error. The
/// numbers are stable and never reused; they are also the exit status of
/// `mptcpstatectl`. The kind's name (`"InvalidArgument"`, ...) is returned in `err_kind`.
#[allow(non_camel_case_types)]
#[repr(C)]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum mptcpstate_result {
    /// Success.
    Ok = 0,
    /// Bad input, a rule of the schema broken, a NULL where a value is required.
    InvalidArgument = 1,
    /// A missing feature: NetworkManager too old, MPTCP off in the kernel, an unsupported
    /// interface type.
    NotSupported = 2,
    /// Not allowed: netlink EPERM, NetworkManager authorization.
    PermissionDenied = 3,
    /// NetworkManager is not running or refused a call (its error name is in the
    /// message).
    NetworkManager = 4,
    /// A netlink request or a sysctl failed.
    Kernel = 5,
    /// The system did not reach the desired state in time; the change was rolled back.
    Verification = 6,
    /// An operation or a checkpoint ran out of time.
    Timeout = 7,
    /// Another checkpoint holds a device this call needs.
    Busy = 8,
    /// An internal error, including a panic caught at the boundary.
    Bug = 9,
}

impl From<ErrorKind> for mptcpstate_result {
    /// One exhaustive match, no wildcard: a new kind in the core fails to compile here
    /// until it has a code in C.
    fn from(kind: ErrorKind) -> Self {
        match kind {
            ErrorKind::InvalidArgument => Self::InvalidArgument,
            ErrorKind::NotSupported => Self::NotSupported,
            ErrorKind::PermissionDenied => Self::PermissionDenied,
            ErrorKind::NetworkManager => Self::NetworkManager,
            ErrorKind::Kernel => Self::Kernel,
            ErrorKind::Verification => Self::Verification,
            ErrorKind::Timeout => Self::Timeout,
            ErrorKind::Busy => Self::Busy,
            ErrorKind::Bug => Self::Bug,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_kind_keeps_its_code() {
        for kind in ErrorKind::ALL {
            assert_eq!(mptcpstate_result::from(kind) as u32, kind.code(), "{kind}");
        }
        assert_eq!(mptcpstate_result::Ok as u32, 0);
    }

    #[test]
    fn same_size_as_a_c_int() {
        assert_eq!(
            std::mem::size_of::<mptcpstate_result>(),
            std::mem::size_of::<std::os::raw::c_int>()
        );
    }
}
