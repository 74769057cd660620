//! From text to a validated [`NetworkState`].
//!
//! JSON or YAML is detected from the first character. Errors name the path of the
//! offending value (`interfaces[0].mptcp.address-flags[1]`) and its line and column.

use serde::de::DeserializeOwned;

use super::hint::did_you_mean;
use super::{validate, NetworkState};
use crate::{Error, Log, Result};

/// Documents larger than this are refused before parsing: a state for a thousand
/// interfaces is a few hundred kilobytes, and a cap keeps parse time and memory bounded
/// whatever the caller passes.
pub const MAX_INPUT_BYTES: usize = 2 * 1024 * 1024;

/// Checks that raw input is UTF-8, with the position of the first bad byte. All faces
/// that take bytes (C strings, files, stdin) come through here, so they say the same.
pub fn input_from_bytes(bytes: &[u8]) -> Result<&str> {
    std::str::from_utf8(bytes).map_err(|e| {
        Error::invalid(format!(
            "the input is not valid UTF-8: bad byte at offset {}; save the file as UTF-8",
            e.valid_up_to()
        ))
    })
}

/// The error for an input over [`MAX_INPUT_BYTES`]; `size` is `None` when a stream was
/// cut at the limit and its whole size is unknown.
pub fn input_too_large(size: Option<u64>) -> Error {
    let size = match size {
        Some(n) => format!("{n} bytes"),
        None => format!("more than {MAX_INPUT_BYTES} bytes"),
    };
    Error::invalid(format!(
        "the input is {size}; the limit is {MAX_INPUT_BYTES} bytes ({} MiB)",
        MAX_INPUT_BYTES / (1024 * 1024)
    ))
}

/// Parses and validates a state document. Nothing outside the library is read.
pub fn parse(input: &str, log: &Log) -> Result<NetworkState> {
    if input.len() > MAX_INPUT_BYTES {
        return Err(input_too_large(Some(input.len() as u64)));
    }
    let trimmed = input.trim_start_matches('\u{feff}').trim();
    if trimmed.is_empty() || trimmed == "---" {
        return Err(Error::invalid(
            "the input is empty: give a state, e.g. `interfaces: []`",
        ));
    }
    let state: NetworkState = if trimmed.starts_with('{') || trimmed.starts_with('[') {
        from_json(trimmed)?
    } else {
        from_yaml(input)?
    };
    validate(&state, log)?;
    Ok(state)
}

fn from_json<T: DeserializeOwned>(input: &str) -> Result<T> {
    let mut de = serde_json::Deserializer::from_str(input);
    let value = serde_path_to_error::deserialize(&mut de).map_err(|e| {
        let path = e.path().to_string();
        let inner = e.into_inner();
        let position = (inner.line() > 0).then(|| (inner.line(), inner.column().max(1)));
        let text = inner.to_string();
        let msg = match position {
            Some((l, c)) => text
                .strip_suffix(&format!(" at line {l} column {c}"))
                .unwrap_or(&text)
                .to_string(),
            None => text,
        };
        syntax_error("JSON", &path, &msg, position)
    })?;
    de.end().map_err(|e| {
        syntax_error(
            "JSON",
            ".",
            "trailing characters after the document",
            Some((e.line(), e.column())),
        )
    })?;
    Ok(value)
}

/// The deepest flow nesting (`[`, `{`) a YAML state may have. The schema needs five
/// levels; the YAML parser's time grows with the square of the depth, and it parses the
/// whole document before the deserializer's own recursion limit can stop it, so deeper
/// input is refused before parsing.
const MAX_YAML_FLOW_DEPTH: usize = 64;

/// The deepest flow nesting of a YAML text, skipping quoted scalars and comments. One
/// linear pass; a bracket inside a plain scalar counts, which can only over-estimate.
fn yaml_flow_depth(input: &str) -> usize {
    let (mut depth, mut max) = (0usize, 0usize);
    let mut chars = input.chars().peekable();
    let mut prev_blank = true;
    while let Some(c) = chars.next() {
        match c {
            '[' | '{' => {
                depth += 1;
                max = max.max(depth);
            }
            ']' | '}' => depth = depth.saturating_sub(1),
            '#' if prev_blank => {
                for c in chars.by_ref() {
                    if c == '\n' {
                        break;
                    }
                }
            }
            '"' => {
                while let Some(c) = chars.next() {
                    match c {
                        '\\' => {
                            chars.next();
                        }
                        '"' => break,
                        _ => {}
                    }
                }
            }
            '\'' => {
                while let Some(c) = chars.next() {
                    if c == '\'' {
                        if chars.peek() == Some(&'\'') {
                            chars.next();
                        } else {
                            break;
                        }
                    }
                }
            }
            _ => {}
        }
        prev_blank = c.is_whitespace() || c == '[' || c == '{' || c == ',';
    }
    max
}

