//! A strict JSON reader for request bodies, built to see what Go's `encoding/json` (the engine's
//! decoder) would see, and to refuse whatever the two could read differently.
//!
//! The reader keeps every object member in order, duplicates included, and the exact text of
//! every number, so the checks in [`crate::schema`] can find keys that collide under Go's
//! case-insensitive matching. Where Go is lenient in a way that could hide something from a
//! checker, this reader refuses instead:
//! - invalid UTF-8 and lone UTF-16 surrogate escapes (Go silently turns both into U+FFFD);
//! - data after the first value (Go's `Decoder.Decode`, which the engine uses, ignores it);
//! - a byte order mark, control characters in strings, nesting deeper than [`MAX_DEPTH`].

use std::fmt;

/// Nesting deeper than this is refused. Engine request bodies nest about six levels deep.
pub const MAX_DEPTH: usize = 64;

/// A JSON value with object members kept in order, duplicates included.
#[derive(Debug, Clone, PartialEq)]
pub enum Value {
    /// `null`
    Null,
    /// `true` or `false`
    Bool(bool),
    /// A number, as written (already checked against the JSON grammar).
    Number(String),
    /// A string, unescaped.
    String(String),
    /// An array.
    Array(Vec<Value>),
    /// An object's members in document order.
    Object(Vec<(String, Value)>),
}

impl Value {
    /// The JSON type name, for messages.
    #[must_use]
    pub fn kind(&self) -> &'static str {
        match self {
            Value::Null => "null",
            Value::Bool(_) => "a boolean",
            Value::Number(_) => "a number",
            Value::String(_) => "a string",
            Value::Array(_) => "an array",
            Value::Object(_) => "an object",
        }
    }

    /// The member named exactly `key` (the last one, as a Go map would keep).
    #[must_use]
    pub fn get(&self, key: &str) -> Option<&Value> {
        match self {
            Value::Object(members) => members.iter().rev().find(|(k, _)| k == key).map(|(_, v)| v),
            _ => None,
        }
    }

    /// The string, if this is one.
    #[must_use]
    pub fn as_str(&self) -> Option<&str> {
        match self {
            Value::String(s) => Some(s),
            _ => None,
        }
    }

    /// The boolean, if this is one.
    #[must_use]
    pub fn as_bool(&self) -> Option<bool> {
        match self {
            Value::Bool(b) => Some(*b),
            _ => None,
        }
    }

    /// The elements, if this is an array.
    #[must_use]
    pub fn as_array(&self) -> Option<&[Value]> {
        match self {
            Value::Array(items) => Some(items),
            _ => None,
        }
    }

    /// The members, if this is an object.
    #[must_use]
    pub fn as_object(&self) -> Option<&[(String, Value)]> {
        match self {
            Value::Object(members) => Some(members),
            _ => None,
        }
    }

    /// Compact JSON text. Strings are escaped the way Go escapes them (`<`, `>`, `&` and the
    /// line separators as `\u` escapes), so the engine reads back exactly this value.
    #[must_use]
    pub fn to_json(&self) -> Vec<u8> {
        // Create bodies from the CLI are 2-3 KiB: one allocation in the common case.
        let mut out = Vec::with_capacity(4096);
        self.write(&mut out);
        out
    }

    fn write(&self, out: &mut Vec<u8>) {
        match self {
            Value::Null => out.extend_from_slice(b"null"),
            Value::Bool(true) => out.extend_from_slice(b"true"),
            Value::Bool(false) => out.extend_from_slice(b"false"),
            Value::Number(n) => out.extend_from_slice(n.as_bytes()),
            Value::String(s) => write_string(s, out),
            Value::Array(items) => {
                out.push(b'[');
                for (i, item) in items.iter().enumerate() {
                    if i > 0 {
                        out.push(b',');
                    }
                    item.write(out);
                }
                out.push(b']');
            }
            Value::Object(members) => {
                out.push(b'{');
                for (i, (key, value)) in members.iter().enumerate() {
                    if i > 0 {
                        out.push(b',');
                    }
                    write_string(key, out);
                    out.push(b':');
                    value.write(out);
                }
                out.push(b'}');
            }
        }
    }
}

