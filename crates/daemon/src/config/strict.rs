//! Serde input over a merged `config::Value` tree that takes values as they
//! are written, and says where each one that does not fit sits.
//!
//! The config crate's own deserializer converts where it should refuse (1.5
//! becomes 2, `true` and `"yes"` become 1) and names a key only as a suffix of
//! its message. Here TOML's types count as written; only strings, which is
//! all a `TENANTWATCH__…` variable can hold, are parsed into the number or
//! boolean a key takes. Every error carries the path of its key, so
//! [`super::tree`] can report it by name, leave the key out and read on.

use std::fmt;

use config::{Map, Value, ValueKind};
use serde::de::{self, DeserializeSeed, IntoDeserializer, Visitor};

/// One step of a key path: a table key or a list index.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum Step {
    /// A key of a table.
    Key(String),
    /// An element of a list.
    Index(usize),
}

/// The path as an operator writes it: `collectors.resource_graph.queries[0].name`.
pub(super) fn dotted(path: &[Step]) -> String {
    let mut s = String::new();
    for step in path {
        match step {
            Step::Key(k) if s.is_empty() => s.push_str(k),
            Step::Key(k) => {
                s.push('.');
                s.push_str(k);
            }
            Step::Index(i) => s.push_str(&format!("[{i}]")),
        }
    }
    s
}

/// A value that does not fit the key it is under, and where that key is.
#[derive(Debug)]
pub(super) struct ReadError {
    /// From the top of the tree to the key.
    pub(super) path: Vec<Step>,
    /// What is wrong with it.
    pub(super) kind: ErrorKind,
}

/// What is wrong with a key.
#[derive(Debug)]
pub(super) enum ErrorKind {
    /// Its section has no such key; `takes` are the keys it has.
    Unknown { takes: &'static [&'static str] },
    /// Its value has the wrong type or range. `shown` is the value as
    /// written, `kind` only its type, for keys whose value is a secret.
    Mismatch {
        expected: String,
        shown: String,
        kind: &'static str,
    },
    /// Anything else serde reports.
    Other(String),
}

impl ReadError {
    fn new(kind: ErrorKind) -> Self {
        Self {
            path: Vec::new(),
            kind,
        }
    }

    fn mismatch(expected: impl Into<String>, value: &Value) -> Self {
        let (shown, kind) = match &value.kind {
            ValueKind::Nil => ("nothing".to_string(), "nothing"),
            ValueKind::Boolean(b) => (b.to_string(), "a boolean"),
            ValueKind::I64(n) => (n.to_string(), "a number"),
            ValueKind::I128(n) => (n.to_string(), "a number"),
            ValueKind::U64(n) => (n.to_string(), "a number"),
            ValueKind::U128(n) => (n.to_string(), "a number"),
            ValueKind::Float(f) => (f.to_string(), "a number"),
            ValueKind::String(s) => (format!("{s:?}"), "a string"),
            ValueKind::Array(_) => ("a list".to_string(), "a list"),
            ValueKind::Table(_) => ("a table".to_string(), "a table"),
        };
        Self::new(ErrorKind::Mismatch {
            expected: expected.into(),
            shown,
            kind,
        })
    }

    /// The same error one level further out: `step` leads to where it was.
    fn under(mut self, step: Step) -> Self {
        self.path.insert(0, step);
        self
    }
}

impl fmt::Display for ReadError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: ", dotted(&self.path))?;
        match &self.kind {
            ErrorKind::Unknown { takes } => write!(f, "unknown key; expected {}", takes.join(", ")),
            ErrorKind::Mismatch { expected, kind, .. } => {
                write!(f, "expected {expected}, got {kind}")
            }
            ErrorKind::Other(m) => f.write_str(m),
        }
    }
}

impl std::error::Error for ReadError {}

impl de::Error for ReadError {
    fn custom<T: fmt::Display>(msg: T) -> Self {
        Self::new(ErrorKind::Other(msg.to_string()))
    }

