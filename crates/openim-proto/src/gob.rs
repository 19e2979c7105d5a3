//! A small, strict implementation of Go's `encoding/gob` for the flat structs OpenIM's WebSocket
//! gateway exchanges with the Go and Python SDKs (`GeneralWsReq`, `GeneralWsResp`).
//!
//! Every frame from those clients is a fresh gob stream: one type-definition message followed by
//! one value message. We decode the type definition (so field order and names are read from the
//! wire, not assumed) and support the scalar kinds these envelopes use: bool, int, uint, string and
//! `[]byte`. Anything else is rejected with a [`GobError`] rather than guessed at.
//!
//! No maintained Rust crate implements gob, and the subset needed is about 300 lines; see
//! ARCHITECTURE.md.

use std::collections::HashMap;

/// Built-in gob type ids (`encoding/gob/type.go`).
pub mod type_id {
    pub const BOOL: i64 = 1;
    pub const INT: i64 = 2;
    pub const UINT: i64 = 3;
    pub const BYTES: i64 = 5;
    pub const STRING: i64 = 6;
    /// The id Go's encoder gives the first user-defined struct it sends (65: it registers one
    /// internal type first). The Python SDK uses 64; decoders read whatever the definition says.
    pub const FIRST_STRUCT: i64 = 65;
}

/// A decoded scalar field value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum GobValue {
    Bool(bool),
    Int(i64),
    Uint(u64),
    Bytes(Vec<u8>),
    String(String),
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum GobError {
    #[error("gob: unexpected end of data")]
    UnexpectedEof,
    #[error("gob: integer too large")]
    IntegerOverflow,
    #[error("gob: value of undefined type id {0}")]
    UndefinedType(i64),
    #[error("gob: unsupported type definition (only flat structs are accepted)")]
    UnsupportedTypeDefinition,
    #[error("gob: field {0} has an unsupported type id {1}")]
    UnsupportedFieldType(String, i64),
    #[error("gob: field number {0} out of range")]
    BadFieldNumber(usize),
    #[error("gob: string is not valid UTF-8")]
    InvalidUtf8,
    #[error("gob: no value message in stream")]
    NoValue,
    #[error("gob: message length {0} exceeds the frame")]
    BadLength(u64),
}

/// One field of a struct type definition: its name and gob type id.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FieldDef {
    pub name: String,
    pub type_id: i64,
}

/// A struct type as defined on the wire.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StructDef {
    pub name: String,
    pub fields: Vec<FieldDef>,
}

/// Decodes a gob stream holding struct type definitions and exactly the first struct value that
/// follows them; returns that value's non-zero fields by name (gob omits zero values).
pub fn decode_struct(data: &[u8]) -> Result<(StructDef, HashMap<String, GobValue>), GobError> {
    let mut reader = Reader { buf: data, pos: 0 };
    let mut types: HashMap<i64, StructDef> = HashMap::new();
    while !reader.is_empty() {
        let len = reader.uint()?;
        let len_usize = usize::try_from(len).map_err(|_| GobError::BadLength(len))?;
        if len_usize > reader.remaining() {
            return Err(GobError::BadLength(len));
        }
        let mut msg = Reader { buf: &reader.buf[reader.pos..reader.pos + len_usize], pos: 0 };
        reader.pos += len_usize;
        let id = msg.int()?;
        if id < 0 {
            let def = read_wire_type(&mut msg)?;
            types.insert(-id, def);
            continue;
        }
        let def = types.get(&id).ok_or(GobError::UndefinedType(id))?.clone();
        let values = read_struct_value(&mut msg, &def)?;
        return Ok((def, values));
    }
    Err(GobError::NoValue)
}

