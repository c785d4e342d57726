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
            Value::Object(members) => {
                // Length and last byte first: most members of a big object differ there, and
                // the full comparison is a call.
                let last = key.as_bytes().last();
                members
                    .iter()
                    .rev()
                    .find(|(k, _)| k.len() == key.len() && k.as_bytes().last() == last && k == key)
                    .map(|(_, v)| v)
            }
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

/// Bytes a string cannot hold as they are in Go's output: the JSON minimum (`"`, `\`, control
/// characters), the HTML characters Go escapes (`<`, `>`, `&`), and 0xE2, the lead byte of
/// U+2028 and U+2029 (which need a closer look).
static NEEDS_ESCAPE: [bool; 256] = controls_and(b"\"\\<>&\xE2");

/// A byte table marking the control characters (below 0x20) and the bytes of `extra`.
const fn controls_and(extra: &[u8]) -> [bool; 256] {
    let mut table = [false; 256];
    let mut b = 0;
    while b < 0x20 {
        table[b] = true;
        b += 1;
    }
    let mut i = 0;
    while i < extra.len() {
        table[extra[i] as usize] = true;
        i += 1;
    }
    table
}

fn write_string(s: &str, out: &mut Vec<u8>) {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    let bytes = s.as_bytes();
    out.reserve(bytes.len() + 2);
    out.push(b'"');
    // Runs of bytes that need no escape are copied whole; only the few that may are looked at
    // one by one (Go escapes `<`, `>`, `&`, U+2028 and U+2029 besides the JSON minimum).
    let mut start = 0;
    let mut i = 0;
    while let Some(skip) = bytes[i..]
        .iter()
        .position(|&b| NEEDS_ESCAPE[usize::from(b)])
    {
        i += skip;
        let b = bytes[i];
        // U+2028 and U+2029 are E2 80 A8 / E2 80 A9; other runes led by E2 are copied.
        let (n, len) = if b == 0xE2 {
            match (bytes.get(i + 1), bytes.get(i + 2)) {
                (Some(0x80), Some(0xA8)) => (0x2028u32, 3),
                (Some(0x80), Some(0xA9)) => (0x2029, 3),
                _ => {
                    i += 1;
                    continue;
                }
            }
        } else {
            (u32::from(b), 1)
        };
        out.extend_from_slice(&bytes[start..i]);
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
    // Validated once: strings inside the valid prefix are then sliced out without validating
    // each again. Past the first invalid byte, each string is validated as it is read, so the
    // error (and its offset) is the one the grammar meets first, as if nothing was validated
    // beforehand.
    let text = match std::str::from_utf8(input) {
        Ok(text) => text,
        Err(e) => std::str::from_utf8(&input[..e.valid_up_to()]).unwrap_or_default(),
    };
    // Fresh stacks if the thread's are gone (a parse from a thread-local destructor).
    let (members, items) = SCRATCH.try_with(std::cell::Cell::take).unwrap_or_default();
    let mut reader = Reader {
        input,
        text,
        pos: 0,
        members,
        items,
    };
    let result = reader.document();
    let Reader {
        mut members,
        mut items,
        ..
    } = reader;
    if members.capacity() <= SCRATCH_KEPT && items.capacity() <= SCRATCH_KEPT {
        // Left over after an error.
        members.clear();
        items.clear();
        let _ = SCRATCH.try_with(|scratch| scratch.set((members, items)));
    }
    result
}

/// The most members or items of the readers' stacks a thread keeps between bodies (at most
/// 88 KiB; a CLI create body needs about 100 members).
const SCRATCH_KEPT: usize = 1024;

/// A [`Reader`]'s stacks of members and items.
type Stacks = (Vec<(String, Value)>, Vec<Value>);

thread_local! {
    /// The stacks of the last [`Reader`] on this thread, kept for the next, so a body costs no
    /// allocation besides its own values.
    static SCRATCH: std::cell::Cell<Stacks> = const { std::cell::Cell::new((Vec::new(), Vec::new())) };
}

/// Bytes that end a run of plain string content: the closing quote, an escape, a control
/// character (refused).
static STRING_STOP: [bool; 256] = controls_and(b"\"\\");

struct Reader<'a> {
    input: &'a [u8],
    /// The longest prefix of `input` that is valid UTF-8.
    text: &'a str,
    pos: usize,
    /// Members of the objects being read, innermost last: each object takes its own off the
    /// top when it ends, so it is allocated once, at its final size.
    members: Vec<(String, Value)>,
    /// The same for arrays.
    items: Vec<Value>,
}

