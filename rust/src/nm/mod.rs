//! NetworkManager: the settings mapping, D-Bus proxies, reading NM's state, and the write
//! layer an apply is made of (profiles, activation and reapply, checkpoints).

pub mod activation;
pub mod checkpoint;
pub mod dbus;
pub mod deactivation;
pub mod keyfile;
pub mod model;
pub mod mptcp;
pub mod profile;
pub mod query;
pub mod settings;
