//! C ABI of mptcpstate (being written).