impl Reader<'_> {
    fn document(&mut self) -> Result<Value, JsonError> {
        if self.input.starts_with(b"\xEF\xBB\xBF") {
            return Err(self.error("a byte order mark is not allowed"));
        }
        self.skip_whitespace();
        let value = self.value(0)?;
        self.skip_whitespace();
        if self.pos != self.input.len() {
            return Err(self.error("unexpected data after the JSON value"));
        }
        Ok(value)
    }

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
        self.skip_whitespace();
        if self.peek() == Some(b']') {
            self.pos += 1;
            return Ok(Value::Array(Vec::new()));
        }
        let base = self.items.len();
        loop {
            self.skip_whitespace();
            let item = self.value(depth)?;
            self.items.push(item);
            self.skip_whitespace();
            match self.peek() {
                Some(b',') => self.pos += 1,
                Some(b']') => {
                    self.pos += 1;
                    return Ok(Value::Array(self.items.drain(base..).collect()));
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
        self.skip_whitespace();
        if self.peek() == Some(b'}') {
            self.pos += 1;
            return Ok(Value::Object(Vec::new()));
        }
        let base = self.members.len();
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
            self.members.push((key, value));
            self.skip_whitespace();
            match self.peek() {
                Some(b',') => self.pos += 1,
                Some(b'}') => {
                    self.pos += 1;
                    return Ok(Value::Object(self.members.drain(base..).collect()));
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
        let text = match self.text.get(start..self.pos) {
            Some(text) => text,
            None => std::str::from_utf8(&self.input[start..self.pos])
                .map_err(|_| self.error("invalid number"))?,
        };
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

    /// `input[start..end]`, string content, as text: sliced from the validated prefix when it
    /// lies inside it, else validated here.
    fn str_at(&self, start: usize, end: usize) -> Result<&str, JsonError> {
        if let Some(s) = self.text.get(start..end) {
            return Ok(s);
        }
        std::str::from_utf8(&self.input[start..end]).map_err(|e| JsonError {
            offset: start + e.valid_up_to(),
            message: "invalid UTF-8 in string".to_owned(),
        })
    }

    /// The end of the run of plain string bytes starting at `self.pos`.
    fn run_end(&self) -> usize {
        let rest = &self.input[self.pos..];
        self.pos
            + rest
                .iter()
                .position(|&b| STRING_STOP[usize::from(b)])
                .unwrap_or(rest.len())
    }

    fn string(&mut self) -> Result<String, JsonError> {
        self.pos += 1; // the opening quote
        let end = self.run_end();
        // The common case: no escape, one allocation of the exact size (none when empty).
        if self.input.get(end) == Some(&b'"') {
            let out = self.str_at(self.pos, end)?.to_owned();
            self.pos = end + 1;
            return Ok(out);
        }
        let mut out = String::new();
        loop {
            // Copy the longest run of plain bytes at once, validating it as UTF-8.
            let run_start = self.pos;
            self.pos = self.run_end();
            out.push_str(self.str_at(run_start, self.pos)?);
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
    fn invalid_utf8_is_found_where_the_grammar_reaches_it() {
        // A grammar error before the invalid byte is the one reported.
        let e = parse(b"{\"a\":1,} \"\xff\"").unwrap_err();
        assert_eq!(
            (e.offset, e.message.as_str()),
            (7, "expected a string key in object")
        );
        let e = parse(b"[\"ok\", 1 \xff]").unwrap_err();
        assert_eq!(
            (e.offset, e.message.as_str()),
            (9, "expected `,` or `]` in array")
        );
        // Inside a string, after valid strings and escapes: at the invalid byte.
        let e = parse(b"[\"\xc3\xa9\",\"a\\n\xe2\x82\"]").unwrap_err();
        assert_eq!(
            (e.offset, e.message.as_str()),
            (10, "invalid UTF-8 in string")
        );
        let e = parse(b"{\"k\xff\":1}").unwrap_err();
        assert_eq!(
            (e.offset, e.message.as_str()),
            (3, "invalid UTF-8 in string")
        );
        // Outside strings, a non-ASCII byte is a grammar error.
        assert_eq!(
            parse(b"[1,\xff]").unwrap_err().message,
            "unexpected character"
        );
        assert_eq!(
            parse(b"\"\xc3\xa9\"").unwrap(),
            Value::String("\u{e9}".into())
        );
    }

    #[test]
    fn a_failed_parse_leaves_nothing_behind_for_the_next() {
        // The readers' stacks are kept per thread: members of an object cut short by an error
        // must not show up in the next body.
        assert!(parse(br#"{"a":{"b":1,"c":[1,2,{"d":3"#).is_err());
        assert!(parse(br#"[[1,2],[3,"#).is_err());
        assert_eq!(
            parse(br#"{"x":[4,{"y":5}]}"#).unwrap(),
            Value::Object(vec![(
                "x".into(),
                Value::Array(vec![
                    Value::Number("4".into()),
                    Value::Object(vec![("y".into(), Value::Number("5".into()))]),
                ])
            )])
        );
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
    fn escapes_only_the_line_separators_among_runes_led_by_e2() {
        // U+2027, U+20AC, U+2030 share the lead byte with U+2028 and U+2029.
        let v = Value::String("\u{2027}\u{20ac}\u{2028}\u{2030}\u{2029}\u{e2}".into());
        assert_eq!(
            String::from_utf8(v.to_json()).unwrap(),
            "\"\u{2027}\u{20ac}\\u2028\u{2030}\\u2029\u{e2}\""
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
