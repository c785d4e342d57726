//! The images a Dockerfile makes the engine's classic builder pull or use: `FROM` lines (after
//! the substitution of the global `ARG`s and the build's `--build-arg` values, as the builder
//! does it) and `COPY --from=IMAGE`, minus references to earlier stages and `scratch`.
//!
//! Registry access must hold for every one of them, so anything this module cannot resolve
//! exactly as the builder would (an unsupported substitution, a malformed line, a directive it
//! does not know) is an error and the build is refused: what is not understood is not let
//! through.
//!
//! ```
//! use std::collections::BTreeMap;
//! use stockade_engine_api::dockerfile::image_sources;
//! let text = "ARG BASE=alpine\nFROM ${BASE}:3 AS build\nFROM build\nCOPY --from=tools:1 /x /x\n";
//! let sources = image_sources(text, &BTreeMap::new()).unwrap();
//! let names: Vec<&str> = sources.iter().map(|s| s.name.as_str()).collect();
//! assert_eq!(names, ["alpine:3", "tools:1"]);
//! ```

use std::collections::BTreeMap;
use std::fmt;

/// Largest Dockerfile read (the engine has no limit; a real one is a few KiB).
pub const MAX_DOCKERFILE: usize = 1 << 20;

/// An image the build would use.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ImageSource {
    /// The image name, substituted as the builder does (not yet normalised).
    pub name: String,
    /// 1-based line of the instruction.
    pub line: usize,
    /// `FROM` or `COPY --from`.
    pub instruction: &'static str,
}

/// Why a Dockerfile's images cannot be determined.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DockerfileError {
    /// 1-based line (0: the file as a whole).
    pub line: usize,
    /// What is wrong.
    pub message: String,
}

impl fmt::Display for DockerfileError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.line == 0 {
            f.write_str(&self.message)
        } else {
            write!(f, "Dockerfile line {}: {}", self.line, self.message)
        }
    }
}

impl std::error::Error for DockerfileError {}

fn error(line: usize, message: impl Into<String>) -> DockerfileError {
    DockerfileError {
        line,
        message: message.into(),
    }
}

/// One logical instruction: its first physical line, keyword (uppercased) and the rest.
struct Instruction {
    line: usize,
    keyword: String,
    rest: String,
}

/// The images a Dockerfile uses. `build_args` is the build's `buildargs` query parameter (a
/// `null` value means "take it from the client's environment", which the engine never sees, so
/// it counts as unset).
///
/// # Errors
/// Whatever cannot be resolved exactly as the classic builder would.
pub fn image_sources(
    text: &str,
    build_args: &BTreeMap<String, Option<String>>,
) -> Result<Vec<ImageSource>, DockerfileError> {
    if text.len() > MAX_DOCKERFILE {
        return Err(error(0, "the Dockerfile is larger than 1 MiB"));
    }
    let (escape, body_start) = directives(text)?;
    let instructions = logical_lines(text, body_start, escape);
    let mut meta: BTreeMap<String, String> = BTreeMap::new();
    let mut stages: Vec<String> = Vec::new();
    let mut sources = Vec::new();
    let mut in_stage = false;
    for ins in &instructions {
        match ins.keyword.as_str() {
            "ARG" if !in_stage => {
                let (flags, _) = split_flags(&ins.rest);
                let args = quoted_words(&ins.rest, escape);
                if !flags.is_empty() || args.len() != 1 {
                    return Err(error(ins.line, "ARG requires exactly one argument"));
                }
                let word = args[0].as_str();
                let (key, default) = match word.split_once('=') {
                    Some((k, v)) => (k, Some(v)),
                    None => (word, None),
                };
                let default = match default {
                    Some(v) => Some(expand(v, &meta, escape).map_err(|m| error(ins.line, m))?),
                    None => None,
                };
                // The builder: a value given with --build-arg wins over the default.
                let value = match build_args.get(key) {
                    Some(Some(given)) => given.clone(),
                    Some(None) | None => default.unwrap_or_default(),
                };
                meta.insert(key.to_owned(), value);
            }
            "FROM" => {
                in_stage = true;
                let (flags, args) = split_flags(&ins.rest);
                if flags.iter().any(|f| !f.starts_with("--platform=")) {
                    return Err(error(ins.line, "FROM takes only the --platform flag"));
                }
                let stage = match args.as_slice() {
                    [_] => None,
                    [_, as_, name] if as_.eq_ignore_ascii_case("as") => {
                        Some(name.to_ascii_lowercase())
                    }
                    _ => {
                        return Err(error(
                            ins.line,
                            "FROM requires either one or three arguments",
                        ))
                    }
                };
                let name = expand(args[0], &meta, escape).map_err(|m| error(ins.line, m))?;
                if name.is_empty() {
                    return Err(error(ins.line, "the base image name is empty"));
                }
                let earlier_stage = stages.contains(&name.to_ascii_lowercase());
                if !earlier_stage && !name.eq_ignore_ascii_case("scratch") {
                    sources.push(ImageSource {
                        name,
                        line: ins.line,
                        instruction: "FROM",
                    });
                }
                stages.push(stage.unwrap_or_default());
            }
            "COPY" => {
                let (flags, _) = split_flags(&ins.rest);
                for flag in flags {
                    let Some(from) = flag.strip_prefix("--from=") else {
                        continue;
                    };
                    // The classic builder takes --from literally: a stage name, a stage index
                    // or an image it pulls if missing.
                    if from.contains('$') {
                        return Err(error(
                            ins.line,
                            "COPY --from with a variable cannot be checked",
                        ));
                    }
                    let lower = from.to_ascii_lowercase();
                    let index = from.parse::<usize>().ok();
                    let is_stage = stages.iter().any(|s| !s.is_empty() && *s == lower)
                        || index.is_some_and(|i| i < stages.len());
                    if !is_stage {
                        sources.push(ImageSource {
                            name: from.to_owned(),
                            line: ins.line,
                            instruction: "COPY --from",
                        });
                    }
                }
            }
            _ => {}
        }
    }
    Ok(sources)
}

