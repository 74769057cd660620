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

/// An integer in `min..=max`; out of range or not an integer is an error that says
/// `what` and the range.
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
    }
    d.deserialize_i64(IntVisitor { min, max, what })
}