fn write_string(s: &str, out: &mut Vec<u8>) {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    out.push(b'"');
    let bytes = s.as_bytes();
    // Runs of bytes that need no escape are copied whole; only the few that do are looked at
    // one by one (Go escapes `<`, `>`, `&`, U+2028 and U+2029 besides the JSON minimum).
    let mut start = 0;
    let mut i = 0;
    while i < bytes.len() {
        let b = bytes[i];
        let special = b < 0x20 || matches!(b, b'"' | b'\\' | b'<' | b'>' | b'&')
            // U+2028 and U+2029 are E2 80 A8 / E2 80 A9.
            || (b == 0xE2
                && bytes.get(i + 1) == Some(&0x80)
                && matches!(bytes.get(i + 2), Some(0xA8 | 0xA9)));
        if !special {
            i += 1;
            continue;
        }
        out.extend_from_slice(&bytes[start..i]);
        let (n, len) = if b == 0xE2 {
            (
                if bytes[i + 2] == 0xA8 {
                    0x2028u32
                } else {
                    0x2029
                },
                3,
            )
        } else {
            (u32::from(b), 1)
        };
        match b {
            b'"' => out.extend_from_slice(b"\\\""),
            b'\\' => out.extend_from_slice(b"\\\\"),
            b'\n' => out.extend_from_slice(b"\\n"),
            b'\r' => out.extend_from_slice(b"\\r"),
            b'\t' => out.extend_from_slice(b"\\t"),
            _ => {
                out.extend_from_slice(b"\\u");
                for shift in [12, 8, 4, 0] {
                    out.push(HEX[((n >> shift) & 0xf) as usize]);
                }
            }
        }
        i += len;
        start = i;
    }
    out.extend_from_slice(&bytes[start..]);
    out.push(b'"');
}

/// Why a body is not JSON this reader accepts, and where.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JsonError {
    /// Byte offset of the problem.
    pub offset: usize,
    /// What is wrong, lowercase.
    pub message: String,
}

impl fmt::Display for JsonError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} at byte {}", self.message, self.offset)
    }
}

impl std::error::Error for JsonError {}

/// Parse exactly one JSON value, with nothing but whitespace after it.
///
/// # Errors
/// Any departure from RFC 8259, and the leniencies of Go listed in the module docs.
pub fn parse(input: &[u8]) -> Result<Value, JsonError> {
    let mut reader = Reader { input, pos: 0 };
    if input.starts_with(b"\xEF\xBB\xBF") {
        return Err(reader.error("a byte order mark is not allowed"));
    }
    reader.skip_whitespace();
    let value = reader.value(0)?;
    reader.skip_whitespace();
    if reader.pos != input.len() {
        return Err(reader.error("unexpected data after the JSON value"));
    }
    Ok(value)
}

struct Reader<'a> {
    input: &'a [u8],
    pos: usize,
}

