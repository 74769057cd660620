//! Prints what `mptcpstate::netlink` reads from the kernel, as JSON, and drives its write
//! primitives; used by tests/kernel (run inside a test namespace, never the root one).
//!
//! ```text
//! kernel_dump                                 # KernelState as JSON
//! kernel_dump --repeat N                      # N reads; timings (µs) as JSON on stderr
//! kernel_dump --netns PATH [--netns PATH]... [--repeat N]
//!                                             # one thread per namespace (setns), all at
//!                                             # once; prints each thread's last read
//! kernel_dump endpoints | limits              # just that read
//! kernel_dump endpoint-add ADDR [id N] [port P] [dev NAME] [signal] [subflow] [backup] [fullmesh]
//! kernel_dump endpoint-del ID | endpoint-flush
//! kernel_dump limits-set SUBFLOWS ADD_ADDR_ACCEPTED
//! kernel_dump sysctl 0|1
//! ```
//! Errors: `{"kind": ..., "message": ...}` on stderr, exit status = the error code.

use std::time::Instant;

use mptcpstate::netlink::{self, Endpoint, EndpointFlags, KernelState, Limits};
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
    let log = Log::new();
    let sub = args.first().map(String::as_str).unwrap_or("");
    let rest = args.get(1..).unwrap_or_default();
    match sub {
        "" | "--repeat" | "--netns" => dump(args),
        "endpoints" => {
            let eps = rt.block_on(netlink::dump_endpoints())??;
            Ok(Some(eps.iter().map(endpoint_json).collect()))
        }
        "limits" => Ok(Some(limits_json(rt.block_on(netlink::get_limits())??))),
        "endpoint-add" => {
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
                    "dev" => {
                        let name = value()?.to_string();
                        let kernel = rt.block_on(netlink::read_kernel(&log))??;
                        let link = kernel.links.iter().find(|l| l.name == name);
                        ep.ifindex = Some(link.ok_or_else(|| usage("dev: no such link"))?.index);
                    }
                    "signal" => ep.flags.0 |= EndpointFlags::SIGNAL,
                    "subflow" => ep.flags.0 |= EndpointFlags::SUBFLOW,
                    "backup" => ep.flags.0 |= EndpointFlags::BACKUP,
                    "fullmesh" => ep.flags.0 |= EndpointFlags::FULLMESH,
                    other => return Err(usage(&format!("unknown word {other}"))),
                }
            }
            rt.block_on(netlink::add_endpoint(&ep))??;
            Ok(None)
        }
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
            let n = |i: usize| {
                rest.get(i)
                    .and_then(|a| a.parse().ok())
                    .ok_or_else(|| usage("limits-set SUBFLOWS ADD_ADDR_ACCEPTED"))
            };
            let limits = Limits {
                subflows: n(0)?,
                add_addr_accepted: n(1)?,
            };
            rt.block_on(netlink::set_limits(limits))??;
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

/// `[--netns PATH]... [--repeat N]`
fn dump(args: &[String]) -> Result<Option<Value>, Error> {
    let mut repeat = 1usize;
    let mut netns = Vec::new();
    let mut it = args.iter();
    while let Some(a) = it.next() {
        let value = it
            .next()
            .ok_or_else(|| usage("--repeat N | --netns PATH"))?;
        match a.as_str() {
            "--repeat" => repeat = value.parse().map_err(|_| usage("--repeat N"))?,
            "--netns" => netns.push(value.clone()),
            _ => return Err(usage("--repeat N | --netns PATH")),
        }
    }
    if netns.is_empty() {
        let log = Log::new();
        let (state, timings) = read_n(repeat, &log)?;
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

fn read_n(repeat: usize, log: &Log) -> Result<(KernelState, Vec<u128>), Error> {
    let rt = Runtime::global()?;
    let mut timings = Vec::with_capacity(repeat);
    let mut state = None;
    for _ in 0..repeat.max(1) {
        let t = Instant::now();
        state = Some(rt.block_on(netlink::read_kernel(log))??);
        timings.push(t.elapsed().as_micros());
    }
    Ok((state.unwrap(), timings))
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