/// Parser directives (`# escape=`` ` ``, `# syntax=`) at the top of the file; returns the
/// escape character and the byte offset where the instructions start.
fn directives(text: &str) -> Result<(char, usize), DockerfileError> {
    let mut escape = '\\';
    let mut offset = 0;
    let mut seen: Vec<String> = Vec::new();
    for (index, raw) in text.split_inclusive('\n').enumerate() {
        let line = raw.trim_end_matches(['\n', '\r']).trim();
        let Some(comment) = line.strip_prefix('#') else {
            break;
        };
        let Some((key, value)) = comment.split_once('=') else {
            break;
        };
        let key = key.trim();
        if key.is_empty()
            || !key.starts_with(|c: char| c.is_ascii_alphabetic())
            || !key.chars().all(|c| c.is_ascii_alphanumeric())
        {
            break;
        }
        let key = key.to_ascii_lowercase();
        let value = value.trim();
        if seen.contains(&key) {
            return Err(error(
                index + 1,
                format!("only one {key} parser directive can be used"),
            ));
        }
        match key.as_str() {
            "escape" => {
                escape = match value {
                    "\\" => '\\',
                    "`" => '`',
                    _ => return Err(error(index + 1, format!("invalid escape token {value:?}"))),
                };
            }
            // The classic builder ignores the BuildKit frontend image it would name.
            "syntax" => {}
            // An unknown directive is a comment to the builder, and ends the directives.
            _ => break,
        }
        seen.push(key);
        offset += raw.len();
    }
    Ok((escape, offset))
}

/// Joins continuation lines, drops comments and blank lines, splits off the keyword.
fn logical_lines(text: &str, start: usize, escape: char) -> Vec<Instruction> {
    let first_line = text[..start].matches('\n').count() + 1;
    let mut out = Vec::new();
    let mut pending: Option<(usize, String)> = None;
    for (i, raw) in text[start..].lines().enumerate() {
        let number = first_line + i;
        let trimmed = raw.trim_start();
        if trimmed.starts_with('#') || (trimmed.trim().is_empty()) {
            // Comments and blank lines are skipped, also inside a continuation.
            continue;
        }
        let without_ws = raw.trim_end();
        let (content, continues) = match without_ws.strip_suffix(escape) {
            Some(c) => (c, true),
            None => (without_ws, false),
        };
        let entry = pending.get_or_insert_with(|| (number, String::new()));
        entry.1.push_str(if entry.1.is_empty() {
            content.trim_start()
        } else {
            content
        });
        if !continues {
            if let Some((line, joined)) = pending.take() {
                out.push(split_keyword(line, &joined));
            }
        }
    }
    if let Some((line, joined)) = pending.take() {
        out.push(split_keyword(line, &joined));
    }
    out
}

fn split_keyword(line: usize, joined: &str) -> Instruction {
    let joined = joined.trim();
    let (keyword, rest) = joined
        .split_once(|c: char| c.is_whitespace())
        .unwrap_or((joined, ""));
    Instruction {
        line,
        keyword: keyword.to_ascii_uppercase(),
        rest: rest.trim().to_owned(),
    }
}

/// The leading `--flag=value` words and the remaining whitespace-separated words.
fn split_flags(rest: &str) -> (Vec<&str>, Vec<&str>) {
    let mut words = rest.split_whitespace().peekable();
    let mut flags = Vec::new();
    while let Some(word) = words.peek() {
        if *word == "--" {
            words.next();
            break;
        }
        if word.starts_with("--") {
            flags.push(*word);
            words.next();
        } else {
            break;
        }
    }
    (flags, words.collect())
}

