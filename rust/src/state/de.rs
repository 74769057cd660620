//! Deserialization helpers shared by the schema types.

use std::fmt;

use serde::de::{self, Deserializer, Visitor};

/// Makes a struct deserializable from a mapping only.
///
/// serde's derived `Deserialize` for a struct also takes a sequence, filling the fields by
/// position, so `ipv4: [true, false]` would silently mean `enabled: true, dhcp: false`.
/// The struct derives with `#[serde(remote = "Self")]` (which makes the derived code an
/// inherent function) and this macro writes the trait impls: deserialize asks for a map
/// and hands the map to the derived code; serialize is the derived code unchanged.
macro_rules! map_only {
    ($ty:ty, $expecting:literal) => {
        impl<'de> serde::Deserialize<'de> for $ty {
            fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                struct MapVisitor;
                impl<'de> serde::de::Visitor<'de> for MapVisitor {
                    type Value = $ty;
                    fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                        f.write_str($expecting)
                    }
                    fn visit_map<A: serde::de::MapAccess<'de>>(
                        self,
                        map: A,
                    ) -> Result<Self::Value, A::Error> {
                        <$ty>::deserialize(serde::de::value::MapAccessDeserializer::new(map))
                    }
                }
                d.deserialize_map(MapVisitor)
            }
        }

        impl serde::Serialize for $ty {
            fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                <$ty>::serialize(self, s)
            }
        }
    };
}
pub(crate) use map_only;

/// The spellings of a boolean string besides `true`/`false`, for messages. nmstate's
/// `deserializer::option_bool_or_string` (rust/src/lib/deserializer.rs of
/// github.com/nmstate/nmstate) matches `value.to_lowercase()` against
/// `"1" | "true" | "yes" | "on" | "y"` and `"0" | "false" | "no" | "off" | "n"`, and
/// takes the integers 1 and 0; [`opt_bool`] does the same.
const BOOL_WORDS: &str = "yes/no, on/off, y/n, 1/0, in any case";

/// A boolean as nmstate takes one (`option_bool_or_string`): `true`/`false`, the integers
/// 1 and 0, or a string that lowercases to one of its ten words (templated playbooks
/// render `"true"`). `null` is "absent", as for any optional key of this schema. Nothing else:
/// no surrounding whitespace, no other integer.
pub(crate) fn opt_bool<'de, D: Deserializer<'de>>(
    d: D,
    what: &'static str,
) -> Result<Option<bool>, D::Error> {
    struct BoolVisitor(&'static str);
    impl BoolVisitor {
        fn refuse<E: de::Error>(&self, given: fmt::Arguments<'_>) -> E {
            E::custom(format!(
                "{} must be a boolean, not {given}: write true or false (as in nmstate, \
                 also {BOOL_WORDS})",
                self.0
            ))
        }
    }
    impl<'de> Visitor<'de> for BoolVisitor {
        type Value = Option<bool>;
        fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            write!(f, "{} as a boolean (true or false)", self.0)
        }
        fn visit_bool<E: de::Error>(self, v: bool) -> Result<Option<bool>, E> {
            Ok(Some(v))
        }
        fn visit_str<E: de::Error>(self, v: &str) -> Result<Option<bool>, E> {
            match v.to_lowercase().as_str() {
                "1" | "true" | "yes" | "on" | "y" => Ok(Some(true)),
                "0" | "false" | "no" | "off" | "n" => Ok(Some(false)),
                _ => Err(self.refuse(format_args!("`{}`", v.escape_debug()))),
            }
        }
        fn visit_u64<E: de::Error>(self, v: u64) -> Result<Option<bool>, E> {
            match v {
                1 => Ok(Some(true)),
                0 => Ok(Some(false)),
                _ => Err(self.refuse(format_args!("the integer {v}"))),
            }
        }
        fn visit_i64<E: de::Error>(self, v: i64) -> Result<Option<bool>, E> {
            match u64::try_from(v) {
                Ok(v) => self.visit_u64(v),
                Err(_) => Err(self.refuse(format_args!("the integer {v}"))),
            }
        }
        fn visit_unit<E: de::Error>(self) -> Result<Option<bool>, E> {
            Ok(None)
        }
        fn visit_none<E: de::Error>(self) -> Result<Option<bool>, E> {
            Ok(None)
        }
        fn visit_some<D2: Deserializer<'de>>(self, d: D2) -> Result<Option<bool>, D2::Error> {
            d.deserialize_any(self)
        }
    }
    d.deserialize_any(BoolVisitor(what))
}

/// The integer a string stands for, as nmstate reads one (`option_u64_or_string`,
/// rust/src/lib/deserializer.rs of github.com/nmstate/nmstate): after a `0x` prefix,
/// hexadecimal (`u64::from_str_radix(rest, 16)`), else decimal (`u64::from_str`, which
/// takes a leading `+`). The same std functions, so exactly the same strings: no
/// whitespace, no `-`, no `0X`, `0o` or `_`.
fn nmstate_uint(text: &str) -> Option<u64> {
    match text.strip_prefix("0x") {
        Some(hex) => u64::from_str_radix(hex, 16).ok(),
        None => text.parse::<u64>().ok(),
    }
}

/// An integer in `min..=max`; out of range or not an integer is an error that says
/// `what` and the range. As in nmstate, the integer may be given as a string (see
/// [`nmstate_uint`]): `prefix-length: "24"` from a template.
pub(crate) fn int_in_range<'de, D: Deserializer<'de>>(
    d: D,
    min: i64,
    max: i64,
    what: &'static str,
) -> Result<i64, D::Error> {
    struct IntVisitor {
        min: i64,
        max: i64,
        what: &'static str,
    }
    impl IntVisitor {
        fn check<E: de::Error>(&self, v: i128) -> Result<i64, E> {
            if v < i128::from(self.min) || v > i128::from(self.max) {
                return Err(E::custom(format!(
                    "{} {v} is out of range: it must be {}..{}",
                    self.what, self.min, self.max
                )));
            }
            Ok(v as i64)
        }
    }
    impl Visitor<'_> for IntVisitor {
        type Value = i64;
        fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            write!(f, "{} as an integer {}..{}", self.what, self.min, self.max)
        }
        fn visit_i64<E: de::Error>(self, v: i64) -> Result<i64, E> {
            self.check(i128::from(v))
        }
        fn visit_u64<E: de::Error>(self, v: u64) -> Result<i64, E> {
            self.check(i128::from(v))
        }
        fn visit_str<E: de::Error>(self, v: &str) -> Result<i64, E> {
            match nmstate_uint(v) {
                Some(n) => self.check(i128::from(n)),
                None => Err(E::custom(format!(
                    "{} must be an integer, not `{}`: write digits, e.g. {} (as in nmstate, \
                     also as a string of decimal digits, or of 0x and hexadecimal digits)",
                    self.what,
                    v.escape_debug(),
                    self.max
                ))),
            }
        }
    }
    d.deserialize_any(IntVisitor { min, max, what })
}
