//! Typed columns, decoded as part of the row: JSON that does not parse as `T`, a stored word its
//! type does not know, or a flag that is neither 0 nor 1 fails the row (a 500 with the cause in the log), so corruption
//! is never read as an empty list or a default that a later write would then store for good.
//! The same decoding serves sqlx's rows and the direct SQLite reads' (`direct.rs`).

use std::ops::Deref;

use rusqlite::types::{FromSql, FromSqlError, FromSqlResult, ValueRef};

use serde::Serialize;
use serde::de::DeserializeOwned;
use sqlx::any::{Any, AnyTypeInfo};
use sqlx::encode::IsNull;
use sqlx::error::BoxDynError;
use sqlx::{Database, Decode, Encode, Type};

/// A yes/no column. Both backends store 0/1 integers (SQLite has no boolean type, and sqlx's
/// `Any` driver decodes `bool` only from a boolean column), so the row reads it as this and the
/// rest of the code sees a `bool`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Flag(pub bool);

impl Deref for Flag {
    type Target = bool;

    fn deref(&self) -> &bool {
        &self.0
    }
}

impl From<bool> for Flag {
    fn from(b: bool) -> Self {
        Flag(b)
    }
}

impl Type<Any> for Flag {
    fn type_info() -> AnyTypeInfo {
        <i64 as Type<Any>>::type_info()
    }

    fn compatible(ty: &AnyTypeInfo) -> bool {
        <i64 as Type<Any>>::compatible(ty)
    }
}

impl Flag {
    fn of_stored(n: i64) -> Result<Flag, BoxDynError> {
        match n {
            0 => Ok(Flag(false)),
            1 => Ok(Flag(true)),
            other => Err(format!("stored flag is {other}, not 0 or 1").into()),
        }
    }
}

impl<'r> Decode<'r, Any> for Flag {
    fn decode(value: <Any as Database>::ValueRef<'r>) -> Result<Self, BoxDynError> {
        Flag::of_stored(<i64 as Decode<Any>>::decode(value)?)
    }
}

impl FromSql for Flag {
    fn column_result(value: ValueRef<'_>) -> FromSqlResult<Self> {
        Flag::of_stored(value.as_i64()?).map_err(FromSqlError::Other)
    }
}

impl<'q> Encode<'q, Any> for Flag {
    fn encode_by_ref(
        &self,
        buf: &mut <Any as Database>::ArgumentBuffer<'q>,
    ) -> Result<IsNull, BoxDynError> {
        <i64 as Encode<'q, Any>>::encode(i64::from(self.0), buf)
    }
}

/// A typed JSON column.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct JsonText<T>(pub T);

impl<T> Deref for JsonText<T> {
    type Target = T;

    fn deref(&self) -> &T {
        &self.0
    }
}

impl<T> Type<Any> for JsonText<T> {
    fn type_info() -> AnyTypeInfo {
        <String as Type<Any>>::type_info()
    }
}

impl<T: DeserializeOwned> JsonText<T> {
    fn of_stored(text: &str) -> Result<Self, BoxDynError> {
        Ok(JsonText(serde_json::from_str(text).map_err(|e| {
            format!(
                "stored JSON is not a valid {}: {e}",
                std::any::type_name::<T>()
            )
        })?))
    }
}

impl<'r, T: DeserializeOwned> Decode<'r, Any> for JsonText<T> {
    fn decode(value: <Any as Database>::ValueRef<'r>) -> Result<Self, BoxDynError> {
        JsonText::of_stored(&<String as Decode<Any>>::decode(value)?)
    }
}

impl<T: DeserializeOwned> FromSql for JsonText<T> {
    fn column_result(value: ValueRef<'_>) -> FromSqlResult<Self> {
        JsonText::of_stored(value.as_str()?).map_err(FromSqlError::Other)
    }
}

impl<'q, T: Serialize> Encode<'q, Any> for JsonText<T> {
    fn encode_by_ref(
        &self,
        buf: &mut <Any as Database>::ArgumentBuffer<'q>,
    ) -> Result<IsNull, BoxDynError> {
        <String as Encode<'q, Any>>::encode(serde_json::to_string(&self.0)?, buf)
    }
}

/// A scope column is stored as RFC 6749's space-separated text.
impl<'q> Encode<'q, Any> for crate::domain::ScopeSet {
    fn encode_by_ref(
        &self,
        buf: &mut <Any as Database>::ArgumentBuffer<'q>,
    ) -> Result<IsNull, BoxDynError> {
        <String as Encode<'q, Any>>::encode(self.to_string(), buf)
    }
}

/// Text columns holding a domain word (`RS256`, `skip`, …), decoded through the type's `parse`.
macro_rules! text_column {
    ($($t:ty),*) => {$(
        impl Type<Any> for $t {
            fn type_info() -> AnyTypeInfo {
                <String as Type<Any>>::type_info()
            }
        }

        impl<'r> Decode<'r, Any> for $t {
            fn decode(value: <Any as Database>::ValueRef<'r>) -> Result<Self, BoxDynError> {
                Ok(<$t>::parse(&<String as Decode<Any>>::decode(value)?)?)
            }
        }

        impl FromSql for $t {
            fn column_result(value: ValueRef<'_>) -> FromSqlResult<Self> {
                <$t>::parse(value.as_str()?).map_err(|e| FromSqlError::Other(e.into()))
            }
        }
    )*};
}

text_column!(
    crate::domain::AppType,
    crate::domain::TriggerId,
    crate::domain::ScopeSet,
    crate::domain::SigningAlg,
    crate::domain::TokenDialect,
    crate::domain::OnFailure
);
