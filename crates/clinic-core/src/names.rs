//! Enum ↔ text, one mechanism: the serde names. An enum's variants get their text names from
//! `#[serde(rename_all = "snake_case")]` (or a per-variant rename) once; the IPC, the
//! database columns (`text_column!`), error params and translation keys all use those
//! names. A stored value no variant matches is an error (`Error::UnknownValue`), never a
//! silent default.

use serde::de::value::{Error as DeError, StrDeserializer};
use serde::de::IntoDeserializer;
use serde::ser::{self, Impossible, Serialize};
use serde::Deserialize;

/// The serde name of a unit variant: `AppointmentStatus::CheckedIn` → "checked_in".
/// Panics on anything but a unit variant: only called on field-less enums (a test
/// per enum would catch a wrong use at once).
pub fn name_of<T: Serialize + ?Sized>(v: &T) -> &'static str {
    match v.serialize(VariantName) {
        Ok(name) => name,
        Err(e) => panic!("name_of on a value that is not a unit variant: {e}"),
    }
}

/// The variant named `s`, if any.
pub fn parse_name<'de, T: Deserialize<'de>>(s: &'de str) -> Option<T> {
    let d: StrDeserializer<'de, DeError> = s.into_deserializer();
    T::deserialize(d).ok()
}

/// A stored text no variant of the column's enum matches (written by a newer version, or
/// by hand). Reaches the UI as `unknown_value`.
#[derive(Debug)]
pub struct UnknownValue {
    pub kind: &'static str,
    pub value: String,
}

impl std::fmt::Display for UnknownValue {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "unknown {} {:?}", self.kind, self.value)
    }
}

impl std::error::Error for UnknownValue {}

/// Implements `ToSql`/`FromSql` for field-less enums through their serde names, and an
/// `as_str` for messages. An unknown stored value fails the read with `UnknownValue`.
#[macro_export]
#[doc(hidden)]
macro_rules! text_column {
    ($($t:ty),* $(,)?) => {$(
        impl $t {
            /// The stored (and serde) name.
            pub fn as_str(self) -> &'static str {
                $crate::names::name_of(&self)
            }
        }
        impl rusqlite::types::ToSql for $t {
            fn to_sql(&self) -> rusqlite::Result<rusqlite::types::ToSqlOutput<'_>> {
                Ok(rusqlite::types::ToSqlOutput::Borrowed(rusqlite::types::ValueRef::Text(self.as_str().as_bytes())))
            }
        }
        impl rusqlite::types::FromSql for $t {
            fn column_result(v: rusqlite::types::ValueRef<'_>) -> rusqlite::types::FromSqlResult<Self> {
                let s = v.as_str()?;
                $crate::names::parse_name::<$t>(s).ok_or_else(|| {
                    rusqlite::types::FromSqlError::Other(Box::new($crate::names::UnknownValue {
                        kind: stringify!($t),
                        value: s.to_string(),
                    }))
                })
            }
        }
    )*};
}

/// Reads a JSON text column (a list of phones, roles, allergies). A value that does not
/// parse is an `UnknownValue` error, never an empty default.
pub fn json_column<T: serde::de::DeserializeOwned>(
    r: &rusqlite::Row<'_>,
    idx: usize,
    kind: &'static str,
) -> rusqlite::Result<T> {
    let text: String = r.get(idx)?;
    serde_json::from_str(&text).map_err(|_| {
        rusqlite::Error::FromSqlConversionFailure(
            idx,
            rusqlite::types::Type::Text,
            Box::new(UnknownValue { kind, value: text }),
        )
    })
}

struct VariantName;

#[derive(Debug)]
struct NotUnit;

impl std::fmt::Display for NotUnit {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("not a unit variant")
    }
}
impl std::error::Error for NotUnit {}
impl ser::Error for NotUnit {
    fn custom<T: std::fmt::Display>(_: T) -> Self {
        NotUnit
    }
}

macro_rules! refuse {
    ($($f:ident($($t:ty),*)),*) => {$(
        fn $f(self, $(_: $t),*) -> Result<&'static str, NotUnit> { Err(NotUnit) }
    )*};
}

