//! Terraform values as the plugin protocol carries them (cty's msgpack encoding), and their
//! translation to and from the JSON documents the REST API takes.

use std::collections::BTreeMap;

use serde_json::{Number, Value as Json};

/// A cty value. Objects and maps share `Map`, lists, sets and tuples share `List`: their
/// encodings do not differ. A value held by a `dynamic` attribute keeps its type (cty's JSON
/// type syntax) so it goes back to Terraform exactly as it came.
#[derive(Debug, Clone, PartialEq)]
pub enum Value {
    Null,
    Unknown,
    Bool(bool),
    Number(Number),
    String(String),
    Bytes(Vec<u8>),
    List(Vec<Value>),
    Map(BTreeMap<String, Value>),
    Typed(Json, Box<Value>),
}

#[derive(Debug, thiserror::Error)]
pub enum DecodeError {
    #[error("msgpack ended early")]
    Truncated,
    #[error("unsupported msgpack marker 0x{0:02x}")]
    Marker(u8),
    #[error("a map key is not a string")]
    Key,
    #[error("a dynamic value is not [type, value]")]
    Dynamic,
    #[error("invalid type JSON: {0}")]
    TypeJson(String),
    #[error("values nested deeper than {MAX_DEPTH} levels")]
    TooDeep,
}

/// Deeper than any resource document; bounds the decoder's recursion.
const MAX_DEPTH: usize = 128;

impl Value {
    #[cfg(test)]
    pub fn str(s: impl Into<String>) -> Value {
        Value::String(s.into())
    }

    pub fn is_known(&self) -> bool {
        match self {
            Value::Unknown => false,
            Value::List(items) => items.iter().all(Value::is_known),
            Value::Map(map) => map.values().all(Value::is_known),
            Value::Typed(_, v) => v.is_known(),
            _ => true,
        }
    }

    pub fn is_null(&self) -> bool {
        match self {
            Value::Null => true,
            Value::Typed(_, v) => v.is_null(),
            _ => false,
        }
    }

    /// An object's attribute; `Null` when absent.
    pub fn get(&self, name: &str) -> &Value {
        static NULL: Value = Value::Null;
        match self {
            Value::Map(map) => map.get(name).unwrap_or(&NULL),
            Value::Typed(_, v) => v.get(name),
            _ => &NULL,
        }
    }

    pub fn as_str(&self) -> Option<&str> {
        match self {
            Value::String(s) => Some(s),
            Value::Typed(_, v) => v.as_str(),
            _ => None,
        }
    }

    /// The value as a JSON document: nulls inside objects are left out (the API's documents
    /// omit unset fields), unknowns become null.
    pub fn to_json(&self) -> Json {
        match self {
            Value::Null | Value::Unknown => Json::Null,
            Value::Bool(b) => Json::Bool(*b),
            Value::Number(n) => Json::Number(n.clone()),
            Value::String(s) => Json::String(s.clone()),
            Value::Bytes(b) => Json::String(String::from_utf8_lossy(b).into_owned()),
            Value::List(items) => Json::Array(items.iter().map(Value::to_json).collect()),
            Value::Map(map) => Json::Object(
                map.iter()
                    .filter(|(_, v)| !v.is_null())
                    .map(|(k, v)| (k.clone(), v.to_json()))
                    .collect(),
            ),
            Value::Typed(_, v) => v.to_json(),
        }
    }

    /// A JSON document as the value of a `dynamic` attribute, typed as an HCL literal of the
    /// same shape would be (objects and tuples), so a configuration written by eye from the
    /// YAML compares equal.
    pub fn dynamic_from_json(json: &Json) -> Value {
        if json.is_null() {
            return Value::Null;
        }
        Value::Typed(type_of(json), Box::new(Value::from_json(json)))
    }

    pub fn from_json(json: &Json) -> Value {
        match json {
            Json::Null => Value::Null,
            Json::Bool(b) => Value::Bool(*b),
            Json::Number(n) => Value::Number(n.clone()),
            Json::String(s) => Value::String(s.clone()),
            Json::Array(items) => Value::List(items.iter().map(Value::from_json).collect()),
            Json::Object(map) => Value::Map(
                map.iter()
                    .map(|(k, v)| (k.clone(), Value::from_json(v)))
                    .collect(),
            ),
        }
    }
}