fn from_yaml<T: DeserializeOwned>(input: &str) -> Result<T> {
    if yaml_flow_depth(input) > MAX_YAML_FLOW_DEPTH {
        return Err(Error::invalid(format!(
            "the document is nested too deeply: more than {MAX_YAML_FLOW_DEPTH} levels of \
             `[`/`{{` (a state is a few levels deep)"
        )));
    }
    let de = serde_yaml::Deserializer::from_str(input);
    serde_path_to_error::deserialize(de).map_err(|e| {
        let path = e.path().to_string();
        let inner = e.into_inner();
        let position = inner.location().map(|l| (l.line(), l.column()));
        let mut msg = inner.to_string();
        if let Some((l, c)) = position {
            if let Some(m) = msg.strip_suffix(&format!(" at line {l} column {c}")) {
                msg = m.to_string();
            }
        }
        // serde_yaml prefixes its own, coarser path ("interfaces[0]: ..."); the path from
        // serde_path_to_error is exact, so drop serde_yaml's.
        if let Some((prefix, rest)) = msg.split_once(": ") {
            if !prefix.contains(' ') && path.starts_with(prefix) {
                msg = rest.to_string();
            }
        }
        syntax_error("YAML", &path, &msg, position)
    })
}

fn syntax_error(format: &str, path: &str, msg: &str, position: Option<(usize, usize)>) -> Error {
    // serde_path_to_error writes `?` for a segment it could not name (a syntax error
    // before the key was read): keep the part of the path that is known.
    let path = match path.find(".?").or_else(|| path.find('?')) {
        Some(i) => &path[..i],
        None => path,
    };
    let mut text = String::new();
    if path != "." && !path.is_empty() {
        text.push_str(path);
        text.push_str(": ");
    }
    text.push_str(&explain(msg));
    if let Some(hint) = did_you_mean(msg) {
        text.push_str(&hint);
    }
    if let Some((l, c)) = position {
        text.push_str(&format!(" ({format} line {l}, column {c})"));
    }
    Error::invalid(text)
}

/// Rewords the parser messages that say what went wrong but not what to do.
fn explain(msg: &str) -> String {
    if msg.starts_with("recursion limit exceeded") {
        "the document is nested too deeply (a state is a few levels deep)".to_string()
    } else if msg.starts_with("repetition limit exceeded") {
        "the document expands YAML aliases too often (alias bomb?); write it without aliases"
            .to_string()
    } else if msg.contains("more than one document") {
        "the input holds several YAML documents; give one state".to_string()
    } else {
        msg.to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ErrorKind;

    fn err(input: &str) -> String {
        let e = parse(input, &Log::new()).unwrap_err();
        assert_eq!(e.kind(), ErrorKind::InvalidArgument, "{e}");
        e.msg().to_string()
    }

    const SEED: &str = "---
interfaces:
  - name: eth1
    type: ethernet
    state: up
    mptcp:
      address-flags:
        - subflow
        - signal
    ipv4:
      enabled: true
      dhcp: false
      address:
        - ip: 192.0.2.2
          prefix-length: 24
";

    #[test]
    fn seed_parses() {
        let s = parse(SEED, &Log::new()).unwrap();
        assert_eq!(s.interfaces.len(), 1);
        assert_eq!(s.interfaces[0].address_flags().unwrap().kernel_bits(), 0b11);
    }

    #[test]
    fn json_and_yaml_agree() {
        let json = r#"{"interfaces":[{"name":"eth1","type":"ethernet","state":"up",
            "mptcp":{"address-flags":["subflow","signal"]},
            "ipv4":{"enabled":true,"dhcp":false,"address":[{"ip":"192.0.2.2","prefix-length":24}]}}]}"#;
        assert_eq!(
            parse(json, &Log::new()).unwrap(),
            parse(SEED, &Log::new()).unwrap()
        );
    }

    #[test]
    fn yaml_error_has_exact_path_and_position() {
        let m =
            err("interfaces:\n  - name: eth1\n    mptcp:\n      address-flags: [subflow, bogus]\n");
        assert!(
            m.starts_with("interfaces[0].mptcp.address-flags[1]: unknown variant `bogus`"),
            "{m}"
        );
        assert!(m.ends_with("(YAML line 4, column 32)"), "{m}");
    }

    #[test]
    fn json_error_has_exact_path_and_position() {
        let m = err(r#"{"interfaces": [{"name": "eth1", "ipv4": {"adress": []}}]}"#);
        assert!(
            m.starts_with("interfaces[0].ipv4.adress: unknown field `adress`"),
            "{m}"
        );
        assert!(m.contains("did you mean `address`?"), "{m}");
        assert!(m.contains("JSON line 1"), "{m}");
    }

    #[test]
    fn custom_errors_get_the_field_path() {
        let m = err("interfaces:\n  - name: eth1\n    ipv4:\n      address:\n        - ip: 192.0.2.1\n          prefix-length: 33\n");
        assert!(
            m.starts_with(
                "interfaces[0].ipv4.address[0].prefix-length: IPv4 prefix-length 33 is out"
            ),
            "{m}"
        );
    }

    #[test]
    fn empty_and_oversized() {
        assert!(err("").contains("empty"));
        assert!(err("  \n---\n").contains("empty"));
        let big = format!("interfaces: []\n#{}\n", "x".repeat(MAX_INPUT_BYTES));
        assert!(err(&big).contains("limit"));
    }

    #[test]
    fn flow_depth_skips_quotes_and_comments() {
        assert_eq!(yaml_flow_depth("a: [[1], {b: [2]}]"), 3);
        assert_eq!(yaml_flow_depth("a: \"[[[[\" # [[[[\nb: '[[''[' ['x']"), 1);
        assert!(err(&format!("a: {}", "[".repeat(100_000))).contains("nested too deeply"));
    }

    #[test]
    fn bad_utf8() {
        let e = input_from_bytes(b"interfaces: \xff\n").unwrap_err();
        assert!(e.msg().contains("offset 12"), "{e}");
    }
}
