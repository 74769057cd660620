//! Prints what `mptcpstate::netlink` reads from the kernel, as JSON, and drives its write
//! primitives; used by tests/kernel (run inside a test namespace, never the root one).
//!
//! ```text
//! kernel_dump                                 # KernelState as JSON
//! kernel_dump --repeat N                      # N reads; timings (µs) as JSON on stderr
//! kernel_dump --only IFNAME... [--repeat N]   # read_kernel_for those names
//! kernel_dump --netns PATH [--netns PATH]... [--repeat N]
//!                                             # one thread per namespace (setns), all at
//!                                             # once; prints each thread's last read
//! kernel_dump endpoints | limits              # just that read
//! kernel_dump endpoint-add ADDR [id N] [port P] [dev NAME] [signal] [subflow] [backup] [fullmesh]
//! kernel_dump endpoint-del ID | endpoint-flush
//! kernel_dump limits-set SUBFLOWS ADD_ADDR_ACCEPTED
//! kernel_dump sysctl 0|1
//! ```
//! Through a `netlink::Writer` (one per run):
//! ```text
//! kernel_dump addr-add IFNAME ADDR/PREFIX [nodad] [noprefixroute] [mngtmpaddr] [home]
//! kernel_dump addr-del IFNAME ADDR/PREFIX
//! kernel_dump link-set IFNAME up|down
//! kernel_dump endpoint-change ID ADDR [backup|nobackup] [fullmesh|nofullmesh]
//!             [signal] [subflow] [laminar]   # the flags sent are exactly the words given
//! kernel_dump batch [--read]                  # the commands above (and endpoint-add,
//!                                             # endpoint-del, limits-set), one a line on
//!                                             # stdin, on one Writer; names resolved by
//!                                             # one read_kernel_for first (--read: that
//!                                             # read even without names); timings (µs)
//!                                             # as JSON on stderr
//! ```
//! Errors: `{"kind": ..., "message": ...}` on stderr, exit status = the error code.

use std::collections::HashMap;
use std::io::Read;
use std::net::IpAddr;
use std::time::Instant;

use mptcpstate::netlink::{
    self, Address, AddressFlags, AddressScope, Endpoint, EndpointFlags, KernelState, Limits, Writer,
};
use mptcpstate::{Error, Log, Runtime};
use serde_json::{json, Value};

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    match run(&args) {
        Ok(out) => {
            if let Some(out) = out {
                println!("{}", serde_json::to_string_pretty(&out).unwrap());
            }
        }
        Err(e) => {
            eprintln!("{}", json!({"kind": e.kind().name(), "message": e.msg()}));
            std::process::exit(e.kind().code() as i32);
        }
    }
}

fn usage(msg: &str) -> Error {
    Error::invalid(format!("usage: {msg}"))
}

fn run(args: &[String]) -> Result<Option<Value>, Error> {
    let rt = Runtime::global()?;
    let sub = args.first().map(String::as_str).unwrap_or("");
    let rest = args.get(1..).unwrap_or_default();
    match sub {
        "" | "--repeat" | "--netns" | "--only" => dump(args),
        "connections" => {
            let (conns, subflows) = rt.block_on(netlink::read_connections())??;
            let conns: Vec<Value> = conns
                .iter()
                .map(|c| {
                    json!({"local": c.local.to_string(), "remote": c.remote.to_string(),
                           "state": c.state, "info": c.info.map(|i| json!({
                               "subflows": i.subflows, "token": i.token, "flags": i.flags,
                               "add_addr_accepted": i.add_addr_accepted,
                               "add_addr_signal": i.add_addr_signal,
                               "bytes_sent": i.bytes_sent, "bytes_received": i.bytes_received}))})
                })
                .collect();
            let subflows: Vec<Value> = subflows
                .iter()
                .map(|s| {
                    json!({"local": s.local.to_string(), "remote": s.remote.to_string(),
                           "state": s.state, "ifindex": s.ifindex, "token": s.token,
                           "local_id": s.local_id, "remote_id": s.remote_id, "flags": s.flags})
                })
                .collect();
            let counters = netlink::mptcp_counters()?;
            Ok(Some(
                json!({"connections": conns, "subflows": subflows, "counters": counters}),
            ))
        }
        "endpoints" => {
            let eps = rt.block_on(netlink::dump_endpoints())??;
            Ok(Some(eps.iter().map(endpoint_json).collect()))
        }
        "limits" => Ok(Some(limits_json(rt.block_on(netlink::get_limits())??))),
        "endpoint-add" => {
            let ep = parse_endpoint_add(rest, &mut |name| ifindex_of(name))?;
            rt.block_on(netlink::add_endpoint(&ep))??;
            Ok(None)
        }
        "addr-add" | "addr-del" | "link-set" | "endpoint-change" => {
            let write = parse_write(sub, rest, &mut |name| ifindex_of(name))?;
            let mut writer = Writer::open()?;
            rt.block_on(write.run(&mut writer))??;
            Ok(None)
        }
        "batch" => batch(rest),
        "endpoint-del" => {
            let id = rest
                .first()
                .and_then(|a| a.parse().ok())
                .ok_or_else(|| usage("endpoint-del ID"))?;
            rt.block_on(netlink::delete_endpoint(id))??;
            Ok(None)
        }
        "endpoint-flush" => {
            rt.block_on(netlink::flush_endpoints())??;
            Ok(None)
        }
        "limits-set" => {
            rt.block_on(netlink::set_limits(parse_limits(rest)?))??;
            Ok(None)
        }
        "sysctl" => {
            let on = match rest.first().map(String::as_str) {
                Some("1") => true,
                Some("0") => false,
                _ => return Err(usage("sysctl 0|1")),
            };
            netlink::set_mptcp_enabled(on)?;
            Ok(None)
        }
        other => Err(usage(&format!("unknown command {other}"))),
    }
}

