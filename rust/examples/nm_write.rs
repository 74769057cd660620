//! Drives the NetworkManager write layer (`mptcpstate::nm::{settings, profile, activation,
//! checkpoint}`) one call at a time, for tests/nm/test_nm_write.py. Run it where
//! `DBUS_SYSTEM_BUS_ADDRESS` points at a sandboxed NetworkManager (tests/harness), never
//! at the machine's own.
//!
//! ```text
//! nm_write lookup IFNAME                 # device, applied connection, profile (JSON)
//! nm_write desired FILE                  # the settings each interface would get, no write
//! nm_write add FILE [--memory]           # AddConnection2 of a new profile per interface
//! nm_write update FILE [--memory] [--block-autoconnect] [--keep-legacy]
//!                                        # Update2 of the found profile (least change);
//!                                        # --keep-legacy puts NM's deprecated keys back
//!                                        # (to show why they are dropped)
//! nm_write roundtrip IFNAME              # Update2 with GetSettings as it came, unchanged
//! nm_write reapply IFNAME [--watch-ms N] [--version-id N]
//!                                        # Reapply with the applied version id (or N);
//!                                        # --watch-ms lists the device's StateChanged
//!                                        # signals during the call and N ms after it
//! nm_write watch IFNAME MS              # the device's StateChanged signals for MS ms
//!                                        # ("watching" on stderr once subscribed)
//! nm_write activate IFNAME [--timeout S] [--uuid UUID]
//!                                        # activate the found profile (or that one), wait
//!                                        # for ACTIVATED
//! nm_write activate-many [--timeout S] IFNAME[=PROFILE_IFNAME]...
//!                                        # one batch; `eth2=eth1`: eth1's profile on eth2
//! nm_write deactivate IFNAME | disconnect IFNAME | delete IFNAME
//! nm_write storage IFNAME                # the profile's keyfile and Unsaved flag
//! nm_write list IFNAME                   # every profile bound to IFNAME (full listing)
//! nm_write checkpoint-create [--timeout S] IFNAME...
//! nm_write checkpoint-destroy PATH | checkpoint-rollback PATH | checkpoint-adjust PATH S
//! nm_write checkpoints
//! ```
//! Output: JSON on stdout. Errors: `{"kind": ..., "message": ...}` on stderr, exit
//! status = the error code.

use std::time::{Duration, Instant};

use futures_util::StreamExt;
use mptcpstate::nm::dbus::{bounded, device_control_proxy, Settings};
use mptcpstate::nm::profile::{self, InterfaceProfile, Storage};
use mptcpstate::nm::{activation, checkpoint, deactivation, query, settings};
use mptcpstate::{Error, ErrorKind, Log, Runtime};
use serde_json::{json, Value};
use zbus::zvariant::{ObjectPath, OwnedObjectPath};

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let result = Runtime::global().and_then(|rt| rt.block_on(run(&args)).and_then(|r| r));
    match result {
        Ok(out) => println!("{}", serde_json::to_string_pretty(&out).unwrap_or_default()),
        Err(e) => {
            eprintln!("{}", json!({"kind": e.kind().name(), "message": e.msg()}));
            std::process::exit(e.kind().code() as i32);
        }
    }
}

fn usage(msg: &str) -> Error {
    Error::invalid(format!("usage: nm_write {msg}"))
}

/// `--name VALUE` taken out of `args`.
fn take_opt(args: &mut Vec<String>, name: &str) -> Option<String> {
    let i = args.iter().position(|a| a == name)?;
    args.remove(i);
    (i < args.len()).then(|| args.remove(i))
}

fn take_flag(args: &mut Vec<String>, name: &str) -> bool {
    let before = args.len();
    args.retain(|a| a != name);
    args.len() != before
}

fn seconds(v: Option<String>, default: f64) -> Result<Duration, Error> {
    let s = v
        .map_or(Ok(default), |v| v.parse::<f64>())
        .map_err(|_| usage("a number of seconds"))?;
    Ok(Duration::from_secs_f64(s))
}

