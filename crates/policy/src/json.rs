//! A small strict JSON parser (RFC 8259) that keeps every object member in file order together
//! with its byte position, and reports duplicate keys instead of silently dropping them.
//!
//! `serde_json::Value` keeps only the last of two duplicate keys and forgets positions; policy
//! errors need both. Syntax errors stop the parse (recovery would only produce noise); duplicate
//! keys do not, so every duplicate in a file is reported. Error messages never quote the input,
//! only its position and the key path leading there.

use std::collections::HashMap;
use std::fmt::Write as _;

/// Deepest nesting accepted; Docker's documented settings nest four levels deep.
const MAX_DEPTH: usize = 64;

/// Objects with more members than this detect duplicates with a hash map instead of a scan.
const LINEAR_SCAN_MEMBERS: usize = 12;

/// A parsed JSON value and the byte offset where it starts.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Node {
    pub(crate) pos: usize,
    pub(crate) kind: Kind,
}

#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Kind {
    Null,
    Bool(bool),
    Number(Number),
    String(String),
    Array(Vec<Node>),
    Object(Vec<Member>),
}

/// A JSON number: `int` is set when the literal has no fraction or exponent and fits in an i64.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Number {
    pub(crate) int: Option<i64>,
    pub(crate) float: f64,
}

/// One object member; duplicates after the first are reported and not kept.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Member {
    pub(crate) key: String,
    pub(crate) key_pos: usize,
    pub(crate) value: Node,
}

/// One segment of a key path (`a.b[0].c`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Segment {
    Key(String),
    Index(usize),
}

/// Formats a key path the way diagnostics print it: `proxy.exclude[2]`, `(root)` when empty.
/// Keys that are not plain identifiers are quoted and escaped, and long keys are shortened, so
/// a hostile key cannot inject terminal escapes or flood a log line.
pub(crate) fn format_path(segments: &[Segment]) -> String {
    let mut out = String::new();
    for segment in segments {
        match segment {
            Segment::Key(key) => {
                let plain = !key.is_empty()
                    && key.len() <= 64
                    && key
                        .chars()
                        .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-' || c == '$');
                if plain {
                    if !out.is_empty() {
                        out.push('.');
                    }
                    out.push_str(key);
                } else {
                    out.push('[');
                    out.push_str(&quote_key(key));
                    out.push(']');
                }
            }
            Segment::Index(index) => {
                let _ = write!(out, "[{index}]");
            }
        }
    }
    if out.is_empty() {
        out.push_str("(root)");
    }
    out
}

/// A key quoted as a JSON string, ASCII-only, cut at 64 characters.
pub(crate) fn quote_key(key: &str) -> String {
    let mut out = String::from("\"");
    for (count, c) in key.chars().enumerate() {
        if count == 64 {
            out.push('…');
            break;
        }
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            ' '..='~' => out.push(c),
            _ => {
                let mut buf = [0u16; 2];
                for unit in c.encode_utf16(&mut buf) {
                    let _ = write!(out, "\\u{unit:04x}");
                }
            }
        }
    }
    out.push('"');
    out
}

/// A syntax error: fatal, stops the parse.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct SyntaxError {
    pub(crate) pos: usize,
    pub(crate) path: String,
    pub(crate) message: String,
}

/// A duplicate key: the position of the repeated key and of its first occurrence.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Duplicate {
    pub(crate) pos: usize,
    pub(crate) first_pos: usize,
    pub(crate) path: String,
}

/// The result of a successful parse.
#[derive(Debug, Clone)]
pub(crate) struct Parsed {
    pub(crate) root: Node,
    pub(crate) duplicates: Vec<Duplicate>,
}

