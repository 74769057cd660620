//! Netlink failures, and how they become the crate's [`Error`].
//!
//! A socket-level failure knows nothing of what it was for; the caller names the
//! operation (`"reading MPTCP endpoints"`) when it maps the failure, so the message tells
//! the user what could not be done and why.

use std::fmt;
use std::io;

use netlink_packet_core::{NlasIterator, NLM_F_ACK_TLVS, NLM_F_CAPPED};

use crate::{Error, ErrorKind};

/// `NLMSGERR_ATTR_MSG`: the extended ack's human readable message.
const NLMSGERR_ATTR_MSG: u16 = 1;
/// Length of a `struct nlmsghdr`.
const NLMSG_HDRLEN: usize = 16;

/// What went wrong on a netlink socket, before it is given the context of the operation.
#[derive(Debug)]
pub(crate) enum NlError {
    /// The kernel answered with an error: a positive errno and the extended ack message
    /// (`NETLINK_EXT_ACK`), if the kernel gave one.
    Kernel { errno: i32, ext_ack: Option<String> },
    /// The socket could not be opened, or closed before the kernel answered.
    Io(io::Error),
    /// The kernel's answer was not what the protocol promises.
    Protocol(String),
}

impl NlError {
    pub(crate) fn kernel(errno: i32, ext_ack: Option<String>) -> Self {
        NlError::Kernel { errno, ext_ack }
    }

    /// The errno of a kernel answer.
    pub(crate) fn errno(&self) -> Option<i32> {
        match self {
            NlError::Kernel { errno, .. } => Some(*errno),
            NlError::Io(e) => e.raw_os_error(),
            NlError::Protocol(_) => None,
        }
    }

    fn is_permission(&self) -> bool {
        self.errno().is_some_and(|e| {
            io::Error::from_raw_os_error(e).kind() == io::ErrorKind::PermissionDenied
        })
    }

    /// Maps the failure of `what` (a gerund phrase: "reading MPTCP endpoints"):
    /// EPERM/EACCES become [`ErrorKind::PermissionDenied`] naming CAP_NET_ADMIN,
    /// everything else [`ErrorKind::Kernel`] with the errno's text.
    pub(crate) fn context(self, what: &str) -> Error {
        if self.is_permission() {
            return Error::new(
                ErrorKind::PermissionDenied,
                format!("{what} needs CAP_NET_ADMIN (the kernel said: {self})"),
            );
        }
        Error::new(ErrorKind::Kernel, format!("{what} failed: {self}"))
    }
}

impl fmt::Display for NlError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            NlError::Kernel { errno, ext_ack } => {
                let text = io::Error::from_raw_os_error(*errno);
                match ext_ack {
                    Some(msg) => write!(f, "{text}: {msg}"),
                    None => write!(f, "{text}"),
                }
            }
            NlError::Io(e) => write!(f, "netlink socket: {e}"),
            NlError::Protocol(msg) => write!(f, "unexpected netlink answer: {msg}"),
        }
    }
}

/// The `NLMSGERR_ATTR_MSG` of an `NLMSG_ERROR` payload (the bytes after the errno), when
/// the message carries extended ack attributes (`NLM_F_ACK_TLVS` in `flags`).
pub(crate) fn error_ext_ack(flags: u16, payload: &[u8]) -> Option<String> {
    if flags & NLM_F_ACK_TLVS == 0 {
        return None;
    }
    // The attributes follow the echoed request: its header only when capped
    // (NETLINK_CAP_ACK), else the whole request, whose length is its first u32.
    let echoed = if flags & NLM_F_CAPPED != 0 {
        NLMSG_HDRLEN
    } else {
        let len = u32::from_ne_bytes(payload.get(..4)?.try_into().ok()?) as usize;
        len.checked_add(3)? & !3
    };
    ext_ack_msg(payload.get(echoed..)?)
}

/// The `NLMSGERR_ATTR_MSG` of a list of extended ack attributes (as `NLMSG_DONE` carries
/// them).
pub(crate) fn ext_ack_msg(attrs: &[u8]) -> Option<String> {
    NlasIterator::new(attrs)
        .filter_map(|nla| nla.ok())
        .find(|nla| nla.kind() == NLMSGERR_ATTR_MSG)
        .map(|nla| {
            let value = nla.value();
            let end = value.iter().position(|&b| b == 0).unwrap_or(value.len());
            String::from_utf8_lossy(&value[..end]).into_owned()
        })
        .filter(|msg| !msg.is_empty())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn eperm_names_the_capability() {
        let e = NlError::kernel(1, None).context("reading MPTCP endpoints");
        assert_eq!(e.kind(), ErrorKind::PermissionDenied);
        assert!(
            e.msg()
                .starts_with("reading MPTCP endpoints needs CAP_NET_ADMIN"),
            "{e}"
        );
        let e = NlError::kernel(13, None).context("x");
        assert_eq!(e.kind(), ErrorKind::PermissionDenied);
    }

    #[test]
    fn other_errno_is_kernel_with_text_and_ext_ack() {
        let e = NlError::kernel(34, Some("too many addresses or duplicate one".into()))
            .context("adding MPTCP endpoint 192.0.2.9");
        assert_eq!(e.kind(), ErrorKind::Kernel);
        assert_eq!(
            e.msg(),
            "adding MPTCP endpoint 192.0.2.9 failed: Numerical result out of range \
             (os error 34): too many addresses or duplicate one"
        );
    }

    #[test]
    fn ext_ack_after_a_capped_or_full_echo() {
        // NLMSGERR_ATTR_MSG "bad\0", padded to 4 bytes: len 8, type 1.
        let attr = [8u8, 0, 1, 0, b'b', b'a', b'd', 0];
        let mut capped = vec![0u8; NLMSG_HDRLEN];
        capped.extend_from_slice(&attr);
        assert_eq!(
            error_ext_ack(NLM_F_ACK_TLVS | NLM_F_CAPPED, &capped).as_deref(),
            Some("bad")
        );
        // A 22-byte echoed request, padded to 24.
        let mut full = vec![0u8; 24];
        full[..4].copy_from_slice(&22u32.to_ne_bytes());
        full.extend_from_slice(&attr);
        assert_eq!(error_ext_ack(NLM_F_ACK_TLVS, &full).as_deref(), Some("bad"));
        assert_eq!(error_ext_ack(0, &full), None);
        assert_eq!(error_ext_ack(NLM_F_ACK_TLVS, &[1, 2]), None);
    }
}
