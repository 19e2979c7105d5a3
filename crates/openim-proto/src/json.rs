//! Serde helpers used by the generated messages so that their JSON matches OpenIM's Go server
//! (`encoding/json` over protoc-gen-go structs): `bytes` as base64 strings and `null` (a Go nil
//! slice or pointer) read as the field's default.

use serde::{Deserialize, Deserializer};

/// Reads `null` as `T::default()`.
pub fn null_as_default<'de, D, T>(deserializer: D) -> Result<T, D::Error>
where
    D: Deserializer<'de>,
    T: Deserialize<'de> + Default,
{
    Ok(Option::<T>::deserialize(deserializer)?.unwrap_or_default())
}

/// `bytes` fields as standard base64, like Go's `[]byte` in `encoding/json`.
pub mod base64_bytes {
    use base64::Engine as _;
    use base64::engine::general_purpose::STANDARD;
    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(bytes: &[u8], serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(&STANDARD.encode(bytes))
    }

    pub fn deserialize<'de, D, T>(deserializer: D) -> Result<T, D::Error>
    where
        D: Deserializer<'de>,
        T: From<Vec<u8>>,
    {
        let text = Option::<String>::deserialize(deserializer)?.unwrap_or_default();
        STANDARD
            .decode(text.as_bytes())
            .map(T::from)
            .map_err(|e| serde::de::Error::custom(format!("invalid base64: {e}")))
    }
}

/// OpenIM's wrappers (`openim.protobuf.*Value`) read and write the bare value (`"x"`, `5`,
/// `true`); an absent key or `null` leaves the optional field unset.
macro_rules! bare_wrapper {
    ($($ty:ident: $inner:ty),* $(,)?) => {$(
        impl serde::Serialize for crate::pb::protobuf::$ty {
            fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                self.value.serialize(s)
            }
        }
        impl<'de> serde::Deserialize<'de> for crate::pb::protobuf::$ty {
            fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                Ok(Self { value: <$inner>::deserialize(d)? })
            }
        }
    )*};
}

bare_wrapper!(
    StringValue: String,
    Int32Value: i32,
    Int64Value: i64,
    UInt32Value: u32,
    UInt64Value: u64,
    BoolValue: bool,
    DoubleValue: f64,
    FloatValue: f32,
);

impl serde::Serialize for crate::pb::protobuf::BytesValue {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        base64_bytes::serialize(&self.value, s)
    }
}

impl<'de> serde::Deserialize<'de> for crate::pb::protobuf::BytesValue {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        Ok(Self { value: base64_bytes::deserialize(d)? })
    }
}