/// cty's type of an HCL literal with this JSON's shape.
pub fn type_of(json: &Json) -> Json {
    match json {
        Json::Null => Json::from("dynamic"),
        Json::Bool(_) => Json::from("bool"),
        Json::Number(_) => Json::from("number"),
        Json::String(_) => Json::from("string"),
        Json::Array(items) => {
            serde_json::json!(["tuple", items.iter().map(type_of).collect::<Vec<_>>()])
        }
        Json::Object(map) => {
            let attrs: serde_json::Map<String, Json> =
                map.iter().map(|(k, v)| (k.clone(), type_of(v))).collect();
            serde_json::json!(["object", attrs])
        }
    }
}

// ---- msgpack (only what cty emits) ----

pub fn decode(bytes: &[u8]) -> Result<Value, DecodeError> {
    let mut reader = Reader {
        bytes,
        pos: 0,
        depth: 0,
    };
    reader.value()
}

/// `dynamic_attrs`: the top-level attributes whose schema type is `dynamic`, which cty
/// encodes as `[type JSON, value]`.
pub fn decode_object(bytes: &[u8], dynamic_attrs: &[&str]) -> Result<Value, DecodeError> {
    let mut value = decode(bytes)?;
    if let Value::Map(map) = &mut value {
        for name in dynamic_attrs {
            if let Some(v) = map.get_mut(*name) {
                *v = undynamic(std::mem::replace(v, Value::Null))?;
            }
        }
    }
    Ok(value)
}

fn undynamic(value: Value) -> Result<Value, DecodeError> {
    match value {
        Value::Null | Value::Unknown => Ok(value),
        Value::List(mut pair) if pair.len() == 2 => {
            let inner = pair.pop().unwrap_or(Value::Null);
            let ty = match pair.pop() {
                Some(Value::Bytes(b)) => b,
                Some(Value::String(s)) => s.into_bytes(),
                _ => return Err(DecodeError::Dynamic),
            };
            let ty =
                serde_json::from_slice(&ty).map_err(|e| DecodeError::TypeJson(e.to_string()))?;
            Ok(Value::Typed(ty, Box::new(inner)))
        }
        _ => Err(DecodeError::Dynamic),
    }
}

struct Reader<'a> {
    bytes: &'a [u8],
    pos: usize,
    depth: usize,
}