/// `[--netns PATH]... [--only IFNAME...] [--repeat N]`
fn dump(args: &[String]) -> Result<Option<Value>, Error> {
    const USAGE: &str = "--repeat N | --netns PATH | --only IFNAME...";
    let mut repeat = 1usize;
    let mut netns = Vec::new();
    let mut only: Option<Vec<String>> = None;
    let mut it = args.iter().peekable();
    while let Some(a) = it.next() {
        if a == "--only" {
            let names = only.get_or_insert_with(Vec::new);
            while let Some(name) = it.next_if(|n| !n.starts_with("--")) {
                names.push(name.clone());
            }
            continue;
        }
        let value = it.next().ok_or_else(|| usage(USAGE))?;
        match a.as_str() {
            "--repeat" => repeat = value.parse().map_err(|_| usage("--repeat N"))?,
            "--netns" => netns.push(value.clone()),
            _ => return Err(usage(USAGE)),
        }
    }
    if netns.is_empty() {
        let log = Log::new();
        let (state, timings) = read_n(repeat, only.as_deref(), &log)?;
        if repeat > 1 {
            let mut summary = timings_json(&timings);
            let warnings: Vec<String> = log
                .records()
                .into_iter()
                .filter(|r| r.level <= mptcpstate::Level::Warn)
                .map(|r| r.message)
                .collect();
            summary["warnings"] = json!(warnings);
            eprintln!("{summary}");
        }
        return Ok(Some(state_json(&state)));
    }
    if only.is_some() {
        return Err(usage("--only does not go with --netns"));
    }
    // One thread per namespace, all reading at once.
    let threads: Vec<_> = netns
        .into_iter()
        .map(|path| {
            std::thread::spawn(move || -> Result<Value, Error> {
                enter_netns(&path)?;
                let log = Log::new();
                let rt = Runtime::global()?;
                let first = rt.block_on(netlink::read_kernel(&log))??;
                let mut consistent = true;
                for _ in 1..repeat {
                    let again = rt.block_on(netlink::read_kernel(&log))??;
                    consistent &= names(&again) == names(&first);
                }
                Ok(json!({"netns": path, "consistent": consistent, "state": state_json(&first)}))
            })
        })
        .collect();
    let mut out = Vec::new();
    for t in threads {
        out.push(
            t.join()
                .map_err(|_| Error::bug("reader thread panicked"))??,
        );
    }
    Ok(Some(Value::Array(out)))
}

fn names(state: &KernelState) -> Vec<&str> {
    state.links.iter().map(|l| l.name.as_str()).collect()
}

fn read_n(
    repeat: usize,
    only: Option<&[String]>,
    log: &Log,
) -> Result<(KernelState, Vec<u128>), Error> {
    let rt = Runtime::global()?;
    let mut timings = Vec::with_capacity(repeat);
    let mut state = None;
    for _ in 0..repeat.max(1) {
        let t = Instant::now();
        state = Some(match only {
            Some(names) => rt.block_on(netlink::read_kernel_for(names, log))??,
            None => rt.block_on(netlink::read_kernel(log))??,
        });
        timings.push(t.elapsed().as_micros());
    }
    Ok((state.unwrap(), timings))
}