/// The parser's quote-aware split into words (quotes and escapes are kept for the later
/// substitution step).
fn quoted_words(rest: &str, escape: char) -> Vec<String> {
    let mut words = Vec::new();
    let mut word = String::new();
    let mut quote: Option<char> = None;
    let mut escaped = false;
    for c in rest.chars() {
        if escaped {
            word.push(c);
            escaped = false;
            continue;
        }
        match quote {
            Some(q) => {
                if c == q {
                    quote = None;
                } else if c == escape && q == '"' {
                    escaped = true;
                }
                word.push(c);
            }
            None if c.is_whitespace() => {
                if !word.is_empty() {
                    words.push(std::mem::take(&mut word));
                }
            }
            None => {
                if c == '\'' || c == '"' {
                    quote = Some(c);
                } else if c == escape {
                    escaped = true;
                }
                word.push(c);
            }
        }
    }
    if !word.is_empty() {
        words.push(word);
    }
    words
}

/// The builder's word processing: quotes removed, escapes applied, `$NAME`, `${NAME}`,
/// `${NAME:-word}` and `${NAME:+word}` substituted from `env`; unknown names are empty.
fn expand(word: &str, env: &BTreeMap<String, String>, escape: char) -> Result<String, String> {
    let chars: Vec<char> = word.chars().collect();
    let mut pos = 0;
    let out = expand_until(&chars, &mut pos, None, env, escape)?;
    Ok(out)
}

fn expand_until(
    chars: &[char],
    pos: &mut usize,
    stop: Option<char>,
    env: &BTreeMap<String, String>,
    escape: char,
) -> Result<String, String> {
    let mut out = String::new();
    while let Some(&c) = chars.get(*pos) {
        if Some(c) == stop {
            return Ok(out);
        }
        *pos += 1;
        match c {
            '\'' => {
                loop {
                    match chars.get(*pos) {
                        Some('\'') => {
                            *pos += 1;
                            break;
                        }
                        Some(&ch) => {
                            out.push(ch);
                            *pos += 1;
                        }
                        None => return Err(
                            "unexpected end of statement while looking for matching single-quote"
                                .to_owned(),
                        ),
                    }
                }
            }
            '"' => {
                loop {
                    match chars.get(*pos) {
                        Some('"') => {
                            *pos += 1;
                            break;
                        }
                        Some('$') => {
                            *pos += 1;
                            out.push_str(&dollar(chars, pos, env, escape)?);
                        }
                        Some(&ch) if ch == escape => {
                            *pos += 1;
                            match chars.get(*pos) {
                                Some(&next) if next == '"' || next == '$' || next == escape => {
                                    out.push(next);
                                    *pos += 1;
                                }
                                _ => out.push(ch),
                            }
                        }
                        Some(&ch) => {
                            out.push(ch);
                            *pos += 1;
                        }
                        None => return Err(
                            "unexpected end of statement while looking for matching double-quote"
                                .to_owned(),
                        ),
                    }
                }
            }
            '$' => out.push_str(&dollar(chars, pos, env, escape)?),
            ch if ch == escape => {
                if let Some(&next) = chars.get(*pos) {
                    out.push(next);
                    *pos += 1;
                }
            }
            ch => out.push(ch),
        }
    }
    match stop {
        Some(s) => Err(format!("missing {s:?} in a substitution")),
        None => Ok(out),
    }
}