async fn run(args: &[String]) -> Result<Value, Error> {
    let mut args = args.to_vec();
    if args.is_empty() {
        return Err(usage("SUBCOMMAND ... (see the source)"));
    }
    let sub = args.remove(0);
    let conn = query::connect().await?;
    let storage = if take_flag(&mut args, "--memory") {
        Storage::Memory
    } else {
        Storage::Disk
    };
    let one = |args: &[String], what: &str| -> Result<String, Error> {
        match args {
            [a] => Ok(a.clone()),
            _ => Err(usage(what)),
        }
    };
    match sub.as_str() {
        "lookup" => {
            let name = one(&args, "lookup IFNAME")?;
            Ok(lookup_json(&profile::lookup(&conn, &name).await?))
        }
        "desired" | "add" | "update" => {
            let block = take_flag(&mut args, "--block-autoconnect");
            let keep_legacy = take_flag(&mut args, "--keep-legacy");
            let file = one(&args, "desired|add|update FILE")?;
            let text = std::fs::read_to_string(&file)
                .map_err(|e| Error::invalid(format!("{file}: {e}")))?;
            let state = mptcpstate::parse(&text, &Log::new())?;
            // Every interface concurrently, bounded: the write layer is made for that.
            let work = state.interfaces.iter().map(|iface| {
                let conn = &conn;
                let sub = sub.as_str();
                async move {
                    let found = profile::lookup(conn, &iface.name).await?;
                    let existing = match sub {
                        "add" => None,
                        _ => found.profile.as_ref(),
                    };
                    if sub == "update" && existing.is_none() {
                        return Err(Error::invalid(format!(
                            "{}: no profile to update",
                            iface.name
                        )));
                    }
                    let mut desired =
                        settings::desired_settings(iface, existing.map(|p| &p.settings));
                    let changed = existing
                        .map(|p| settings::changed_keys(&p.settings, &desired))
                        .unwrap_or_default();
                    let path = match (sub, existing) {
                        ("add", _) => Some(profile::add(conn, &desired, storage).await?),
                        ("update", Some(p)) => {
                            if keep_legacy {
                                put_back_legacy(&mut desired, &p.settings);
                            }
                            profile::update(conn, &p.path, &desired, storage, block).await?;
                            Some(p.path.clone())
                        }
                        _ => existing.map(|p| p.path.clone()),
                    };
                    Ok::<Value, Error>(json!({
                        "interface": iface.name,
                        "path": path.map(|p| p.as_str().to_string()),
                        "changed": changed,
                        "settings": settings_json(&desired),
                    }))
                }
            });
            let results: Result<Vec<Value>, Error> = bounded(work).await.into_iter().collect();
            Ok(Value::Array(results?))
        }
        "roundtrip" => {
            let name = one(&args, "roundtrip IFNAME")?;
            let p = found_profile(&conn, &name).await?;
            profile::update(&conn, &p.path, &p.settings, Storage::Memory, false).await?;
            Ok(json!({"path": p.path.as_str()}))
        }
        "reapply" => {
            let watch = take_opt(&mut args, "--watch-ms")
                .map(|v| v.parse::<u64>().map_err(|_| usage("--watch-ms N")))
                .transpose()?;
            let version_opt = take_opt(&mut args, "--version-id")
                .map(|v| v.parse::<u64>().map_err(|_| usage("--version-id N")))
                .transpose()?;
            let name = one(&args, "reapply IFNAME [--watch-ms N] [--version-id N]")?;
            let found = profile::lookup(&conn, &name).await?;
            let device = found_device(&found, &name)?;
            let version =
                version_opt.unwrap_or_else(|| found.applied.as_ref().map_or(0, |a| a.version_id));
            let dev = device_control_proxy(&conn, device.clone())
                .await
                .map_err(|e| Error::new(ErrorKind::NetworkManager, e.to_string()))?;
            let mut signals = dev
                .receive_state_changed()
                .await
                .map_err(|e| Error::new(ErrorKind::NetworkManager, e.to_string()))?;
            let start = Instant::now();
            let outcome = activation::reapply(&conn, &device.as_ref(), None, version).await?;
            let call_ms = start.elapsed().as_secs_f64() * 1000.0;
            let mut changes = Vec::new();
            if let Some(ms) = watch {
                let deadline = tokio::time::Instant::now() + Duration::from_millis(ms);
                // Signals that came during the call are queued in the stream already.
                while let Ok(Some(sig)) = tokio::time::timeout_at(deadline, signals.next()).await {
                    if let Ok(a) = sig.args() {
                        changes.push(json!([a.old_state, a.new_state, a.reason]));
                    }
                }
            }
            let after = profile::applied(&conn, &device.as_ref()).await?;
            Ok(json!({
                "outcome": match outcome {
                    activation::Reapplied::Done => "done".to_string(),
                    activation::Reapplied::NeedsActivation(why) => format!("needs-activation: {why}"),
                },
                "version_before": version,
                "version_after": after.map(|a| a.version_id),
                "call_ms": call_ms,
                "state_changes": changes,
            }))
        }
        "watch" => {
            let (name, ms) = match args.as_slice() {
                [n, ms] => (
                    n.clone(),
                    ms.parse::<u64>().map_err(|_| usage("watch IFNAME MS"))?,
                ),
                _ => return Err(usage("watch IFNAME MS")),
            };
            let found = profile::lookup(&conn, &name).await?;
            let device = found_device(&found, &name)?;
            let dev = device_control_proxy(&conn, device)
                .await
                .map_err(|e| Error::new(ErrorKind::NetworkManager, e.to_string()))?;
            let mut signals = dev
                .receive_state_changed()
                .await
                .map_err(|e| Error::new(ErrorKind::NetworkManager, e.to_string()))?;
            // The subscription is in place: tell the test it may start.
            eprintln!("watching");
            let deadline = tokio::time::Instant::now() + Duration::from_millis(ms);
            let mut changes = Vec::new();
            while let Ok(Some(sig)) = tokio::time::timeout_at(deadline, signals.next()).await {
                if let Ok(a) = sig.args() {
                    changes.push(json!([a.old_state, a.new_state, a.reason]));
                }
            }
            Ok(json!({"state_changes": changes}))
        }
        "activate" => {
            let timeout = seconds(take_opt(&mut args, "--timeout"), 30.0)?;
            let uuid = take_opt(&mut args, "--uuid");
            let name = one(&args, "activate IFNAME [--timeout S] [--uuid UUID]")?;
            let found = profile::lookup(&conn, &name).await?;
            let device = found_device(&found, &name)?;
            let p = match uuid {
                Some(u) => profile::profile_by_uuid(&conn, &u).await?,
                None => found.profile.clone(),
            }
            .ok_or_else(|| Error::invalid(format!("{name}: no profile")))?;
            let start = Instant::now();
            let active =
                activation::activate(&conn, &p.path.as_ref(), &device.as_ref(), timeout).await?;
            Ok(json!({"active": active.as_str(), "ms": start.elapsed().as_secs_f64() * 1000.0}))
        }
        "activate-many" => {
            let timeout = seconds(take_opt(&mut args, "--timeout"), 30.0)?;
            if args.is_empty() {
                return Err(usage(
                    "activate-many [--timeout S] IFNAME[=PROFILE_IFNAME]...",
                ));
            }
            // `eth2=eth1`: the profile found for eth1, on eth2's device.
            let mut items = Vec::new();
            for arg in &args {
                let (dev_name, prof_name) = arg.split_once('=').unwrap_or((arg, arg));
                let device = found_device(&profile::lookup(&conn, dev_name).await?, dev_name)?;
                let p = found_profile(&conn, prof_name).await?;
                items.push((p.path, device));
            }
            let start = Instant::now();
            let results = activation::activate_many(&conn, &items, timeout).await?;
            let results: Vec<Value> = results
                .into_iter()
                .zip(&args)
                .map(|(r, arg)| match r {
                    Ok(ac) => json!({"item": arg, "active": ac.as_str()}),
                    Err(e) => json!({"item": arg, "kind": e.kind().name(), "message": e.msg()}),
                })
                .collect();
            Ok(json!({"results": results, "ms": start.elapsed().as_secs_f64() * 1000.0}))
        }
        "deactivate" | "disconnect" => {
            let timeout = seconds(take_opt(&mut args, "--timeout"), 30.0)?;
            let name = one(&args, "deactivate|disconnect IFNAME")?;
            let found = profile::lookup(&conn, &name).await?;
            let device = found_device(&found, &name)?;
            if sub == "deactivate" {
                deactivation::deactivate(&conn, &device.as_ref(), timeout).await?;
            } else {
                deactivation::disconnect(&conn, &device.as_ref(), timeout).await?;
            }
            Ok(json!({"device": device.as_str()}))
        }
        "delete" => {
            let name = one(&args, "delete IFNAME")?;
            let p = found_profile(&conn, &name).await?;
            profile::delete(&conn, &p.path.as_ref()).await?;
            Ok(json!({"deleted": p.path.as_str()}))
        }
        "storage" => {
            let name = one(&args, "storage IFNAME")?;
            let p = found_profile(&conn, &name).await?;
            let (file, unsaved) = profile::storage_of(&conn, &p.path.as_ref()).await?;
            Ok(json!({"filename": file, "unsaved": unsaved}))
        }
        "list" => {
            let name = one(&args, "list IFNAME")?;
            let all = profile::list_profiles(&conn).await?;
            let mine: Vec<Value> = profile::profiles_for(&all, &name)
                .into_iter()
                .map(|p| json!({"path": p.path.as_str(), "uuid": p.uuid(), "id": p.id()}))
                .collect();
            Ok(json!({"total": all.len(), "profiles": mine}))
        }
        "checkpoint-create" => {
            let timeout = take_opt(&mut args, "--timeout")
                .map(|v| v.parse::<u32>().map_err(|_| usage("--timeout SECONDS")))
                .transpose()?
                .unwrap_or(60);
            if args.is_empty() {
                return Err(usage("checkpoint-create [--timeout S] IFNAME..."));
            }
            let found = bounded(args.iter().map(|n| profile::lookup(&conn, n))).await;
            let mut devices = Vec::new();
            for (f, name) in found.into_iter().zip(&args) {
                devices.push(found_device(&f?, name)?);
            }
            let cp = checkpoint::create(&conn, &devices, timeout).await?;
            Ok(json!({"checkpoint": cp.as_str()}))
        }
        "checkpoint-destroy" | "checkpoint-rollback" | "checkpoint-adjust" => {
            let path = args
                .first()
                .ok_or_else(|| usage("checkpoint-... PATH"))
                .and_then(|p| {
                    ObjectPath::try_from(p.as_str()).map_err(|_| Error::invalid("not a D-Bus path"))
                })?;
            match sub.as_str() {
                "checkpoint-destroy" => {
                    checkpoint::destroy(&conn, &path).await?;
                    Ok(json!({}))
                }
                "checkpoint-rollback" => {
                    let results = checkpoint::rollback(&conn, &path).await?;
                    let failures = checkpoint::failures(&conn, &results).await.err();
                    Ok(json!({
                        "results": results.iter().map(|r| json!([r.device, r.result])).collect::<Vec<_>>(),
                        "failures": failures.map(|e| e.msg().to_string()),
                    }))
                }
                _ => {
                    let secs = args
                        .get(1)
                        .and_then(|s| s.parse::<u32>().ok())
                        .ok_or_else(|| usage("checkpoint-adjust PATH SECONDS"))?;
                    checkpoint::adjust_rollback_timeout(&conn, &path, secs).await?;
                    Ok(json!({}))
                }
            }
        }
        "checkpoints" => {
            let list = checkpoint::list(&conn).await?;
            Ok(Value::Array(
                list.iter()
                    .map(|c| {
                        json!({
                            "path": c.path.as_str(),
                            "devices": c.devices.iter().map(|d| d.as_str()).collect::<Vec<_>>(),
                            "rollback_timeout": c.rollback_timeout,
                            "seconds_left": c.seconds_left(),
                        })
                    })
                    .collect(),
            ))
        }
        other => Err(usage(&format!("unknown subcommand {other}"))),
    }
}