impl ser::Serializer for VariantName {
    type Ok = &'static str;
    type Error = NotUnit;
    type SerializeSeq = Impossible<&'static str, NotUnit>;
    type SerializeTuple = Impossible<&'static str, NotUnit>;
    type SerializeTupleStruct = Impossible<&'static str, NotUnit>;
    type SerializeTupleVariant = Impossible<&'static str, NotUnit>;
    type SerializeMap = Impossible<&'static str, NotUnit>;
    type SerializeStruct = Impossible<&'static str, NotUnit>;
    type SerializeStructVariant = Impossible<&'static str, NotUnit>;

    fn serialize_unit_variant(
        self,
        _: &'static str,
        _: u32,
        variant: &'static str,
    ) -> Result<&'static str, NotUnit> {
        Ok(variant)
    }

    refuse!(
        serialize_bool(bool),
        serialize_i8(i8),
        serialize_i16(i16),
        serialize_i32(i32),
        serialize_i64(i64),
        serialize_u8(u8),
        serialize_u16(u16),
        serialize_u32(u32),
        serialize_u64(u64),
        serialize_f32(f32),
        serialize_f64(f64),
        serialize_char(char),
        serialize_str(&str),
        serialize_bytes(&[u8]),
        serialize_none(),
        serialize_unit(),
        serialize_unit_struct(&'static str)
    );

    fn serialize_some<T: Serialize + ?Sized>(self, _: &T) -> Result<&'static str, NotUnit> {
        Err(NotUnit)
    }
    fn serialize_newtype_struct<T: Serialize + ?Sized>(
        self,
        _: &'static str,
        _: &T,
    ) -> Result<&'static str, NotUnit> {
        Err(NotUnit)
    }
    fn serialize_newtype_variant<T: Serialize + ?Sized>(
        self,
        _: &'static str,
        _: u32,
        _: &'static str,
        _: &T,
    ) -> Result<&'static str, NotUnit> {
        Err(NotUnit)
    }
    fn serialize_seq(self, _: Option<usize>) -> Result<Self::SerializeSeq, NotUnit> {
        Err(NotUnit)
    }
    fn serialize_tuple(self, _: usize) -> Result<Self::SerializeTuple, NotUnit> {
        Err(NotUnit)
    }
    fn serialize_tuple_struct(
        self,
        _: &'static str,
        _: usize,
    ) -> Result<Self::SerializeTupleStruct, NotUnit> {
        Err(NotUnit)
    }
    fn serialize_tuple_variant(
        self,
        _: &'static str,
        _: u32,
        _: &'static str,
        _: usize,
    ) -> Result<Self::SerializeTupleVariant, NotUnit> {
        Err(NotUnit)
    }
    fn serialize_map(self, _: Option<usize>) -> Result<Self::SerializeMap, NotUnit> {
        Err(NotUnit)
    }
    fn serialize_struct(self, _: &'static str, _: usize) -> Result<Self::SerializeStruct, NotUnit> {
        Err(NotUnit)
    }
    fn serialize_struct_variant(
        self,
        _: &'static str,
        _: u32,
        _: &'static str,
        _: usize,
    ) -> Result<Self::SerializeStructVariant, NotUnit> {
        Err(NotUnit)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, Clone, Copy, PartialEq, serde::Serialize, serde::Deserialize)]
    #[serde(rename_all = "snake_case")]
    enum Colour {
        DeepRed,
        #[serde(rename = "blue!")]
        Blue,
    }

    #[test]
    fn names_follow_serde_both_ways() {
        assert_eq!(name_of(&Colour::DeepRed), "deep_red");
        assert_eq!(name_of(&Colour::Blue), "blue!");
        assert_eq!(parse_name::<Colour>("deep_red"), Some(Colour::DeepRed));
        assert_eq!(parse_name::<Colour>("blue!"), Some(Colour::Blue));
        assert_eq!(
            parse_name::<Colour>("green"),
            None,
            "unknown is None, never a default"
        );
    }
}