impl Reader<'_> {
    fn take(&mut self, n: usize) -> Result<&[u8], DecodeError> {
        let end = self.pos.checked_add(n).ok_or(DecodeError::Truncated)?;
        let slice = self
            .bytes
            .get(self.pos..end)
            .ok_or(DecodeError::Truncated)?;
        self.pos = end;
        Ok(slice)
    }

    fn uint(&mut self, n: usize) -> Result<u64, DecodeError> {
        Ok(self
            .take(n)?
            .iter()
            .fold(0u64, |acc, b| (acc << 8) | u64::from(*b)))
    }

    fn value(&mut self) -> Result<Value, DecodeError> {
        let marker = self.take(1)?[0];
        Ok(match marker {
            0x00..=0x7f => Value::Number(u64::from(marker).into()),
            0x80..=0x8f => self.map(usize::from(marker & 0x0f))?,
            0x90..=0x9f => self.list(usize::from(marker & 0x0f))?,
            0xa0..=0xbf => self.string(usize::from(marker & 0x1f))?,
            0xc0 => Value::Null,
            0xc2 => Value::Bool(false),
            0xc3 => Value::Bool(true),
            0xc4..=0xc6 => {
                let n = self.uint(1 << (marker - 0xc4))? as usize;
                Value::Bytes(self.take(n)?.to_vec())
            }
            0xc7..=0xc9 => {
                let n = self.uint(1 << (marker - 0xc7))? as usize;
                self.take(n + 1)?;
                Value::Unknown
            }
            0xca => {
                let bits = self.uint(4)? as u32;
                float(f64::from(f32::from_bits(bits)))
            }
            0xcb => float(f64::from_bits(self.uint(8)?)),
            0xcc..=0xcf => Value::Number(self.uint(1 << (marker - 0xcc))?.into()),
            0xd0..=0xd3 => {
                let width = 1usize << (marker - 0xd0);
                let raw = self.uint(width)?;
                let shift = 64 - 8 * width as u32;
                Value::Number((((raw << shift) as i64) >> shift).into())
            }
            0xd4..=0xd8 => {
                self.take(1 + (1 << (marker - 0xd4)))?;
                Value::Unknown
            }
            0xd9..=0xdb => {
                let n = self.uint(1 << (marker - 0xd9))? as usize;
                self.string(n)?
            }
            0xdc | 0xdd => {
                let n = self.uint(2 << (marker - 0xdc))? as usize;
                self.list(n)?
            }
            0xde | 0xdf => {
                let n = self.uint(2 << (marker - 0xde))? as usize;
                self.map(n)?
            }
            0xe0..=0xff => Value::Number(i64::from(marker as i8).into()),
            other => return Err(DecodeError::Marker(other)),
        })
    }

    fn string(&mut self, n: usize) -> Result<Value, DecodeError> {
        Ok(Value::String(
            String::from_utf8_lossy(self.take(n)?).into_owned(),
        ))
    }

    fn nested<T>(
        &mut self,
        read: impl FnOnce(&mut Self) -> Result<T, DecodeError>,
    ) -> Result<T, DecodeError> {
        if self.depth >= MAX_DEPTH {
            return Err(DecodeError::TooDeep);
        }
        self.depth += 1;
        let result = read(self);
        self.depth -= 1;
        result
    }

    fn list(&mut self, n: usize) -> Result<Value, DecodeError> {
        self.nested(|reader| {
            let mut items = Vec::with_capacity(n.min(1024));
            for _ in 0..n {
                items.push(reader.value()?);
            }
            Ok(Value::List(items))
        })
    }

    fn map(&mut self, n: usize) -> Result<Value, DecodeError> {
        self.nested(|reader| {
            let mut map = BTreeMap::new();
            for _ in 0..n {
                let Value::String(key) = reader.value()? else {
                    return Err(DecodeError::Key);
                };
                map.insert(key, reader.value()?);
            }
            Ok(Value::Map(map))
        })
    }
}

fn float(f: f64) -> Value {
    // cty sends whole numbers as floats sometimes; the API wants them as integers.
    if f.fract() == 0.0 && f.abs() < 9.0e15 {
        Value::Number((f as i64).into())
    } else {
        Number::from_f64(f).map_or(Value::Null, Value::Number)
    }
}

pub fn encode(value: &Value) -> Vec<u8> {
    let mut out = Vec::new();
    write(value, &mut out);
    out
}

fn write_len(out: &mut Vec<u8>, n: usize, fix: u8, fix_max: usize, m16: u8) {
    if n <= fix_max {
        out.push(fix | n as u8);
    } else if n <= 0xffff {
        out.push(m16);
        out.extend_from_slice(&(n as u16).to_be_bytes());
    } else {
        out.push(m16 + 1);
        out.extend_from_slice(&(n as u32).to_be_bytes());
    }
}