fn found_device(found: &InterfaceProfile, name: &str) -> Result<OwnedObjectPath, Error> {
    found
        .device
        .as_ref()
        .map(|d| d.path.clone())
        .ok_or_else(|| Error::invalid(format!("{name}: NetworkManager has no such device")))
}

async fn found_profile(conn: &zbus::Connection, name: &str) -> Result<profile::Profile, Error> {
    profile::lookup(conn, name)
        .await?
        .profile
        .ok_or_else(|| Error::invalid(format!("{name}: no profile")))
}

/// The deprecated `addresses`/`routes` keys of `from`, put back into `to`.
fn put_back_legacy(to: &mut Settings, from: &Settings) {
    for section in ["ipv4", "ipv6"] {
        for key in ["addresses", "routes"] {
            if let Some(v) = from.get(section).and_then(|s| s.get(key)) {
                if let (Some(dst), Ok(v)) = (to.get_mut(section), v.try_clone()) {
                    dst.insert(key.to_string(), v);
                }
            }
        }
    }
}

/// Settings as plain JSON (`{"ipv4": {"method": "manual", ...}}`), without the variant
/// signatures.
fn settings_json(s: &Settings) -> Value {
    let mut out = serde_json::Map::new();
    for (name, setting) in s {
        let keys = setting
            .iter()
            .map(|(k, v)| (k.clone(), value_json(v)))
            .collect();
        out.insert(name.clone(), Value::Object(keys));
    }
    Value::Object(out)
}