/// Parses one JSON document. Trailing non-whitespace after the value is an error.
pub(crate) fn parse(text: &str) -> Result<Parsed, SyntaxError> {
    let mut parser = Parser {
        bytes: text.as_bytes(),
        text,
        pos: 0,
        path: Vec::new(),
        duplicates: Vec::new(),
    };
    parser.skip_ws();
    if parser.pos == parser.bytes.len() {
        return Err(parser.error(
            "the file is empty: write a JSON object such as {\"configurationFileVersion\": 2}",
        ));
    }
    let root = parser.value(0)?;
    parser.skip_ws();
    if parser.pos != parser.bytes.len() {
        return Err(parser.error(
            "unexpected data after the top-level value: a settings file holds exactly one JSON object",
        ));
    }
    Ok(Parsed {
        root,
        duplicates: parser.duplicates,
    })
}

struct Parser<'a> {
    bytes: &'a [u8],
    text: &'a str,
    pos: usize,
    path: Vec<Segment>,
    duplicates: Vec<Duplicate>,
}

impl Parser<'_> {
    fn error(&self, message: &str) -> SyntaxError {
        self.error_at(self.pos, message)
    }

    fn error_at(&self, pos: usize, message: &str) -> SyntaxError {
        SyntaxError {
            pos,
            path: format_path(&self.path),
            message: message.to_owned(),
        }
    }

    fn skip_ws(&mut self) {
        while let Some(b' ' | b'\t' | b'\n' | b'\r') = self.bytes.get(self.pos) {
            self.pos += 1;
        }
    }

    fn peek(&self) -> Option<u8> {
        self.bytes.get(self.pos).copied()
    }

    fn eof(&self) -> SyntaxError {
        self.error(
            "unexpected end of file: the JSON is incomplete; close every string, array and object",
        )
    }

    /// A message for a byte where a value was expected, with a hint for common mistakes.
    fn unexpected(&self, expected: &str) -> SyntaxError {
        let message = match self.peek() {
            None => return self.eof(),
            Some(b'/' | b'#') => "comments are not allowed in JSON: remove them".to_owned(),
            Some(b'\'') => "strings must use double quotes (\"), not single quotes".to_owned(),
            Some(b'T' | b'F' | b'N') => {
                "invalid literal: true, false and null are written in lowercase".to_owned()
            }
            Some(b',') => format!("unexpected `,`: expected {expected}"),
            Some(b'}' | b']') => {
                format!(
                    "unexpected closing bracket: expected {expected} (is there a trailing comma?)"
                )
            }
            Some(_) => format!("unexpected character: expected {expected}"),
        };
        self.error(&message)
    }

    fn value(&mut self, depth: usize) -> Result<Node, SyntaxError> {
        if depth > MAX_DEPTH {
            return Err(self.error("nesting deeper than 64 levels: flatten the document"));
        }
        let pos = self.pos;
        let kind = match self.peek() {
            Some(b'{') => self.object(depth)?,
            Some(b'[') => self.array(depth)?,
            Some(b'"') => Kind::String(self.string()?),
            Some(b't') => self.literal("true", Kind::Bool(true))?,
            Some(b'f') => self.literal("false", Kind::Bool(false))?,
            Some(b'n') => self.literal("null", Kind::Null)?,
            Some(b'-' | b'0'..=b'9') => Kind::Number(self.number()?),
            _ => {
                return Err(self.unexpected(
                    "a JSON value (object, array, string, number, true, false or null)",
                ))
            }
        };
        Ok(Node { pos, kind })
    }

    fn literal(&mut self, word: &str, kind: Kind) -> Result<Kind, SyntaxError> {
        if self.bytes[self.pos..].starts_with(word.as_bytes()) {
            let end = self.pos + word.len();
            let next = self.bytes.get(end).copied();
            if !matches!(next, Some(b'a'..=b'z' | b'A'..=b'Z' | b'0'..=b'9' | b'_')) {
                self.pos = end;
                return Ok(kind);
            }
        }
        Err(self.error(
            "invalid literal: expected a JSON value (true, false and null are lowercase; strings need double quotes)",
        ))
    }

    fn object(&mut self, depth: usize) -> Result<Kind, SyntaxError> {
        self.pos += 1; // `{`
        let mut members: Vec<Member> = Vec::new();
        let mut index: HashMap<String, usize> = HashMap::new();
        self.skip_ws();
        if self.peek() == Some(b'}') {
            self.pos += 1;
            return Ok(Kind::Object(members));
        }
        loop {
            self.skip_ws();
            if self.peek() != Some(b'"') {
                return Err(self.unexpected("a double-quoted key"));
            }
            let key_pos = self.pos;
            let key = self.string()?;
            self.skip_ws();
            if self.peek() != Some(b':') {
                return Err(self.unexpected("`:` after the key"));
            }
            self.pos += 1;
            self.skip_ws();
            self.path.push(Segment::Key(key.clone()));
            let value = self.value(depth + 1)?;
            self.path.pop();
            let first = if members.len() < LINEAR_SCAN_MEMBERS {
                members.iter().find(|m| m.key == key).map(|m| m.key_pos)
            } else {
                if index.is_empty() {
                    for (i, m) in members.iter().enumerate() {
                        index.entry(m.key.clone()).or_insert(i);
                    }
                }
                index.get(&key).map(|&i| members[i].key_pos)
            };
            if let Some(first_pos) = first {
                self.path.push(Segment::Key(key));
                self.duplicates.push(Duplicate {
                    pos: key_pos,
                    first_pos,
                    path: format_path(&self.path),
                });
                self.path.pop();
            } else {
                if !index.is_empty() {
                    index.insert(key.clone(), members.len());
                }
                members.push(Member {
                    key,
                    key_pos,
                    value,
                });
            }
            self.skip_ws();
            match self.peek() {
                Some(b',') => {
                    let comma = self.pos;
                    self.pos += 1;
                    self.skip_ws();
                    if self.peek() == Some(b'}') {
                        return Err(self.error_at(comma, "trailing comma before `}`: remove it"));
                    }
                }
                Some(b'}') => {
                    self.pos += 1;
                    return Ok(Kind::Object(members));
                }
                _ => return Err(self.unexpected("`,` or `}` after an object member")),
            }
        }
    }

    fn array(&mut self, depth: usize) -> Result<Kind, SyntaxError> {
        self.pos += 1; // `[`
        let mut items = Vec::new();
        self.skip_ws();
        if self.peek() == Some(b']') {
            self.pos += 1;
            return Ok(Kind::Array(items));
        }
        loop {
            self.skip_ws();
            self.path.push(Segment::Index(items.len()));
            let item = self.value(depth + 1)?;
            self.path.pop();
            items.push(item);
            self.skip_ws();
            match self.peek() {
                Some(b',') => {
                    let comma = self.pos;
                    self.pos += 1;
                    self.skip_ws();
                    if self.peek() == Some(b']') {
                        return Err(self.error_at(comma, "trailing comma before `]`: remove it"));
                    }
                }
                Some(b']') => {
                    self.pos += 1;
                    return Ok(Kind::Array(items));
                }
                _ => return Err(self.unexpected("`,` or `]` after an array element")),
            }
        }
    }

    fn string(&mut self) -> Result<String, SyntaxError> {
        let start = self.pos;
        self.pos += 1; // opening quote
        let mut out = String::new();
        loop {
            // Copy the run of plain characters in one go.
            let run_start = self.pos;
            while let Some(&b) = self.bytes.get(self.pos) {
                if b == b'"' || b == b'\\' || b < 0x20 {
                    break;
                }
                self.pos += 1;
            }
            out.push_str(&self.text[run_start..self.pos]);
            match self.peek() {
                None => {
                    return Err(
                        self.error_at(start, "unterminated string: add the closing double quote")
                    )
                }
                Some(b'"') => {
                    self.pos += 1;
                    return Ok(out);
                }
                Some(b'\\') => {
                    self.escape(&mut out)?;
                }
                Some(b'\n' | b'\r') => {
                    return Err(self.error(
                        "line break inside a string: close the string or write the break as \\n",
                    ))
                }
                Some(_) => {
                    return Err(
                        self.error("control character inside a string: write it as a \\u escape")
                    )
                }
            }
        }
    }

    fn escape(&mut self, out: &mut String) -> Result<(), SyntaxError> {
        let at = self.pos;
        self.pos += 1; // backslash
        let c = match self.peek() {
            Some(b'"') => '"',
            Some(b'\\') => '\\',
            Some(b'/') => '/',
            Some(b'b') => '\u{8}',
            Some(b'f') => '\u{c}',
            Some(b'n') => '\n',
            Some(b'r') => '\r',
            Some(b't') => '\t',
            Some(b'u') => {
                self.pos += 1;
                let high = self.hex4(at)?;
                let c = if (0xD800..0xDC00).contains(&high) {
                    if !self.bytes[self.pos..].starts_with(b"\\u") {
                        return Err(self.error_at(
                            at,
                            "unpaired UTF-16 surrogate in \\u escape: write the full surrogate pair or the character itself",
                        ));
                    }
                    self.pos += 2;
                    let low = self.hex4(at)?;
                    if !(0xDC00..0xE000).contains(&low) {
                        return Err(self.error_at(
                            at,
                            "unpaired UTF-16 surrogate in \\u escape: write the full surrogate pair or the character itself",
                        ));
                    }
                    char::from_u32(0x10000 + ((high - 0xD800) << 10) + (low - 0xDC00))
                } else if (0xDC00..0xE000).contains(&high) {
                    None
                } else {
                    char::from_u32(high)
                };
                let Some(c) = c else {
                    return Err(self.error_at(
                        at,
                        "unpaired UTF-16 surrogate in \\u escape: write the full surrogate pair or the character itself",
                    ));
                };
                out.push(c);
                return Ok(());
            }
            None => return Err(self.eof()),
            Some(_) => {
                return Err(self.error_at(
                    at,
                    "invalid escape sequence: use \\\" \\\\ \\/ \\b \\f \\n \\r \\t or \\uXXXX",
                ))
            }
        };
        self.pos += 1;
        out.push(c);
        Ok(())
    }

    fn hex4(&mut self, at: usize) -> Result<u32, SyntaxError> {
        let mut value = 0u32;
        for _ in 0..4 {
            let digit = self.peek().and_then(|b| char::from(b).to_digit(16));
            let Some(digit) = digit else {
                return Err(
                    self.error_at(at, "invalid \\u escape: expected four hexadecimal digits")
                );
            };
            value = value * 16 + digit;
            self.pos += 1;
        }
        Ok(value)
    }

    fn number(&mut self) -> Result<Number, SyntaxError> {
        let start = self.pos;
        let bad = |p: &Self| {
            p.error_at(
                start,
                "invalid number: write digits with an optional `-`, fraction and exponent (no leading zeros, `+` or hex)",
            )
        };
        if self.peek() == Some(b'-') {
            self.pos += 1;
        }
        match self.peek() {
            Some(b'0') => {
                self.pos += 1;
                if let Some(b'0'..=b'9') = self.peek() {
                    return Err(bad(self));
                }
            }
            Some(b'1'..=b'9') => self.digits(),
            _ => return Err(bad(self)),
        }
        let mut integer = true;
        if self.peek() == Some(b'.') {
            integer = false;
            self.pos += 1;
            if !matches!(self.peek(), Some(b'0'..=b'9')) {
                return Err(bad(self));
            }
            self.digits();
        }
        if let Some(b'e' | b'E') = self.peek() {
            integer = false;
            self.pos += 1;
            if let Some(b'+' | b'-') = self.peek() {
                self.pos += 1;
            }
            if !matches!(self.peek(), Some(b'0'..=b'9')) {
                return Err(bad(self));
            }
            self.digits();
        }
        if let Some(b'a'..=b'z' | b'A'..=b'Z' | b'_') = self.peek() {
            return Err(bad(self));
        }
        let literal = &self.text[start..self.pos];
        let float: f64 = literal.parse().map_err(|_| bad(self))?;
        if !float.is_finite() {
            return Err(self.error_at(start, "number out of range: use a smaller number"));
        }
        let int = if integer { literal.parse().ok() } else { None };
        Ok(Number { int, float })
    }

    fn digits(&mut self) {
        while let Some(b'0'..=b'9') = self.peek() {
            self.pos += 1;
        }
    }
}