    fn invalid_type(unexp: de::Unexpected, exp: &dyn de::Expected) -> Self {
        let (shown, kind) = match unexp {
            de::Unexpected::Bool(b) => (b.to_string(), "a boolean"),
            de::Unexpected::Unsigned(n) => (n.to_string(), "a number"),
            de::Unexpected::Signed(n) => (n.to_string(), "a number"),
            de::Unexpected::Float(n) => (n.to_string(), "a number"),
            de::Unexpected::Str(s) => (format!("{s:?}"), "a string"),
            de::Unexpected::Seq => ("a list".to_string(), "a list"),
            de::Unexpected::Map => ("a table".to_string(), "a table"),
            other => (other.to_string(), "something else"),
        };
        Self::new(ErrorKind::Mismatch {
            expected: expected(exp),
            shown,
            kind,
        })
    }

    fn invalid_value(unexp: de::Unexpected, exp: &dyn de::Expected) -> Self {
        Self::invalid_type(unexp, exp)
    }

    fn unknown_field(_field: &str, takes: &'static [&'static str]) -> Self {
        // The key itself is added by `Entries`, which knows it even when the
        // field visitor refused it.
        Self::new(ErrorKind::Unknown { takes })
    }
}

/// What serde's visitors expect, in the words of a config file.
fn expected(exp: &dyn de::Expected) -> String {
    let e = exp.to_string();
    match e.as_str() {
        "a map" => "a table".into(),
        "a sequence" => "a list".into(),
        "a boolean" => "true or false".into(),
        "path string" => "a string".into(),
        _ if e.starts_with("struct ") => "a table".into(),
        _ => e,
    }
}

/// A `config::Value` as serde input; see the module docs.
pub(super) struct Strict(pub(super) Value);

impl Strict {
    fn unsigned<'de, V: Visitor<'de>>(self, max: u64, visitor: V) -> Result<V::Value, ReadError> {
        let n = match &self.0.kind {
            ValueKind::I64(n) => u64::try_from(*n).ok(),
            ValueKind::I128(n) => u64::try_from(*n).ok(),
            ValueKind::U64(n) => Some(*n),
            ValueKind::U128(n) => u64::try_from(*n).ok(),
            ValueKind::String(s) => s.trim().parse().ok(),
            _ => None,
        };
        match n {
            Some(n) if n <= max => visitor.visit_u64(n),
            // Validation gives most keys a tighter range; u64's would only be noise.
            _ if max == u64::MAX => Err(ReadError::mismatch("a whole number, 0 or more", &self.0)),
            _ => Err(ReadError::mismatch(
                format!("a whole number from 0 to {max}"),
                &self.0,
            )),
        }
    }

    fn signed<'de, V: Visitor<'de>>(
        self,
        min: i64,
        max: i64,
        visitor: V,
    ) -> Result<V::Value, ReadError> {
        let n = match &self.0.kind {
            ValueKind::I64(n) => Some(*n),
            ValueKind::I128(n) => i64::try_from(*n).ok(),
            ValueKind::U64(n) => i64::try_from(*n).ok(),
            ValueKind::U128(n) => i64::try_from(*n).ok(),
            ValueKind::String(s) => s.trim().parse().ok(),
            _ => None,
        };
        match n {
            Some(n) if (min..=max).contains(&n) => visitor.visit_i64(n),
            _ => Err(ReadError::mismatch(
                format!("a whole number from {min} to {max}"),
                &self.0,
            )),
        }
    }
}

impl<'de> de::Deserializer<'de> for Strict {
    type Error = ReadError;

    fn deserialize_any<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, ReadError> {
        match self.0.kind {
            ValueKind::Nil => visitor.visit_unit(),
            ValueKind::Boolean(b) => visitor.visit_bool(b),
            ValueKind::I64(n) => visitor.visit_i64(n),
            ValueKind::I128(n) => visitor.visit_i128(n),
            ValueKind::U64(n) => visitor.visit_u64(n),
            ValueKind::U128(n) => visitor.visit_u128(n),
            ValueKind::Float(f) => visitor.visit_f64(f),
            ValueKind::String(s) => visitor.visit_string(s),
            ValueKind::Array(items) => visitor.visit_seq(Items(items.into_iter().enumerate())),
            ValueKind::Table(table) => visitor.visit_map(Entries::new(table)),
        }
    }