impl Reader<'_> {
    fn error(&self, message: &str) -> JsonError {
        JsonError {
            offset: self.pos,
            message: message.to_owned(),
        }
    }

    fn peek(&self) -> Option<u8> {
        self.input.get(self.pos).copied()
    }

    fn skip_whitespace(&mut self) {
        while let Some(b' ' | b'\t' | b'\n' | b'\r') = self.peek() {
            self.pos += 1;
        }
    }

    fn literal(&mut self, word: &[u8], value: Value) -> Result<Value, JsonError> {
        if self.input[self.pos..].starts_with(word) {
            self.pos += word.len();
            Ok(value)
        } else {
            Err(self.error("invalid literal"))
        }
    }

    fn value(&mut self, depth: usize) -> Result<Value, JsonError> {
        match self.peek() {
            None => Err(self.error("unexpected end of input")),
            Some(b'n') => self.literal(b"null", Value::Null),
            Some(b't') => self.literal(b"true", Value::Bool(true)),
            Some(b'f') => self.literal(b"false", Value::Bool(false)),
            Some(b'"') => Ok(Value::String(self.string()?)),
            Some(b'-' | b'0'..=b'9') => self.number(),
            Some(b'[') => self.array(depth + 1),
            Some(b'{') => self.object(depth + 1),
            Some(_) => Err(self.error("unexpected character")),
        }
    }

    fn array(&mut self, depth: usize) -> Result<Value, JsonError> {
        if depth > MAX_DEPTH {
            return Err(self.error("nesting too deep"));
        }
        self.pos += 1;
        let mut items = Vec::new();
        self.skip_whitespace();
        if self.peek() == Some(b']') {
            self.pos += 1;
            return Ok(Value::Array(items));
        }
        loop {
            self.skip_whitespace();
            items.push(self.value(depth)?);
            self.skip_whitespace();
            match self.peek() {
                Some(b',') => self.pos += 1,
                Some(b']') => {
                    self.pos += 1;
                    return Ok(Value::Array(items));
                }
                _ => return Err(self.error("expected `,` or `]` in array")),
            }
        }
    }

    fn object(&mut self, depth: usize) -> Result<Value, JsonError> {
        if depth > MAX_DEPTH {
            return Err(self.error("nesting too deep"));
        }
        self.pos += 1;
        let mut members = Vec::new();
        self.skip_whitespace();
        if self.peek() == Some(b'}') {
            self.pos += 1;
            return Ok(Value::Object(members));
        }
        loop {
            self.skip_whitespace();
            if self.peek() != Some(b'"') {
                return Err(self.error("expected a string key in object"));
            }
            let key = self.string()?;
            self.skip_whitespace();
            if self.peek() != Some(b':') {
                return Err(self.error("expected `:` after object key"));
            }
            self.pos += 1;
            self.skip_whitespace();
            let value = self.value(depth)?;
            members.push((key, value));
            self.skip_whitespace();
            match self.peek() {
                Some(b',') => self.pos += 1,
                Some(b'}') => {
                    self.pos += 1;
                    return Ok(Value::Object(members));
                }
                _ => return Err(self.error("expected `,` or `}` in object")),
            }
        }
    }

    fn number(&mut self) -> Result<Value, JsonError> {
        let start = self.pos;
        if self.peek() == Some(b'-') {
            self.pos += 1;
        }
        match self.peek() {
            Some(b'0') => self.pos += 1,
            Some(b'1'..=b'9') => self.digits(),
            _ => return Err(self.error("invalid number")),
        }
        if self.peek() == Some(b'.') {
            self.pos += 1;
            if !matches!(self.peek(), Some(b'0'..=b'9')) {
                return Err(self.error("invalid number"));
            }
            self.digits();
        }
        if let Some(b'e' | b'E') = self.peek() {
            self.pos += 1;
            if let Some(b'+' | b'-') = self.peek() {
                self.pos += 1;
            }
            if !matches!(self.peek(), Some(b'0'..=b'9')) {
                return Err(self.error("invalid number"));
            }
            self.digits();
        }
        // The grammar above admits only ASCII, so this cannot fail.
        let text = std::str::from_utf8(&self.input[start..self.pos])
            .map_err(|_| self.error("invalid number"))?;
        Ok(Value::Number(text.to_owned()))
    }

    fn digits(&mut self) {
        while let Some(b'0'..=b'9') = self.peek() {
            self.pos += 1;
        }
    }

    fn hex4(&mut self) -> Result<u32, JsonError> {
        let Some(digits) = self.input.get(self.pos..self.pos + 4) else {
            return Err(self.error("truncated \\u escape"));
        };
        let mut n = 0u32;
        for &d in digits {
            let v = match d {
                b'0'..=b'9' => d - b'0',
                b'a'..=b'f' => d - b'a' + 10,
                b'A'..=b'F' => d - b'A' + 10,
                _ => return Err(self.error("invalid \\u escape")),
            };
            n = n * 16 + u32::from(v);
        }
        self.pos += 4;
        Ok(n)
    }

    fn string(&mut self) -> Result<String, JsonError> {
        self.pos += 1; // the opening quote
        let mut out = String::new();
        loop {
            // Copy the longest run of plain bytes at once, validating it as UTF-8.
            let run_start = self.pos;
            while let Some(b) = self.peek() {
                if b == b'"' || b == b'\\' || b < 0x20 {
                    break;
                }
                self.pos += 1;
            }
            let run = &self.input[run_start..self.pos];
            match std::str::from_utf8(run) {
                Ok(s) => out.push_str(s),
                Err(e) => {
                    self.pos = run_start + e.valid_up_to();
                    return Err(self.error("invalid UTF-8 in string"));
                }
            }
            match self.peek() {
                None => return Err(self.error("unterminated string")),
                Some(b'"') => {
                    self.pos += 1;
                    return Ok(out);
                }
                Some(b'\\') => {
                    self.pos += 1;
                    let Some(escape) = self.peek() else {
                        return Err(self.error("unterminated string"));
                    };
                    self.pos += 1;
                    match escape {
                        b'"' => out.push('"'),
                        b'\\' => out.push('\\'),
                        b'/' => out.push('/'),
                        b'b' => out.push('\u{8}'),
                        b'f' => out.push('\u{c}'),
                        b'n' => out.push('\n'),
                        b'r' => out.push('\r'),
                        b't' => out.push('\t'),
                        b'u' => {
                            let unit = self.hex4()?;
                            let code = if (0xD800..0xDC00).contains(&unit) {
                                if self.input.get(self.pos..self.pos + 2) != Some(b"\\u") {
                                    return Err(self.error("lone surrogate in \\u escape"));
                                }
                                self.pos += 2;
                                let low = self.hex4()?;
                                if !(0xDC00..0xE000).contains(&low) {
                                    return Err(self.error("lone surrogate in \\u escape"));
                                }
                                0x10000 + ((unit - 0xD800) << 10) + (low - 0xDC00)
                            } else if (0xDC00..0xE000).contains(&unit) {
                                return Err(self.error("lone surrogate in \\u escape"));
                            } else {
                                unit
                            };
                            let c = char::from_u32(code)
                                .ok_or_else(|| self.error("invalid \\u escape"))?;
                            out.push(c);
                        }
                        _ => return Err(self.error("invalid escape in string")),
                    }
                }
                Some(_) => return Err(self.error("control character in string")),
            }
        }
    }
}

