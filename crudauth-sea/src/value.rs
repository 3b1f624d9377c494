//! Column limits and JSON-to-column value conversion for the application's own columns.

use sea_orm::sea_query::StringLen;
use sea_orm::{ColumnType, Value};

/// The length a string column accepts, in characters; `None` when unbounded (`TEXT`).
///
/// A `String` column without an explicit length counts as 255 characters on every backend:
/// that is what MySQL/MariaDB create for it, and the same limit everywhere keeps an app's
/// behaviour independent of its database.
pub fn char_limit(column_type: &ColumnType) -> Option<usize> {
    match column_type {
        ColumnType::String(StringLen::N(n)) | ColumnType::Char(Some(n)) => Some(*n as usize),
        ColumnType::String(StringLen::None) => Some(255),
        ColumnType::Char(None) => Some(1),
        _ => None,
    }
}

/// Converts a JSON value to a SeaORM value of the column's type; `None` if it does not fit.
pub fn json_to_value(column_type: &ColumnType, json: &serde_json::Value) -> Option<Value> {
    use serde_json::Value as J;
    let null = matches!(json, J::Null);
    Some(match column_type {
        ColumnType::String(_) | ColumnType::Char(_) | ColumnType::Text => match json {
            J::String(s) => Value::String(Some(s.clone())),
            J::Null => Value::String(None),
            _ => return None,
        },
        ColumnType::Boolean => match json {
            J::Bool(b) => Value::Bool(Some(*b)),
            J::Null => Value::Bool(None),
            _ => return None,
        },
        ColumnType::TinyInteger => Value::TinyInt(int(json, null)?),
        ColumnType::SmallInteger => Value::SmallInt(int(json, null)?),
        ColumnType::Integer => Value::Int(int(json, null)?),
        ColumnType::BigInteger => Value::BigInt(int(json, null)?),
        ColumnType::TinyUnsigned => Value::TinyUnsigned(int(json, null)?),
        ColumnType::SmallUnsigned => Value::SmallUnsigned(int(json, null)?),
        ColumnType::Unsigned => Value::Unsigned(int(json, null)?),
        ColumnType::BigUnsigned => Value::BigUnsigned(int(json, null)?),
        ColumnType::Float => Value::Float(if null {
            None
        } else {
            Some(json.as_f64()? as f32)
        }),
        ColumnType::Double => Value::Double(if null { None } else { Some(json.as_f64()?) }),
        ColumnType::Uuid => match json {
            J::String(s) => Value::Uuid(Some(uuid::Uuid::parse_str(s).ok()?)),
            J::Null => Value::Uuid(None),
            _ => return None,
        },
        ColumnType::Json | ColumnType::JsonBinary => Value::Json(Some(Box::new(json.clone()))),
        _ => return None,
    })
}

/// An integer of type `T` from JSON: `Some(None)` for null, `None` if it does not fit.
fn int<T: TryFrom<i64> + TryFrom<u64>>(json: &serde_json::Value, null: bool) -> Option<Option<T>> {
    if null {
        return Some(None);
    }
    if let Some(v) = json.as_i64() {
        return T::try_from(v).ok().map(Some);
    }
    json.as_u64().and_then(|v| T::try_from(v).ok()).map(Some)
}