    fn deserialize_bool<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, ReadError> {
        let b = match &self.0.kind {
            ValueKind::Boolean(b) => Some(*b),
            // What the config crate took from variables before, so existing
            // unit files keep working.
            ValueKind::String(s) => match s.trim().to_ascii_lowercase().as_str() {
                "true" | "yes" | "on" | "1" => Some(true),
                "false" | "no" | "off" | "0" => Some(false),
                _ => None,
            },
            _ => None,
        };
        match b {
            Some(b) => visitor.visit_bool(b),
            None => Err(ReadError::mismatch("true or false", &self.0)),
        }
    }

    fn deserialize_u8<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, ReadError> {
        self.unsigned(u8::MAX.into(), visitor)
    }

    fn deserialize_u16<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, ReadError> {
        self.unsigned(u16::MAX.into(), visitor)
    }

    fn deserialize_u32<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, ReadError> {
        self.unsigned(u32::MAX.into(), visitor)
    }

    fn deserialize_u64<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, ReadError> {
        // usize comes here too; its visitor refuses what does not fit the platform.
        self.unsigned(u64::MAX, visitor)
    }

    fn deserialize_i8<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, ReadError> {
        self.signed(i8::MIN.into(), i8::MAX.into(), visitor)
    }

    fn deserialize_i16<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, ReadError> {
        self.signed(i16::MIN.into(), i16::MAX.into(), visitor)
    }

    fn deserialize_i32<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, ReadError> {
        self.signed(i32::MIN.into(), i32::MAX.into(), visitor)
    }

    fn deserialize_i64<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, ReadError> {
        self.signed(i64::MIN, i64::MAX, visitor)
    }

    fn deserialize_str<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, ReadError> {
        self.deserialize_string(visitor)
    }

    fn deserialize_string<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, ReadError> {
        match self.0.kind {
            ValueKind::String(s) => visitor.visit_string(s),
            _ => Err(ReadError::mismatch("a string", &self.0)),
        }
    }

    fn deserialize_option<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, ReadError> {
        match self.0.kind {
            ValueKind::Nil => visitor.visit_none(),
            _ => visitor.visit_some(self),
        }
    }

    fn deserialize_newtype_struct<V: Visitor<'de>>(
        self,
        _name: &'static str,
        visitor: V,
    ) -> Result<V::Value, ReadError> {
        visitor.visit_newtype_struct(self)
    }

    serde::forward_to_deserialize_any! {
        f32 f64 char bytes byte_buf unit unit_struct seq tuple tuple_struct
        map struct enum identifier ignored_any i128 u128
    }
}

/// A list's elements, each error marked with its index.
struct Items(std::iter::Enumerate<std::vec::IntoIter<Value>>);

impl<'de> de::SeqAccess<'de> for Items {
    type Error = ReadError;

    fn next_element_seed<T: DeserializeSeed<'de>>(
        &mut self,
        seed: T,
    ) -> Result<Option<T::Value>, ReadError> {
        match self.0.next() {
            Some((i, v)) => seed
                .deserialize(Strict(v))
                .map(Some)
                .map_err(|e| e.under(Step::Index(i))),
            None => Ok(None),
        }
    }
}

/// A table's entries in key order, so the same file reports the same
/// problems in the same order; each error is marked with its key.
struct Entries {
    entries: std::vec::IntoIter<(String, Value)>,
    value: Option<(String, Value)>,
}

impl Entries {
    fn new(table: Map<String, Value>) -> Self {
        let mut entries: Vec<_> = table.into_iter().collect();
        entries.sort_by(|a, b| a.0.cmp(&b.0));
        Self {
            entries: entries.into_iter(),
            value: None,
        }
    }
}

impl<'de> de::MapAccess<'de> for Entries {
    type Error = ReadError;