fn dollar(
    chars: &[char],
    pos: &mut usize,
    env: &BTreeMap<String, String>,
    escape: char,
) -> Result<String, String> {
    let unsupported = || {
        "a substitution the gateway cannot resolve exactly as the builder does (use $NAME, ${NAME}, ${NAME:-default} or ${NAME:+alternative})".to_owned()
    };
    let braced = chars.get(*pos) == Some(&'{');
    if braced {
        *pos += 1;
    }
    let start = *pos;
    while chars
        .get(*pos)
        .is_some_and(|c| c.is_ascii_alphanumeric() || *c == '_')
    {
        *pos += 1;
    }
    let name: String = chars[start..*pos].iter().collect();
    if name.is_empty() {
        if braced {
            return Err(unsupported());
        }
        return Ok("$".to_owned());
    }
    if name.starts_with(|c: char| c.is_ascii_digit()) {
        return Err(unsupported());
    }
    let value = env.get(&name).cloned().unwrap_or_default();
    if !braced {
        return Ok(value);
    }
    match chars.get(*pos) {
        Some('}') => {
            *pos += 1;
            Ok(value)
        }
        Some(':') => {
            *pos += 1;
            let modifier = chars.get(*pos).copied();
            *pos += 1;
            let word = expand_until(chars, pos, Some('}'), env, escape)?;
            *pos += 1; // the closing brace
            match modifier {
                Some('-') => Ok(if value.is_empty() { word } else { value }),
                Some('+') => Ok(if value.is_empty() {
                    String::new()
                } else {
                    word
                }),
                _ => Err(unsupported()),
            }
        }
        _ => Err(unsupported()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn names(text: &str) -> Vec<String> {
        names_with(text, &[])
    }

    fn names_with(text: &str, args: &[(&str, Option<&str>)]) -> Vec<String> {
        let args = args
            .iter()
            .map(|(k, v)| ((*k).to_owned(), v.map(str::to_owned)))
            .collect();
        image_sources(text, &args)
            .unwrap()
            .into_iter()
            .map(|s| s.name)
            .collect()
    }

    fn fails(text: &str) -> DockerfileError {
        image_sources(text, &BTreeMap::new()).unwrap_err()
    }

    #[test]
    fn stages_scratch_and_case() {
        assert_eq!(names("FROM busybox\nRUN true\n"), ["busybox"]);
        assert_eq!(
            names("from golang:1 as Build\nFROM build\nfrom BUILD AS x\nFROM scratch\nFROM Scratch\nFROM x\n"),
            ["golang:1"]
        );
        // A stage name is only an earlier stage's: a later one is an image.
        assert_eq!(
            names("FROM later\nFROM busybox AS later\n"),
            ["later", "busybox"]
        );
        assert_eq!(
            names("FROM --platform=linux/amd64 127.0.0.2:5000/x AS a\n"),
            ["127.0.0.2:5000/x"]
        );
    }

    #[test]
    fn arguments_are_substituted_like_the_builder() {
        let text = "ARG REG=127.0.0.1:5000\nARG TAG\nARG FULL=${REG}/app\nFROM ${FULL}:${TAG:-1}\nFROM $REG/b\nFROM \"${REG}\"/c${TAG:+-x}\nFROM ${NOPE:-d}\n";
        assert_eq!(
            names(text),
            [
                "127.0.0.1:5000/app:1",
                "127.0.0.1:5000/b",
                "127.0.0.1:5000/c",
                "d"
            ]
        );
        // --build-arg wins over the default, also in later defaults; null means unset.
        assert_eq!(
            names_with(text, &[("REG", Some("127.0.0.2:5000")), ("TAG", Some("9"))]),
            [
                "127.0.0.2:5000/app:9",
                "127.0.0.2:5000/b",
                "127.0.0.2:5000/c-x",
                "d"
            ]
        );
        assert_eq!(names_with("ARG A=x\nFROM $A\n", &[("A", None)]), ["x"]);
        // ARGs inside a stage do not reach a later FROM.
        assert_eq!(names("FROM a\nARG B=evil\nFROM ${B:-b}\n"), ["a", "b"]);
        assert_eq!(names("ARG A='q r'\nFROM x\n"), ["x"]);
    }

    #[test]
    fn continuations_comments_and_escape_directive() {
        assert_eq!(names("FROM \\\n  busybox\n"), ["busybox"]);
        assert_eq!(
            names("FROM \\\n# comment\n\n  busybox AS \\\n b\nFROM b\n"),
            ["busybox"]
        );
        assert_eq!(names("# escape=`\nFROM `\n  evil\n"), ["evil"]);
        assert_eq!(
            names("# syntax=docker/dockerfile:1\n# escape=`\nFROM a\n"),
            ["a"]
        );
        // After the first instruction, `# escape=` is a comment.
        assert!(image_sources("FROM a\n# escape=`\nFROM b `\n", &BTreeMap::new()).is_err());
        assert_eq!(fails("# escape=x\nFROM a\n").line, 1);
        assert_eq!(fails("# escape=`\n# escape=\\\nFROM a\n").line, 2);
    }

    #[test]
    fn copy_from_images_count_and_stages_do_not() {
        assert_eq!(
            names("FROM a AS one\nCOPY --from=one /x /x\nCOPY --from=0 /x /x\nCOPY --chown=1 --from=127.0.0.2:5000/t /x /\nCOPY --from=7 /a /b\n"),
            ["a", "127.0.0.2:5000/t", "7"]
        );
        assert_eq!(fails("FROM a\nCOPY --from=$X /a /b\n").line, 2);
    }

    #[test]
    fn what_cannot_be_resolved_is_an_error() {
        for text in [
            "ARG A\nFROM ${A#x}\n",
            "FROM ${A:?no}\n",
            "FROM ${1}\n",
            "FROM ${A\n",
            "FROM 'a\n",
            "FROM a b\n",
            "FROM a AS\n",
            "FROM --network=host a\n",
            "ARG a b\nFROM x\n",
            "ARG A\nFROM $A\n",
        ] {
            assert!(image_sources(text, &BTreeMap::new()).is_err(), "{text:?}");
        }
    }
}