/// The ifindex of the link named `name`, by a scoped read.
fn ifindex_of(name: &str) -> Result<u32, Error> {
    let log = Log::new();
    let kernel =
        Runtime::global()?.block_on(netlink::read_kernel_for(&[name.to_string()], &log))??;
    kernel
        .links
        .first()
        .map(|l| l.index)
        .ok_or_else(|| usage(&format!("no link named {name}")))
}

/// One write of the Writer.
enum Write {
    AddrAdd(Address),
    AddrDel(u32, IpAddr, u8),
    LinkSet(u32, bool),
    EndpointAdd(Endpoint),
    EndpointDel(u8),
    EndpointChange(Endpoint),
    Limits(Limits),
}

impl Write {
    async fn run(self, w: &mut Writer) -> Result<(), Error> {
        match self {
            Write::AddrAdd(a) => w.add_address(&a).await,
            Write::AddrDel(i, a, p) => w.delete_address(i, a, p).await,
            Write::LinkSet(i, up) => w.set_link_up(i, up).await,
            Write::EndpointAdd(e) => w.add_endpoint(&e).await,
            Write::EndpointDel(id) => w.delete_endpoint(id).await,
            Write::EndpointChange(e) => w.set_endpoint_flags(&e).await,
            Write::Limits(l) => w.set_limits(l).await,
        }
    }
}

/// `ADDR/PREFIX`.
fn parse_prefix(arg: Option<&String>) -> Result<(IpAddr, u8), Error> {
    let bad = || usage("ADDR/PREFIX");
    let (addr, prefix) = arg.and_then(|a| a.split_once('/')).ok_or_else(bad)?;
    Ok((
        addr.parse().map_err(|_| bad())?,
        prefix.parse().map_err(|_| bad())?,
    ))
}

/// The Writer's commands (see the module docs); `resolve` maps a link name to its
/// ifindex.
fn parse_write(
    sub: &str,
    rest: &[String],
    resolve: &mut dyn FnMut(&str) -> Result<u32, Error>,
) -> Result<Write, Error> {
    let name = || {
        rest.first()
            .ok_or_else(|| usage(&format!("{sub} IFNAME ...")))
    };
    match sub {
        "addr-add" => {
            let ifindex = resolve(name()?)?;
            let (address, prefix_len) = parse_prefix(rest.get(1))?;
            let mut flags = 0;
            for w in rest.get(2..).unwrap_or_default() {
                flags |= match w.as_str() {
                    "nodad" => AddressFlags::NODAD,
                    "noprefixroute" => AddressFlags::NOPREFIXROUTE,
                    "mngtmpaddr" => AddressFlags::MANAGETEMPADDR,
                    "home" => AddressFlags::HOMEADDRESS,
                    other => return Err(usage(&format!("unknown address flag {other}"))),
                };
            }
            Ok(Write::AddrAdd(Address {
                ifindex,
                address,
                prefix_len,
                flags: AddressFlags(flags),
                scope: AddressScope::Universe,
                valid_lft: None,
                preferred_lft: None,
            }))
        }
        "addr-del" => {
            let ifindex = resolve(name()?)?;
            let (address, prefix_len) = parse_prefix(rest.get(1))?;
            Ok(Write::AddrDel(ifindex, address, prefix_len))
        }
        "link-set" => {
            let ifindex = resolve(name()?)?;
            let up = match rest.get(1).map(String::as_str) {
                Some("up") => true,
                Some("down") => false,
                _ => return Err(usage("link-set IFNAME up|down")),
            };
            Ok(Write::LinkSet(ifindex, up))
        }
        "endpoint-change" => {
            let bad = || usage("endpoint-change ID ADDR [backup|nobackup] [fullmesh|nofullmesh]");
            let id = rest.first().and_then(|a| a.parse().ok()).ok_or_else(bad)?;
            let address = rest.get(1).and_then(|a| a.parse().ok()).ok_or_else(bad)?;
            let mut flags = 0;
            for w in rest.get(2..).unwrap_or_default() {
                flags |= match w.as_str() {
                    "backup" => EndpointFlags::BACKUP,
                    "fullmesh" => EndpointFlags::FULLMESH,
                    "nobackup" | "nofullmesh" => 0,
                    // Not changeable in place: sent to see what the kernel does with them.
                    "signal" => EndpointFlags::SIGNAL,
                    "subflow" => EndpointFlags::SUBFLOW,
                    "laminar" => EndpointFlags::LAMINAR,
                    other => return Err(usage(&format!("unknown endpoint flag {other}"))),
                };
            }
            Ok(Write::EndpointChange(Endpoint {
                id,
                address,
                port: None,
                flags: EndpointFlags(flags),
                ifindex: None,
            }))
        }
        "endpoint-add" => Ok(Write::EndpointAdd(parse_endpoint_add(rest, resolve)?)),
        "endpoint-del" => {
            let id = rest
                .first()
                .and_then(|a| a.parse().ok())
                .ok_or_else(|| usage("endpoint-del ID"))?;
            Ok(Write::EndpointDel(id))
        }
        "limits-set" => Ok(Write::Limits(parse_limits(rest)?)),
        other => Err(usage(&format!("unknown write {other}"))),
    }
}