/// Encodes `fields` (name, value) as a complete gob stream: the type definition of a struct named
/// `type_name` whose fields appear in the given order, then its value. Zero values are omitted
/// from the value message, as Go does.
pub fn encode_struct(type_name: &str, fields: &[(&str, GobValue)]) -> Vec<u8> {
    let id = type_id::FIRST_STRUCT;
    let mut out = Vec::with_capacity(128 + fields.iter().map(|(_, v)| value_len(v)).sum::<usize>());

    // Type definition: wireType{StructT: &structType{CommonType{Name, Id}, Field: []fieldType}}.
    let mut def = Writer::default();
    def.int(-id);
    def.uint(3); // wireType.StructT
    def.uint(1); // structType.CommonType
    def.uint(1); // CommonType.Name
    def.string(type_name.as_bytes());
    def.uint(1); // CommonType.Id
    def.int(id);
    def.uint(0); // end CommonType
    def.uint(1); // structType.Field
    def.uint(fields.len() as u64);
    for (name, value) in fields {
        def.uint(1); // fieldType.Name
        def.string(name.as_bytes());
        def.uint(1); // fieldType.Id
        def.int(value_type_id(value));
        def.uint(0); // end fieldType
    }
    def.uint(0); // end structType
    def.uint(0); // end wireType
    write_message(&mut out, &def.buf);

    let mut val = Writer::default();
    val.int(id);
    let mut last = 0usize;
    for (index, (_, value)) in fields.iter().enumerate() {
        if is_zero(value) {
            continue;
        }
        val.uint((index + 1 - last) as u64);
        last = index + 1;
        match value {
            GobValue::Bool(b) => val.uint(u64::from(*b)),
            GobValue::Int(i) => val.int(*i),
            GobValue::Uint(u) => val.uint(*u),
            GobValue::Bytes(b) => val.string(b),
            GobValue::String(s) => val.string(s.as_bytes()),
        }
    }
    val.uint(0);
    write_message(&mut out, &val.buf);
    out
}

fn value_len(v: &GobValue) -> usize {
    match v {
        GobValue::Bytes(b) => b.len() + 10,
        GobValue::String(s) => s.len() + 10,
        _ => 10,
    }
}

fn value_type_id(v: &GobValue) -> i64 {
    match v {
        GobValue::Bool(_) => type_id::BOOL,
        GobValue::Int(_) => type_id::INT,
        GobValue::Uint(_) => type_id::UINT,
        GobValue::Bytes(_) => type_id::BYTES,
        GobValue::String(_) => type_id::STRING,
    }
}

fn is_zero(v: &GobValue) -> bool {
    match v {
        GobValue::Bool(b) => !b,
        GobValue::Int(i) => *i == 0,
        GobValue::Uint(u) => *u == 0,
        GobValue::Bytes(b) => b.is_empty(),
        GobValue::String(s) => s.is_empty(),
    }
}

fn write_message(out: &mut Vec<u8>, body: &[u8]) {
    let mut len = Writer::default();
    len.uint(body.len() as u64);
    out.extend_from_slice(&len.buf);
    out.extend_from_slice(body);
}

/// Reads a `wireType` value; only `StructT` with scalar fields is accepted.
fn read_wire_type(msg: &mut Reader<'_>) -> Result<StructDef, GobError> {
    let mut def = None;
    let mut field = 0usize;
    loop {
        let delta = msg.uint()? as usize;
        if delta == 0 {
            break;
        }
        field = field.checked_add(delta).ok_or(GobError::BadFieldNumber(usize::MAX))?;
        if field != 3 {
            return Err(GobError::UnsupportedTypeDefinition);
        }
        def = Some(read_struct_type(msg)?);
    }
    def.ok_or(GobError::UnsupportedTypeDefinition)
}

fn read_struct_type(msg: &mut Reader<'_>) -> Result<StructDef, GobError> {
    let mut def = StructDef { name: String::new(), fields: Vec::new() };
    let mut field = 0usize;
    loop {
        let delta = msg.uint()? as usize;
        if delta == 0 {
            return Ok(def);
        }
        field = field.checked_add(delta).ok_or(GobError::BadFieldNumber(usize::MAX))?;
        match field {
            1 => {
                // CommonType{Name string, Id int}
                let mut f = 0usize;
                loop {
                    let d = msg.uint()? as usize;
                    if d == 0 {
                        break;
                    }
                    f = f.checked_add(d).ok_or(GobError::BadFieldNumber(usize::MAX))?;
                    match f {
                        1 => def.name = msg.utf8()?,
                        2 => {
                            msg.int()?;
                        }
                        _ => return Err(GobError::UnsupportedTypeDefinition),
                    }
                }
            }
            2 => {
                let count = msg.uint()?;
                for _ in 0..count {
                    let mut fd = FieldDef { name: String::new(), type_id: 0 };
                    let mut f = 0usize;
                    loop {
                        let d = msg.uint()? as usize;
                        if d == 0 {
                            break;
                        }
                        f = f.checked_add(d).ok_or(GobError::BadFieldNumber(usize::MAX))?;
                        match f {
                            1 => fd.name = msg.utf8()?,
                            2 => fd.type_id = msg.int()?,
                            _ => return Err(GobError::UnsupportedTypeDefinition),
                        }
                    }
                    def.fields.push(fd);
                }
            }
            _ => return Err(GobError::UnsupportedTypeDefinition),
        }
    }
}

