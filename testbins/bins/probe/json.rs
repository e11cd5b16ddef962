//! probe's JSON writer: values, their encoding, and writing them to
//! stdout. Strings are bytes; see probe.rs's docs for non-UTF-8.

use super::*;

/// A JSON value. Strings are bytes; see probe.rs's docs for non-UTF-8.
pub enum Json {
    Null,
    Bool(bool),
    Int(i64),
    Str(Vec<u8>),
    Arr(Vec<Json>),
    Obj(Vec<(&'static str, Json)>),
    /// An object whose keys are computed (fd numbers, rlimit names).
    Map(Vec<(String, Json)>),
}

impl Json {
    pub fn str(s: impl AsRef<[u8]>) -> Json {
        Json::Str(s.as_ref().to_vec())
    }

    pub fn write(&self, out: &mut Vec<u8>) {
        match self {
            Json::Null => out.extend_from_slice(b"null"),
            Json::Bool(b) => out.extend_from_slice(if *b { b"true" } else { b"false" }),
            Json::Int(n) => out.extend_from_slice(n.to_string().as_bytes()),
            Json::Str(s) => write_str(s, out),
            Json::Arr(items) => {
                out.push(b'[');
                for (i, item) in items.iter().enumerate() {
                    if i > 0 {
                        out.push(b',');
                    }
                    item.write(out);
                }
                out.push(b']');
            }
            Json::Obj(fields) => write_obj(fields.iter().map(|(k, v)| (k.as_bytes(), v)), out),
            Json::Map(fields) => write_obj(fields.iter().map(|(k, v)| (k.as_bytes(), v)), out),
        }
    }
}

pub fn write_obj<'a>(fields: impl Iterator<Item = (&'a [u8], &'a Json)>, out: &mut Vec<u8>) {
    out.push(b'{');
    for (i, (key, value)) in fields.enumerate() {
        if i > 0 {
            out.push(b',');
        }
        write_str(key, out);
        out.push(b':');
        value.write(out);
    }
    out.push(b'}');
}

/// Writes `bytes` as a JSON string (RFC 8259 section 7): `"` and `\` are
/// escaped, control characters become `\n`-style or `\u00XX` escapes, and
/// bytes that are not valid UTF-8 become `\u00XX` (lossy, see probe.rs's docs).
pub fn write_str(bytes: &[u8], out: &mut Vec<u8>) {
    out.push(b'"');
    for chunk in bytes.utf8_chunks() {
        for c in chunk.valid().chars() {
            match c {
                '"' => out.extend_from_slice(b"\\\""),
                '\\' => out.extend_from_slice(b"\\\\"),
                '\n' => out.extend_from_slice(b"\\n"),
                '\r' => out.extend_from_slice(b"\\r"),
                '\t' => out.extend_from_slice(b"\\t"),
                c if (c as u32) < 0x20 || c == '\u{7f}' => write_u_escape(c as u32, out),
                c => out.extend_from_slice(c.encode_utf8(&mut [0; 4]).as_bytes()),
            }
        }
        for &b in chunk.invalid() {
            write_u_escape(u32::from(b), out);
        }
    }
    out.push(b'"');
}

pub fn write_u_escape(code: u32, out: &mut Vec<u8>) {
    out.extend_from_slice(format!("\\u{code:04x}").as_bytes());
}

pub fn emit_json(value: &Json) -> Res {
    let mut buf = Vec::new();
    value.write(&mut buf);
    buf.push(b'\n');
    emit(&buf)
}

pub fn emit(bytes: &[u8]) -> Res {
    let mut out = io::stdout().lock();
    out.write_all(bytes)
        .and_then(|()| out.flush())
        .map_err(|e| Fail::io("write stdout".into(), e))
}