/// The key Go's `encoding/json` matches struct fields by: ASCII letters upper-cased, every other
/// rune replaced by the smallest rune of its Unicode simple-fold orbit. Two keys with the same
/// folded form reach the same struct field. Struct field names here are all ASCII, and the only
/// non-ASCII runes whose orbit holds an ASCII letter are U+017F (ſ, folds to `S`) and U+212A
/// (Kelvin sign, folds to `K`); every other non-ASCII rune is kept as it is, which can only make a
/// key unknown, never make it match a field.
#[must_use]
pub fn go_fold(key: &str) -> String {
    key.chars()
        .map(|c| match c {
            'a'..='z' => c.to_ascii_uppercase(),
            '\u{17F}' => 'S',
            '\u{212A}' => 'K',
            c => c,
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn err(input: &str) -> String {
        parse(input.as_bytes()).unwrap_err().message
    }

    #[test]
    fn keeps_duplicates_order_and_number_text() {
        let v = parse(br#"{"a":1,"A":2.50,"a":-0e+1}"#).unwrap();
        assert_eq!(
            v,
            Value::Object(vec![
                ("a".into(), Value::Number("1".into())),
                ("A".into(), Value::Number("2.50".into())),
                ("a".into(), Value::Number("-0e+1".into())),
            ])
        );
        assert_eq!(v.get("a"), Some(&Value::Number("-0e+1".into())));
    }

    #[test]
    fn decodes_escapes_in_keys_and_values() {
        let v = parse(br#"{"Privil\u0065ged":"\ud83d\ude00\n\/"}"#).unwrap();
        assert_eq!(v.get("Privileged").unwrap().as_str(), Some("\u{1F600}\n/"));
    }

    #[test]
    fn refuses_what_go_would_read_leniently() {
        assert_eq!(err("{} {}"), "unexpected data after the JSON value");
        assert_eq!(err("\u{FEFF}{}"), "a byte order mark is not allowed");
        assert_eq!(err(r#""\ud800""#), "lone surrogate in \\u escape");
        assert_eq!(err(r#""\udc00x""#), "lone surrogate in \\u escape");
        assert_eq!(err(r#""\ud800\u0041""#), "lone surrogate in \\u escape");
        assert_eq!(err("\"a\tb\""), "control character in string");
        assert_eq!(
            parse(b"\"\xff\"").unwrap_err().message,
            "invalid UTF-8 in string"
        );
        assert_eq!(parse(b"\"ab\xc3\"").unwrap_err().offset, 3);
    }

    #[test]
    fn refuses_bad_grammar() {
        for bad in [
            "",
            "{",
            "[1,]",
            "{\"a\":1,}",
            "01",
            "1.",
            "-",
            "1e",
            "+1",
            ".5",
            "tru",
            "nul",
            "{'a':1}",
            "{a:1}",
            "[1 2]",
            "\"\\x\"",
            "\"abc",
            "NaN",
            "Infinity",
            "\u{b}1",
        ] {
            assert!(parse(bad.as_bytes()).is_err(), "{bad:?} was accepted");
        }
    }

    #[test]
    fn nesting_is_bounded() {
        let ok = format!("{}{}", "[".repeat(MAX_DEPTH), "]".repeat(MAX_DEPTH));
        assert!(parse(ok.as_bytes()).is_ok());
        let deep = format!("{}{}", "[".repeat(MAX_DEPTH + 1), "]".repeat(MAX_DEPTH + 1));
        assert_eq!(err(&deep), "nesting too deep");
        // Far deeper than the stack could take if the bound were missing.
        let very = "[".repeat(1_000_000);
        assert_eq!(err(&very), "nesting too deep");
    }

    #[test]
    fn writes_what_it_reads() {
        let text = r#"{"a":[true,false,null,-1.5e3,"x\"\\<>&\u2028\u0001é"],"b":{}}"#;
        let v = parse(text.as_bytes()).unwrap();
        let out = v.to_json();
        assert_eq!(parse(&out).unwrap(), v);
        assert_eq!(
            String::from_utf8(out).unwrap(),
            r#"{"a":[true,false,null,-1.5e3,"x\"\\\u003c\u003e\u0026\u2028\u0001é"],"b":{}}"#
        );
    }

    #[test]
    fn folds_like_go() {
        assert_eq!(go_fold("privileged"), "PRIVILEGED");
        assert_eq!(go_fold("Privileged"), go_fold("PRIVILEGED"));
        assert_eq!(go_fold("\u{17F}ysctls"), go_fold("Sysctls"));
        assert_eq!(go_fold("\u{212A}ernelMemory"), go_fold("KernelMemory"));
        // Dotless and dotted i do not fold to ASCII i in Go's simple folding.
        assert_ne!(go_fold("Pr\u{131}vileged"), go_fold("Privileged"));
        assert_ne!(go_fold("Pr\u{130}vileged"), go_fold("Privileged"));
    }
}