fn read_struct_value(msg: &mut Reader<'_>, def: &StructDef) -> Result<HashMap<String, GobValue>, GobError> {
    let mut values = HashMap::with_capacity(def.fields.len());
    let mut field = 0usize;
    loop {
        let delta = msg.uint()? as usize;
        if delta == 0 {
            return Ok(values);
        }
        field = field.checked_add(delta).ok_or(GobError::BadFieldNumber(usize::MAX))?;
        let fd = def.fields.get(field - 1).ok_or(GobError::BadFieldNumber(field))?;
        let value = match fd.type_id {
            type_id::BOOL => GobValue::Bool(msg.uint()? != 0),
            type_id::INT => GobValue::Int(msg.int()?),
            type_id::UINT => GobValue::Uint(msg.uint()?),
            type_id::BYTES => GobValue::Bytes(msg.bytes()?.to_vec()),
            type_id::STRING => GobValue::String(msg.utf8()?),
            other => return Err(GobError::UnsupportedFieldType(fd.name.clone(), other)),
        };
        values.insert(fd.name.clone(), value);
    }
}

struct Reader<'a> {
    buf: &'a [u8],
    pos: usize,
}

impl<'a> Reader<'a> {
    fn is_empty(&self) -> bool {
        self.pos >= self.buf.len()
    }

    fn remaining(&self) -> usize {
        self.buf.len() - self.pos
    }

    fn byte(&mut self) -> Result<u8, GobError> {
        let b = *self.buf.get(self.pos).ok_or(GobError::UnexpectedEof)?;
        self.pos += 1;
        Ok(b)
    }

    /// Gob unsigned integer: one byte below 128, else a negated byte count and big-endian bytes.
    fn uint(&mut self) -> Result<u64, GobError> {
        let first = self.byte()?;
        if first < 0x80 {
            return Ok(u64::from(first));
        }
        let n = (!first).wrapping_add(1) as usize;
        if n > 8 {
            return Err(GobError::IntegerOverflow);
        }
        let mut v = 0u64;
        for _ in 0..n {
            v = (v << 8) | u64::from(self.byte()?);
        }
        Ok(v)
    }

    /// Gob signed integer: the low bit says whether the rest is complemented.
    fn int(&mut self) -> Result<i64, GobError> {
        let u = self.uint()?;
        Ok(if u & 1 == 1 { !((u >> 1) as i64) } else { (u >> 1) as i64 })
    }

    fn bytes(&mut self) -> Result<&'a [u8], GobError> {
        let len = self.uint()?;
        let len_usize = usize::try_from(len).map_err(|_| GobError::BadLength(len))?;
        if len_usize > self.remaining() {
            return Err(GobError::BadLength(len));
        }
        let s = &self.buf[self.pos..self.pos + len_usize];
        self.pos += len_usize;
        Ok(s)
    }

    fn utf8(&mut self) -> Result<String, GobError> {
        String::from_utf8(self.bytes()?.to_vec()).map_err(|_| GobError::InvalidUtf8)
    }
}

#[derive(Default)]
struct Writer {
    buf: Vec<u8>,
}

impl Writer {
    fn uint(&mut self, v: u64) {
        if v < 0x80 {
            self.buf.push(v as u8);
            return;
        }
        let bytes = v.to_be_bytes();
        let skip = bytes.iter().take_while(|b| **b == 0).count();
        let n = 8 - skip;
        self.buf.push((!(n as u8)).wrapping_add(1));
        self.buf.extend_from_slice(&bytes[skip..]);
    }

    fn int(&mut self, v: i64) {
        let u = if v < 0 { ((!v as u64) << 1) | 1 } else { (v as u64) << 1 };
        self.uint(u);
    }

    fn string(&mut self, s: &[u8]) {
        self.uint(s.len() as u64);
        self.buf.extend_from_slice(s);
    }
}

#[cfg(test)]
mod tests;