/// `ADDR [id N] [port P] [dev NAME] [signal] [subflow] [backup] [fullmesh] [laminar]`
fn parse_endpoint_add(
    rest: &[String],
    resolve: &mut dyn FnMut(&str) -> Result<u32, Error>,
) -> Result<Endpoint, Error> {
    let address = rest
        .first()
        .and_then(|a| a.parse().ok())
        .ok_or_else(|| usage("endpoint-add ADDR ..."))?;
    let mut ep = Endpoint {
        id: 0,
        address,
        port: None,
        flags: EndpointFlags(0),
        ifindex: None,
    };
    let mut words = rest[1..].iter().map(String::as_str);
    while let Some(w) = words.next() {
        let mut value = || {
            words
                .next()
                .ok_or_else(|| usage(&format!("a value after {w}")))
        };
        match w {
            "id" => ep.id = value()?.parse().map_err(|_| usage("id 1..255"))?,
            "port" => ep.port = Some(value()?.parse().map_err(|_| usage("port"))?),
            "dev" => ep.ifindex = Some(resolve(value()?)?),
            "signal" => ep.flags.0 |= EndpointFlags::SIGNAL,
            "subflow" => ep.flags.0 |= EndpointFlags::SUBFLOW,
            "backup" => ep.flags.0 |= EndpointFlags::BACKUP,
            "fullmesh" => ep.flags.0 |= EndpointFlags::FULLMESH,
            "laminar" => ep.flags.0 |= EndpointFlags::LAMINAR,
            other => return Err(usage(&format!("unknown word {other}"))),
        }
    }
    Ok(ep)
}

/// `SUBFLOWS ADD_ADDR_ACCEPTED`
fn parse_limits(rest: &[String]) -> Result<Limits, Error> {
    let n = |i: usize| {
        rest.get(i)
            .and_then(|a| a.parse().ok())
            .ok_or_else(|| usage("limits-set SUBFLOWS ADD_ADDR_ACCEPTED"))
    };
    Ok(Limits {
        subflows: n(0)?,
        add_addr_accepted: n(1)?,
    })
}

/// `batch [--read]`: the writes on stdin, one a line, on one Writer, after one scoped
/// read that resolves every link name they use; what a kernel-only apply costs.
fn batch(args: &[String]) -> Result<Option<Value>, Error> {
    let always_read = match args {
        [] => false,
        [a] if a == "--read" => true,
        _ => return Err(usage("batch [--read]")),
    };
    let mut input = String::new();
    std::io::stdin()
        .read_to_string(&mut input)
        .map_err(|e| Error::invalid(format!("stdin: {e}")))?;
    let lines: Vec<Vec<String>> = input
        .lines()
        .map(|l| l.split_whitespace().map(str::to_string).collect::<Vec<_>>())
        .filter(|w| !w.is_empty())
        .collect();
    // The link names the writes use: the first word after the command, or after `dev`.
    let mut names: Vec<String> = Vec::new();
    for words in &lines {
        match words[0].as_str() {
            "addr-add" | "addr-del" | "link-set" => names.extend(words.get(1).cloned()),
            "endpoint-add" => names.extend(
                words
                    .iter()
                    .position(|w| w == "dev")
                    .and_then(|i| words.get(i + 1).cloned()),
            ),
            _ => {}
        }
    }
    let rt = Runtime::global()?;
    let log = Log::new();
    let start = Instant::now();
    let mut index: HashMap<String, u32> = HashMap::new();
    if always_read || !names.is_empty() {
        let kernel = rt.block_on(netlink::read_kernel_for(&names, &log))??;
        index.extend(kernel.links.into_iter().map(|l| (l.name, l.index)));
    }
    let read_us = start.elapsed().as_micros();
    let mut resolve = |name: &str| {
        index
            .get(name)
            .copied()
            .ok_or_else(|| usage(&format!("no link named {name}")))
    };
    let writes = lines
        .iter()
        .map(|w| parse_write(&w[0], &w[1..], &mut resolve))
        .collect::<Result<Vec<_>, Error>>()?;
    let count = writes.len();
    let mut writer = Writer::open()?;
    rt.block_on(async {
        for write in writes {
            write.run(&mut writer).await?;
        }
        Ok::<(), Error>(())
    })??;
    let total_us = start.elapsed().as_micros();
    eprintln!(
        "{}",
        json!({"writes": count, "read_us": read_us, "writes_us": total_us - read_us,
               "total_us": total_us})
    );
    Ok(None)
}

