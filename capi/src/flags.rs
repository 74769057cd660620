//! The `flags` argument: one bit per option, shared by every function that takes flags.
//!
//! Every function that takes flags takes the same bits. A function ignores the bits that
//! mean nothing to it; bits that no flag defines are refused, so that a caller built
//! against a newer header does not silently get old behaviour.

use mptcpstate::{Error, OutputFormat, Result};

/// Kernel-only mode: netlink instead of NetworkManager (show, apply). Ignored by
/// `mptcpstate_format` and `mptcpstate_generate_configurations`.
pub const MPTCPSTATE_FLAG_KERNEL_ONLY: u32 = 1 << 0;
/// Do not verify the result against the kernel (apply). Ignored by
/// `mptcpstate_format` and `mptcpstate_generate_configurations`.
pub const MPTCPSTATE_FLAG_NO_VERIFY: u32 = 1 << 1;
/// Keep the checkpoint instead of committing it, and return its path (apply). Ignored
/// by `mptcpstate_format` and `mptcpstate_generate_configurations`.
pub const MPTCPSTATE_FLAG_NO_COMMIT: u32 = 1 << 2;
/// Do not write profiles to disk (apply). Ignored by `mptcpstate_format` and
/// `mptcpstate_generate_configurations`.
pub const MPTCPSTATE_FLAG_MEMORY_ONLY: u32 = 1 << 3;
/// Output in YAML instead of JSON (show, format, generate_configurations). Ignored by
/// `mptcpstate_apply`.
pub const MPTCPSTATE_FLAG_YAML_OUTPUT: u32 = 1 << 4;

/// Dry run (apply): validate, read and plan, write nothing; no checkpoint.
/// `mptcpstate_apply_plan` returns what would be done. Ignored by the other functions.
pub const MPTCPSTATE_FLAG_DRY_RUN: u32 = 1 << 5;

/// Every defined flag with its name, as error messages print them.
const KNOWN: [(u32, &str); 6] = [
    (MPTCPSTATE_FLAG_KERNEL_ONLY, "MPTCPSTATE_FLAG_KERNEL_ONLY"),
    (MPTCPSTATE_FLAG_NO_VERIFY, "MPTCPSTATE_FLAG_NO_VERIFY"),
    (MPTCPSTATE_FLAG_NO_COMMIT, "MPTCPSTATE_FLAG_NO_COMMIT"),
    (MPTCPSTATE_FLAG_MEMORY_ONLY, "MPTCPSTATE_FLAG_MEMORY_ONLY"),
    (MPTCPSTATE_FLAG_YAML_OUTPUT, "MPTCPSTATE_FLAG_YAML_OUTPUT"),
    (MPTCPSTATE_FLAG_DRY_RUN, "MPTCPSTATE_FLAG_DRY_RUN"),
];

/// Flags that passed [`Flags::check`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Flags(u32);

impl Flags {
    /// Refuses bits that no flag defines.
    pub(crate) fn check(bits: u32) -> Result<Flags> {
        let known = KNOWN.iter().fold(0, |all, (bit, _)| all | bit);
        let unknown = bits & !known;
        if unknown != 0 {
            let names: Vec<String> = KNOWN
                .iter()
                .map(|(bit, name)| format!("{name} ({bit:#x})"))
                .collect();
            return Err(Error::invalid(format!(
                "flags {bits:#x}: unknown bits {unknown:#x}; the flags are {}",
                names.join(", ")
            )));
        }
        Ok(Flags(bits))
    }

    pub(crate) fn has(self, flag: u32) -> bool {
        self.0 & flag != 0
    }

    pub(crate) fn output_format(self) -> OutputFormat {
        if self.has(MPTCPSTATE_FLAG_YAML_OUTPUT) {
            OutputFormat::Yaml
        } else {
            OutputFormat::Json
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn known_bits_pass_and_unknown_bits_are_named() {
        let all = KNOWN.iter().fold(0, |all, (bit, _)| all | bit);
        assert!(Flags::check(all).is_ok());
        assert!(Flags::check(0).is_ok());
        match Flags::check(MPTCPSTATE_FLAG_YAML_OUTPUT | 1 << 20) {
            Ok(_) => panic!("unknown bit accepted"),
            Err(e) => {
                assert_eq!(e.kind(), mptcpstate::ErrorKind::InvalidArgument);
                assert!(e.msg().contains("unknown bits 0x100000"), "{}", e.msg());
                assert!(e.msg().contains("MPTCPSTATE_FLAG_YAML_OUTPUT (0x10)"));
            }
        }
    }

    #[test]
    fn bits_are_distinct() {
        let all = KNOWN.iter().fold(0, |all, (bit, _)| all | bit);
        assert_eq!(all.count_ones() as usize, KNOWN.len());
    }

    #[test]
    fn yaml_output() {
        assert_eq!(Flags(0).output_format(), OutputFormat::Json);
        assert_eq!(
            Flags(MPTCPSTATE_FLAG_YAML_OUTPUT).output_format(),
            OutputFormat::Yaml
        );
    }
}
