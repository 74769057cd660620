//! TEMPORARY: the Writer API the apply is written against, until the real one lands
//! (helper-netlink). Deleted at merge.

use std::net::IpAddr;

use super::{Address, Endpoint, Limits};
use crate::{Error, Result};

pub struct Writer(());

impl Writer {
    pub fn open() -> Result<Writer> {
        Ok(Writer(()))
    }
    pub async fn add_address(&mut self, _addr: &Address) -> Result<()> {
        Err(Error::bug("add_address: not yet"))
    }
    pub async fn delete_address(&mut self, _i: u32, _a: IpAddr, _p: u8) -> Result<()> {
        Err(Error::bug("delete_address: not yet"))
    }
    pub async fn set_link_up(&mut self, _i: u32, _up: bool) -> Result<()> {
        Err(Error::bug("set_link_up: not yet"))
    }
    pub async fn add_endpoint(&mut self, e: &Endpoint) -> Result<()> {
        super::add_endpoint(e).await
    }
    pub async fn delete_endpoint(&mut self, id: u8) -> Result<()> {
        super::delete_endpoint(id).await
    }
    pub async fn set_endpoint_flags(&mut self, _e: &Endpoint) -> Result<()> {
        Err(Error::bug("set_endpoint_flags: not yet"))
    }
    pub async fn set_limits(&mut self, l: Limits) -> Result<()> {
        super::set_limits(l).await
    }
}

pub async fn read_kernel_for(_names: &[String], log: &crate::Log) -> Result<super::KernelState> {
    super::read_kernel(log).await
}