fn timings_json(timings: &[u128]) -> Value {
    let mut sorted = timings.to_vec();
    sorted.sort_unstable();
    json!({
        "reads": sorted.len(),
        "first_us": timings[0],
        "min_us": sorted[0],
        "median_us": sorted[sorted.len() / 2],
        "max_us": sorted[sorted.len() - 1],
    })
}

fn enter_netns(path: &str) -> Result<(), Error> {
    use std::os::fd::AsRawFd;
    let f = std::fs::File::open(path).map_err(|e| Error::invalid(format!("{path}: {e}")))?;
    // SAFETY: a valid fd of a namespace file; affects only the calling thread.
    if unsafe { libc::setns(f.as_raw_fd(), libc::CLONE_NEWNET) } != 0 {
        return Err(Error::invalid(format!(
            "setns {path}: {}",
            std::io::Error::last_os_error()
        )));
    }
    Ok(())
}

fn state_json(state: &KernelState) -> Value {
    json!({
        "links": state.links.iter().map(|l| json!({
            "index": l.index,
            "name": l.name,
            "type": l.iface_type.name(),
            "up": l.is_up(),
            "carrier": l.has_carrier(),
            "oper_state": format!("{:?}", l.oper_state),
            "flags": l.flags,
        })).collect::<Vec<_>>(),
        "addresses": state.addresses.iter().map(|a| json!({
            "ifindex": a.ifindex,
            "address": a.address.to_string(),
            "prefix_len": a.prefix_len,
            "flags": a.flags.bits(),
            "permanent": a.is_permanent(),
            "temporary": a.is_temporary(),
            "deprecated": a.is_deprecated(),
            "tentative": a.is_tentative(),
            "scope": format!("{:?}", a.scope),
            "valid_lft": a.valid_lft,
            "preferred_lft": a.preferred_lft,
        })).collect::<Vec<_>>(),
        "mptcp": state.mptcp_enabled.map(|enabled| json!({
            "enabled": enabled,
            "limits": state.limits.map(limits_json),
            "endpoints": state.endpoints.iter().map(endpoint_json).collect::<Vec<_>>(),
            "sysctls": {
                "path_manager": state.sysctls.path_manager,
                "scheduler": state.sysctls.scheduler,
                "available_schedulers": state.sysctls.available_schedulers,
            },
        })),
    })
}

fn limits_json(l: Limits) -> Value {
    json!({"subflows": l.subflows, "add_addr_accepted": l.add_addr_accepted})
}

fn endpoint_json(e: &Endpoint) -> Value {
    let names: Vec<&str> = [
        (EndpointFlags::SIGNAL, "signal"),
        (EndpointFlags::SUBFLOW, "subflow"),
        (EndpointFlags::BACKUP, "backup"),
        (EndpointFlags::FULLMESH, "fullmesh"),
        (EndpointFlags::IMPLICIT, "implicit"),
        (EndpointFlags::LAMINAR, "laminar"),
    ]
    .iter()
    .filter(|(bit, _)| e.flags.contains(*bit))
    .map(|(_, n)| *n)
    .collect();
    json!({
        "id": e.id,
        "address": e.address.to_string(),
        "port": e.port,
        "flags": e.flags.bits(),
        "flag_names": names,
        "ifindex": e.ifindex,
    })
}