/// Maps byte offsets to 1-based line and column (columns count characters, not bytes).
#[derive(Debug)]
pub(crate) struct LineIndex<'a> {
    text: &'a str,
    starts: Vec<usize>,
}

impl<'a> LineIndex<'a> {
    pub(crate) fn new(text: &'a str) -> Self {
        let mut starts = vec![0];
        starts.extend(
            text.bytes()
                .enumerate()
                .filter(|&(_, b)| b == b'\n')
                .map(|(i, _)| i + 1),
        );
        LineIndex { text, starts }
    }

    pub(crate) fn line_col(&self, pos: usize) -> (usize, usize) {
        let pos = pos.min(self.text.len());
        let line = self.starts.partition_point(|&s| s <= pos).max(1);
        let start = self.starts[line - 1];
        let column = self
            .text
            .get(start..pos)
            .map_or(pos - start, |s| s.chars().count())
            + 1;
        (line, column)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn err(text: &str) -> SyntaxError {
        parse(text).err().unwrap()
    }

    #[test]
    fn parses_values_with_positions() {
        let parsed =
            parse(r#" {"a": [1, -2.5e3, "x\u00e9\ud83d\ude00"], "b": {"c": null}} "#).unwrap();
        let Kind::Object(members) = &parsed.root.kind else {
            panic!("not an object")
        };
        assert_eq!(parsed.root.pos, 1);
        assert_eq!(members[0].key, "a");
        assert_eq!(members[0].key_pos, 2);
        let Kind::Array(items) = &members[0].value.kind else {
            panic!("not an array")
        };
        assert_eq!(
            items[0].kind,
            Kind::Number(Number {
                int: Some(1),
                float: 1.0
            })
        );
        assert_eq!(
            items[1].kind,
            Kind::Number(Number {
                int: None,
                float: -2500.0
            })
        );
        assert_eq!(items[2].kind, Kind::String("xé😀".into()));
    }

    #[test]
    fn reports_every_duplicate_and_keeps_the_first() {
        let parsed = parse(r#"{"a": 1, "b": {"x": 1, "x": 2}, "a": 3}"#).unwrap();
        assert_eq!(parsed.duplicates.len(), 2);
        assert_eq!(parsed.duplicates[0].path, "b.x");
        assert_eq!(parsed.duplicates[1].path, "a");
        assert_eq!(parsed.duplicates[1].first_pos, 1);
        let Kind::Object(members) = &parsed.root.kind else {
            panic!("not an object")
        };
        assert_eq!(members.len(), 2);
        assert_eq!(
            members[0].value.kind,
            Kind::Number(Number {
                int: Some(1),
                float: 1.0
            })
        );
    }

    #[test]
    fn duplicates_in_large_objects() {
        let mut text = String::from("{");
        for i in 0..40 {
            let _ = write!(text, "\"k{i}\": {i},");
        }
        text.push_str("\"k7\": 0, \"k39\": 1, \"new\": 2}");
        let parsed = parse(&text).unwrap();
        let paths: Vec<_> = parsed.duplicates.iter().map(|d| d.path.as_str()).collect();
        assert_eq!(paths, ["k7", "k39"]);
    }

    #[test]
    fn rejects_what_lenient_parsers_accept() {
        assert!(err("{\"a\": 1,}").message.contains("trailing comma"));
        assert!(err("[1,]").message.contains("trailing comma"));
        assert!(err("{\"a\": 01}").message.starts_with("invalid number"));
        assert!(err("{\"a\": +1}")
            .message
            .starts_with("unexpected character"));
        assert!(err("{\"a\": .5}")
            .message
            .starts_with("unexpected character"));
        assert!(err("{\"a\": 1.}").message.starts_with("invalid number"));
        assert!(err("{\"a\": 0x10}").message.starts_with("invalid number"));
        assert!(err("{\"a\": True}").message.contains("lowercase"));
        assert!(err("{\"a\": nul}").message.starts_with("invalid literal"));
        assert!(err("{\"a\": truex}").message.starts_with("invalid literal"));
        assert!(err("{'a': 1}").message.contains("double quotes"));
        assert!(err("{\"a\": 1} // c")
            .message
            .starts_with("unexpected data"));
        assert!(err("{/* c */}").message.contains("comments"));
        assert!(err("{\"a\": \"\\x\"}")
            .message
            .starts_with("invalid escape"));
        assert!(err("{\"a\": \"\\ud800\"}").message.starts_with("unpaired"));
        assert!(err("{\"a\": \"\\udc00\"}").message.starts_with("unpaired"));
        assert!(err("{\"a\": \"\\ud800\\u0041\"}")
            .message
            .starts_with("unpaired"));
        assert!(err("{\"a\": \"\\u12\"}")
            .message
            .starts_with("invalid \\u escape"));
        assert!(err("{\"a\": \"x\ny\"}").message.starts_with("line break"));
        assert!(err("{\"a\": \"x\ty\"}")
            .message
            .starts_with("control character"));
        assert!(err("{\"a\": \"x")
            .message
            .starts_with("unterminated string"));
        assert!(err("{\"a\" 1}").message.contains("`:`"));
        assert!(err("{\"a\": 1 \"b\": 2}").message.contains("`,` or `}`"));
        assert!(err("[1 2]").message.contains("`,` or `]`"));
        assert!(err("{\"a\": 1e999}")
            .message
            .starts_with("number out of range"));
        assert!(err("   ").message.starts_with("the file is empty"));
        assert!(err("{\"a\": [")
            .message
            .starts_with("unexpected end of file"));
    }

    #[test]
    fn syntax_errors_name_the_path() {
        let e = err("{\"a\": {\"b\": [1, {\"c\": tru}]}}");
        assert_eq!(e.path, "a.b[1].c");
        assert_eq!(e.pos, 22);
    }

    #[test]
    fn depth_is_limited() {
        let deep = "[".repeat(100) + &"]".repeat(100);
        assert!(err(&deep).message.starts_with("nesting deeper"));
        let ok = "[".repeat(60) + &"]".repeat(60);
        assert!(parse(&ok).is_ok());
    }

    #[test]
    fn big_integers_stay_numbers() {
        let parsed = parse("[99999999999999999999]").unwrap();
        let Kind::Array(items) = parsed.root.kind else {
            panic!("not an array")
        };
        let Kind::Number(n) = &items[0].kind else {
            panic!("not a number")
        };
        assert_eq!(n.int, None);
    }

    #[test]
    fn paths_are_escaped() {
        let path = format_path(&[
            Segment::Key("proxy".into()),
            Segment::Key("ex clude\u{1b}[31m".into()),
            Segment::Index(2),
        ]);
        assert_eq!(path, "proxy[\"ex clude\\u001b[31m\"][2]");
        assert_eq!(format_path(&[]), "(root)");
    }

    #[test]
    fn line_and_column() {
        let text = "{\n  \"é\": 1,\n  \"b\": x\n}";
        let index = LineIndex::new(text);
        assert_eq!(index.line_col(0), (1, 1));
        assert_eq!(index.line_col(4), (2, 3));
        let x = text.find('x').unwrap();
        assert_eq!(index.line_col(x), (3, 8));
        let e = text.find("1,").unwrap();
        assert_eq!(index.line_col(e), (2, 8));
    }
}