fn write(value: &Value, out: &mut Vec<u8>) {
    match value {
        Value::Null => out.push(0xc0),
        // cty's unknown value: extension type 0, no data.
        Value::Unknown => out.extend_from_slice(&[0xd4, 0, 0]),
        Value::Bool(b) => out.push(if *b { 0xc3 } else { 0xc2 }),
        Value::Number(n) => {
            if let Some(i) = n.as_i64() {
                out.push(0xd3);
                out.extend_from_slice(&i.to_be_bytes());
            } else if let Some(u) = n.as_u64() {
                out.push(0xcf);
                out.extend_from_slice(&u.to_be_bytes());
            } else {
                out.push(0xcb);
                out.extend_from_slice(&n.as_f64().unwrap_or_default().to_bits().to_be_bytes());
            }
        }
        Value::String(s) => {
            let n = s.len();
            if n <= 31 {
                out.push(0xa0 | n as u8);
            } else if n <= 0xff {
                out.extend_from_slice(&[0xd9, n as u8]);
            } else if n <= 0xffff {
                out.push(0xda);
                out.extend_from_slice(&(n as u16).to_be_bytes());
            } else {
                out.push(0xdb);
                out.extend_from_slice(&(n as u32).to_be_bytes());
            }
            out.extend_from_slice(s.as_bytes());
        }
        Value::Bytes(b) => {
            out.push(0xc6);
            out.extend_from_slice(&(b.len() as u32).to_be_bytes());
            out.extend_from_slice(b);
        }
        Value::List(items) => {
            write_len(out, items.len(), 0x90, 15, 0xdc);
            for item in items {
                write(item, out);
            }
        }
        Value::Map(map) => {
            write_len(out, map.len(), 0x80, 15, 0xde);
            for (k, v) in map {
                write(&Value::String(k.clone()), out);
                write(v, out);
            }
        }
        Value::Typed(ty, inner) => {
            if inner.is_null() {
                out.push(0xc0);
            } else if matches!(**inner, Value::Unknown) {
                write(&Value::Unknown, out);
            } else {
                out.push(0x92);
                write(&Value::Bytes(ty.to_string().into_bytes()), out);
                write(inner, out);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_a_resource_with_a_dynamic_attribute() {
        let spec =
            serde_json::json!({"targetRef": {"kind": "Mesh"}, "to": [{"port": 8080, "w": -3}]});
        let mut map = BTreeMap::new();
        map.insert("name".into(), Value::str("demo"));
        map.insert("spec".into(), Value::dynamic_from_json(&spec));
        map.insert("labels".into(), Value::Null);
        map.insert("gone".into(), Value::Unknown);
        let value = Value::Map(map);
        let decoded = decode_object(&encode(&value), &["spec"]).unwrap();
        assert_eq!(decoded, value);
        assert_eq!(decoded.get("spec").to_json(), spec);
    }

    #[test]
    fn deep_nesting_is_an_error_not_a_stack_overflow() {
        let deep = vec![0x91u8; 100_000];
        assert!(matches!(decode(&deep), Err(DecodeError::TooDeep)));
    }

    proptest::proptest! {
        #[test]
        fn arbitrary_bytes_never_panic(bytes in proptest::collection::vec(proptest::num::u8::ANY, 0..256)) {
            let _ = decode(&bytes);
            let _ = decode_object(&bytes, &["spec"]);
        }

        #[test]
        fn json_documents_round_trip(doc in json_document(3)) {
            let value = Value::dynamic_from_json(&doc);
            let decoded = decode(&encode(&Value::List(vec![value.clone()]))).unwrap();
            let Value::List(items) = decoded else { panic!("a list") };
            // Typed values come back as [type, value]: undo it as the object decoder does.
            let back = undynamic(items.into_iter().next().unwrap()).unwrap();
            proptest::prop_assert_eq!(back.to_json(), value.to_json());
        }
    }

    fn json_document(depth: u32) -> impl proptest::strategy::Strategy<Value = Json> {
        use proptest::prelude::*;
        let leaf = prop_oneof![
            any::<bool>().prop_map(Json::from),
            any::<i64>().prop_map(Json::from),
            "[a-zA-Z0-9 ./*-]{0,40}".prop_map(Json::from),
        ];
        leaf.prop_recursive(depth, 32, 4, |inner| {
            prop_oneof![
                proptest::collection::vec(inner.clone(), 0..4).prop_map(Json::Array),
                proptest::collection::btree_map("[a-zA-Z]{1,12}", inner, 1..4)
                    .prop_map(|m| Json::Object(m.into_iter().collect())),
            ]
        })
    }

    #[test]
    fn truncated_input_is_an_error_not_a_panic() {
        for bytes in [
            &[0x92u8][..],
            &[0xdb, 0, 0, 0, 9],
            &[0xc7, 5, 0],
            &[0x81, 0x01, 0x02],
        ] {
            assert!(decode(bytes).is_err(), "{bytes:?}");
        }
    }
}
