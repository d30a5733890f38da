//! Parts of the input decoded the first time a rule reads them.
//!
//! Most rules read a few fields and ignore the rest (the request's query, the client's
//! metadata, how the user authenticated...). Decoding those into maps and strings was most of
//! a rule's cost, so the SDK keeps them as the JSON text it received and decodes a part only
//! when the rule first touches it. A part the rule never changes is not sent back either.

use std::cell::{Cell, OnceCell};
use std::fmt;
use std::ops::{Deref, DerefMut};

use serde::{Deserialize, Deserializer, Serialize, Serializer};
use serde_json::value::RawValue;

use crate::json::{self, FromJson};

/// A value decoded on first use. It dereferences to `T`, so a rule uses it as a `T`:
/// `user.app_metadata.get("roles")`, `user.user_metadata.insert(k, v)`.
///
/// If the JSON the rule received does not decode as `T` (only possible with a hand-made input,
/// e.g. in the rule test endpoint), the rule sees `T::default()` and an error line is logged.
pub struct Lazy<T> {
    raw: Option<Box<str>>,
    value: OnceCell<T>,
    changed: bool,
    /// The text did not decode as `T` (the rule saw `T::default()`).
    failed: Cell<bool>,
}

impl<T: FromJson + Default> Lazy<T> {
    fn decoded(&self) -> &T {
        self.value.get_or_init(|| match &self.raw {
            Some(raw) => json::from_str(raw).unwrap_or_else(|e| {
                self.failed.set(true);
                crate::log::error(&json::describe(
                    "a part of the rule's input does not have the expected shape; using an empty value",
                    e,
                ));
                T::default()
            }),
            None => T::default(),
        })
    }

    /// Whether the rule took this value mutably (the SDK then sends it back).
    pub fn changed(&self) -> bool {
        self.changed
    }

    /// The JSON text it was received as, if it was.
    pub(crate) fn received(&self) -> Option<&str> {
        self.raw.as_deref()
    }

    /// Whether the received text failed to decode (the rule saw `T::default()`).
    pub(crate) fn decode_failed(&self) -> bool {
        self.failed.get()
    }
}

impl<T> Lazy<T> {
    /// An already-decoded value. It counts as changed: a rule that assigns one
    /// (`user.app_metadata = map.into()`) replaces what the user had.
    pub fn new(value: T) -> Self {
        Lazy {
            raw: None,
            value: OnceCell::from(value),
            changed: true,
            failed: Cell::new(false),
        }
    }
}

impl<T: FromJson + Default> Deref for Lazy<T> {
    type Target = T;

    fn deref(&self) -> &T {
        self.decoded()
    }
}

impl<T: FromJson + Default> DerefMut for Lazy<T> {
    fn deref_mut(&mut self) -> &mut T {
        self.decoded();
        self.changed = true;
        self.value.get_mut().expect("decoded above")
    }
}

impl<T> From<T> for Lazy<T> {
    fn from(value: T) -> Self {
        Lazy::new(value)
    }
}

impl<T: Default> Default for Lazy<T> {
    /// Empty and unchanged: what a part absent from the input reads as.
    fn default() -> Self {
        Lazy {
            changed: false,
            ..Lazy::new(T::default())
        }
    }
}

impl<T: Clone> Clone for Lazy<T> {
    fn clone(&self) -> Self {
        Lazy {
            raw: self.raw.clone(),
            value: self.value.clone(),
            changed: self.changed,
            failed: self.failed.clone(),
        }
    }
}

impl<T: FromJson + Default + fmt::Debug> fmt::Debug for Lazy<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.decoded().fmt(f)
    }
}

impl<T: FromJson + Default + PartialEq> PartialEq for Lazy<T> {
    fn eq(&self, other: &Self) -> bool {
        self.decoded() == other.decoded()
    }
}

impl<T: Serialize> Serialize for Lazy<T> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match (self.value.get(), &self.raw) {
            (Some(v), _) => v.serialize(s),
            (None, Some(raw)) => RawValue::from_string(raw.to_string())
                .map_err(serde::ser::Error::custom)?
                .serialize(s),
            (None, None) => s.serialize_unit(),
        }
    }
}

impl<'de, T> Deserialize<'de> for Lazy<T> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        Ok(Lazy {
            raw: Some(Box::<RawValue>::deserialize(d)?.into()),
            value: OnceCell::new(),
            changed: false,
            failed: Cell::new(false),
        })
    }
}

impl<T> FromJson for Lazy<T> {
    fn from_json(r: &mut json::Reader<'_>) -> Result<Self, json::Stop> {
        Ok(Lazy {
            raw: Some(r.skip()?.into()),
            value: OnceCell::new(),
            changed: false,
            failed: Cell::new(false),
        })
    }
}

#[cfg(test)]
mod tests {
    use serde_json::{Map, Value, json};

    use super::*;

    #[test]
    fn a_lazy_value_decodes_on_first_read_and_serializes_back_unchanged() {
        let lazy: Lazy<Map<String, Value>> = serde_json::from_str(r#"{"b":1,"a":[2]}"#).unwrap();
        assert!(!lazy.changed());
        assert_eq!(serde_json::to_string(&lazy).unwrap(), r#"{"b":1,"a":[2]}"#);
        assert_eq!(lazy.get("a"), Some(&json!([2])));
        assert!(!lazy.changed());
    }

    #[test]
    fn writing_marks_it_changed() {
        let mut lazy: Lazy<Map<String, Value>> = serde_json::from_str(r#"{"a":1}"#).unwrap();
        lazy.insert("b".into(), json!(2));
        assert!(lazy.changed());
        assert_eq!(
            serde_json::to_value(&lazy).unwrap(),
            json!({"a": 1, "b": 2})
        );
    }

    #[test]
    fn a_value_of_the_wrong_shape_reads_as_empty() {
        let lazy: Lazy<Map<String, Value>> = serde_json::from_str("[1]").unwrap();
        assert!(lazy.is_empty());
    }
}