fn value_json(v: &zbus::zvariant::Value<'_>) -> Value {
    use zbus::zvariant::Value as V;
    match v {
        V::U8(n) => json!(n),
        V::Bool(b) => json!(b),
        V::I16(n) => json!(n),
        V::U16(n) => json!(n),
        V::I32(n) => json!(n),
        V::U32(n) => json!(n),
        V::I64(n) => json!(n),
        V::U64(n) => json!(n),
        V::F64(n) => json!(n),
        V::Str(s) => json!(s.as_str()),
        V::Signature(s) => json!(s.to_string()),
        V::ObjectPath(p) => json!(p.as_str()),
        V::Value(inner) => value_json(inner),
        V::Array(a) => Value::Array(a.iter().map(value_json).collect()),
        V::Structure(st) => Value::Array(st.fields().iter().map(value_json).collect()),
        V::Dict(d) => Value::Object(
            d.iter()
                .map(|(k, v)| {
                    let key = match value_json(k) {
                        Value::String(s) => s,
                        other => other.to_string(),
                    };
                    (key, value_json(v))
                })
                .collect(),
        ),
        #[allow(unreachable_patterns)]
        _ => Value::Null,
    }
}

fn lookup_json(f: &InterfaceProfile) -> Value {
    json!({
        "device": f.device.as_ref().map(|d| json!({
            "path": d.path.as_str(), "interface": d.interface, "state": d.state})),
        "applied": f.applied.as_ref().map(|a| json!({
            "uuid": a.uuid(), "version_id": a.version_id,
            "mptcp_flags": settings::get_u32(&a.settings, "connection", "mptcp-flags")})),
        "profile": f.profile.as_ref().map(|p| json!({
            "path": p.path.as_str(), "uuid": p.uuid(), "id": p.id(),
            "settings": settings_json(&p.settings)})),
    })
}