    fn next_key_seed<K: DeserializeSeed<'de>>(
        &mut self,
        seed: K,
    ) -> Result<Option<K::Value>, ReadError> {
        let Some((key, value)) = self.entries.next() else {
            return Ok(None);
        };
        let k = seed
            .deserialize(IntoDeserializer::<ReadError>::into_deserializer(
                key.as_str(),
            ))
            .map_err(|e| e.under(Step::Key(key.clone())))?;
        self.value = Some((key, value));
        Ok(Some(k))
    }

    fn next_value_seed<V: DeserializeSeed<'de>>(&mut self, seed: V) -> Result<V::Value, ReadError> {
        let Some((key, value)) = self.value.take() else {
            return Err(de::Error::custom("a value asked for before its key"));
        };
        seed.deserialize(Strict(value))
            .map_err(|e| e.under(Step::Key(key)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde::Deserialize;

    #[derive(Debug, Deserialize)]
    #[serde(deny_unknown_fields)]
    #[allow(dead_code)]
    struct Section {
        count: Option<usize>,
        small: Option<u32>,
        on: Option<bool>,
        name: Option<String>,
        list: Option<Vec<String>>,
    }

    fn table(entries: &[(&str, ValueKind)]) -> Value {
        let m: Map<String, Value> = entries
            .iter()
            .map(|(k, v)| (k.to_string(), Value::new(None, v.clone())))
            .collect();
        Value::new(None, ValueKind::Table(m))
    }

    fn read(entries: &[(&str, ValueKind)]) -> Result<Section, ReadError> {
        Section::deserialize(Strict(table(entries)))
    }

    fn mismatch(e: ReadError) -> (String, String, String) {
        match e.kind {
            ErrorKind::Mismatch {
                expected, shown, ..
            } => (dotted(&e.path), expected, shown),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn numbers_are_whole_and_in_range_or_refused_with_their_key() {
        let s = read(&[
            ("count", ValueKind::I64(5)),
            ("small", ValueKind::String(" 7 ".into())),
        ])
        .unwrap();
        assert_eq!((s.count, s.small), (Some(5), Some(7)));
        let max = "a whole number, 0 or more".to_string();
        for (value, shown) in [
            (ValueKind::I64(-1), "-1"),
            (ValueKind::Float(1.5), "1.5"),
            (ValueKind::Boolean(true), "true"),
            (ValueKind::String("-5".into()), "\"-5\""),
            (
                ValueKind::String("99999999999999999999".into()),
                "\"99999999999999999999\"",
            ),
        ] {
            let e = read(&[("count", value)]).unwrap_err();
            assert_eq!(mismatch(e), ("count".into(), max.clone(), shown.into()));
        }
        let e = read(&[("small", ValueKind::I64(1 << 40))]).unwrap_err();
        assert_eq!(
            mismatch(e),
            (
                "small".into(),
                "a whole number from 0 to 4294967295".into(),
                "1099511627776".into()
            )
        );
    }

    #[test]
    fn strings_and_booleans_are_not_converted_from_other_types() {
        let e = read(&[("name", ValueKind::I64(5))]).unwrap_err();
        assert_eq!(mismatch(e), ("name".into(), "a string".into(), "5".into()));
        let e = read(&[("on", ValueKind::I64(1))]).unwrap_err();
        assert_eq!(
            mismatch(e),
            ("on".into(), "true or false".into(), "1".into())
        );
        let s = read(&[("on", ValueKind::String("No".into()))]).unwrap();
        assert_eq!(s.on, Some(false));
        let e = read(&[("list", ValueKind::String("a,b".into()))]).unwrap_err();
        assert_eq!(
            mismatch(e),
            ("list".into(), "a list".into(), "\"a,b\"".into())
        );
    }

    #[test]
    fn list_elements_and_unknown_keys_carry_their_path() {
        let list = ValueKind::Array(vec![
            Value::new(None, ValueKind::String("a".into())),
            Value::new(None, ValueKind::I64(2)),
        ]);
        let e = read(&[("list", list)]).unwrap_err();
        assert_eq!(dotted(&e.path), "list[1]");
        let e = read(&[("count", ValueKind::I64(1)), ("cuont", ValueKind::I64(1))]).unwrap_err();
        assert_eq!(dotted(&e.path), "cuont");
        assert!(
            matches!(e.kind, ErrorKind::Unknown { takes } if takes.contains(&"count")),
            "{e}"
        );
    }
}
