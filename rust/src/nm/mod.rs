//! NetworkManager: settings mapping (and, in later layers, D-Bus proxies and checkpoints).

pub mod keyfile;
pub mod mptcp;
