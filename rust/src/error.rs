//! One error type for the whole library, with a flat, stable kind.
//!
//! Only the kind and the message cross into C and Python. The numeric codes are part of
//! the external contract (SPEC section 4): they are stable and never reused. Adding a kind
//! makes the exhaustive matches in `capi` and `python` fail to compile until both faces map
//! it.

use std::fmt;

/// The kind of an error. The discriminant is the code C callers and the CLI's exit status
/// see.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[repr(u32)]
pub enum ErrorKind {
    /// Bad input, a rule of the schema broken.
    InvalidArgument = 1,
    /// A missing feature: NetworkManager too old, MPTCP off in the kernel, an unsupported
    /// interface type.
    NotSupported = 2,
    /// Not allowed: netlink EPERM, NetworkManager authorization.
    PermissionDenied = 3,
    /// NetworkManager is not running or refused a call.
    NetworkManager = 4,
    /// A netlink request or a sysctl failed.
    Kernel = 5,
    /// The system did not reach the desired state in time; the change was rolled back.
    Verification = 6,
    /// An operation or a checkpoint ran out of time.
    Timeout = 7,
    /// Another checkpoint holds a device this apply needs.
    Busy = 8,
    /// An internal error, including a panic caught at a boundary.
    Bug = 9,
}

impl ErrorKind {
    /// Every kind, in code order.
    pub const ALL: [ErrorKind; 9] = [
        ErrorKind::InvalidArgument,
        ErrorKind::NotSupported,
        ErrorKind::PermissionDenied,
        ErrorKind::NetworkManager,
        ErrorKind::Kernel,
        ErrorKind::Verification,
        ErrorKind::Timeout,
        ErrorKind::Busy,
        ErrorKind::Bug,
    ];

    /// The stable numeric code (SPEC section 4).
    pub fn code(self) -> u32 {
        self as u32
    }

    /// The stable name, as C's `err_kind` and Python's `.kind` carry it.
    pub fn name(self) -> &'static str {
        match self {
            ErrorKind::InvalidArgument => "InvalidArgument",
            ErrorKind::NotSupported => "NotSupported",
            ErrorKind::PermissionDenied => "PermissionDenied",
            ErrorKind::NetworkManager => "NetworkManager",
            ErrorKind::Kernel => "Kernel",
            ErrorKind::Verification => "Verification",
            ErrorKind::Timeout => "Timeout",
            ErrorKind::Busy => "Busy",
            ErrorKind::Bug => "Bug",
        }
    }
}

impl fmt::Display for ErrorKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// What became of a failed apply's writes, when it had made some: every one was undone,
/// or the undoing failed too (the message says what did not come back).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Rollback {
    RolledBack,
    Failed,
}

impl Rollback {
    /// The stable name the faces report (Python's `error.rollback`, the Ansible module).
    pub fn name(self) -> &'static str {
        match self {
            Rollback::RolledBack => "rolled-back",
            Rollback::Failed => "rollback-failed",
        }
    }
}

/// An error of this library: a kind and a message that tells the user what to fix.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{kind}: {msg}")]
pub struct Error {
    kind: ErrorKind,
    msg: String,
    rollback: Option<Rollback>,
}

impl Error {
    pub fn new(kind: ErrorKind, msg: impl Into<String>) -> Self {
        Self {
            kind,
            msg: msg.into(),
            rollback: None,
        }
    }

    /// The error of an apply that had written and then rolled back (or failed to).
    pub fn with_rollback(mut self, rollback: Rollback) -> Self {
        self.rollback = Some(rollback);
        self
    }

    /// `None` when no rollback ran: the apply failed before its first write (or the
    /// error is not an apply's).
    pub fn rollback(&self) -> Option<Rollback> {
        self.rollback
    }

    pub fn invalid(msg: impl Into<String>) -> Self {
        Self::new(ErrorKind::InvalidArgument, msg)
    }

    pub fn bug(msg: impl Into<String>) -> Self {
        Self::new(ErrorKind::Bug, msg)
    }

    pub fn kind(&self) -> ErrorKind {
        self.kind
    }

    /// The message alone, without the kind.
    pub fn msg(&self) -> &str {
        &self.msg
    }
}

pub type Result<T> = std::result::Result<T, Error>;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_are_the_contract() {
        let codes: Vec<(u32, &str)> = ErrorKind::ALL
            .iter()
            .map(|k| (k.code(), k.name()))
            .collect();
        assert_eq!(
            codes,
            vec![
                (1, "InvalidArgument"),
                (2, "NotSupported"),
                (3, "PermissionDenied"),
                (4, "NetworkManager"),
                (5, "Kernel"),
                (6, "Verification"),
                (7, "Timeout"),
                (8, "Busy"),
                (9, "Bug"),
            ]
        );
    }

    #[test]
    fn display_has_kind_and_message() {
        let e = Error::invalid("interfaces[0].name: empty");
        assert_eq!(e.to_string(), "InvalidArgument: interfaces[0].name: empty");
        assert_eq!(e.msg(), "interfaces[0].name: empty");
    }
}
