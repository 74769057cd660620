//! NetworkManager: settings mapping (and, in later layers, D-Bus proxies and checkpoints).

pub mod dbus;
pub mod keyfile;
pub mod mptcp;
pub mod query;
