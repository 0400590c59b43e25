//! Parser for the services' env files (`KEY=VALUE` lines, `#` comment lines), the same files
//! Docker Compose reads with `env_file:`.
//!
//! It must stay compatible with Compose: so no variable expansion and no inline comments (a `#`
//! inside a value, as in a password, is part of the value). Matching single or double quotes
//! around a value are removed; an optional leading `export ` is allowed for shells.

use std::collections::HashMap;
use std::path::Path;

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum EnvFileError {
    #[error("cannot be read: {0}")]
    Unreadable(String),
    #[error("line {line}: expected KEY=VALUE, found {text:?}")]
    BadLine { line: usize, text: String },
    #[error(
        "line {line}: {key:?} is not a variable name (letters, digits and _; not starting with a digit)"
    )]
    BadKey { line: usize, key: String },
}

/// The variables of one env file, in file order (a later line wins).
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct EnvFile {
    values: HashMap<String, String>,
}

impl EnvFile {
    pub fn read(path: &Path) -> Result<Self, EnvFileError> {
        let text =
            std::fs::read_to_string(path).map_err(|e| EnvFileError::Unreadable(e.to_string()))?;
        Self::parse(&text)
    }

    pub fn parse(text: &str) -> Result<Self, EnvFileError> {
        let mut values = HashMap::new();
        for (index, raw_line) in text.lines().enumerate() {
            let line_number = index + 1;
            let line = raw_line.trim();
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            let line = line.strip_prefix("export ").unwrap_or(line);
            let Some((key, value)) = line.split_once('=') else {
                return Err(EnvFileError::BadLine {
                    line: line_number,
                    text: raw_line.to_owned(),
                });
            };
            let key = key.trim();
            if !is_variable_name(key) {
                return Err(EnvFileError::BadKey {
                    line: line_number,
                    key: key.to_owned(),
                });
            }
            values.insert(key.to_owned(), unquote(value.trim()).to_owned());
        }
        Ok(Self { values })
    }

    pub fn get(&self, key: &str) -> Option<&str> {
        self.values.get(key).map(String::as_str)
    }

    pub fn keys(&self) -> impl Iterator<Item = &str> {
        self.values.keys().map(String::as_str)
    }

    pub fn into_values(self) -> HashMap<String, String> {
        self.values
    }
}

fn is_variable_name(key: &str) -> bool {
    let mut chars = key.chars();
    matches!(chars.next(), Some(c) if c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
}

fn unquote(value: &str) -> &str {
    for quote in ['"', '\''] {
        if value.len() >= 2 && value.starts_with(quote) && value.ends_with(quote) {
            return &value[1..value.len() - 1];
        }
    }
    value
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn comments_blank_lines_quotes_and_export_are_understood() {
        let file = EnvFile::parse(
            "# a comment\n\nA=1\nexport B = two \nC=\"quoted # not a comment\"\nD='x'\nE=\n",
        )
        .expect("valid file");
        assert_eq!(file.get("A"), Some("1"));
        assert_eq!(file.get("B"), Some("two"));
        assert_eq!(file.get("C"), Some("quoted # not a comment"));
        assert_eq!(file.get("D"), Some("x"));
        assert_eq!(file.get("E"), Some(""));
    }

    #[test]
    fn later_lines_override_earlier_ones() {
        let file = EnvFile::parse("A=1\nA=2\n").expect("valid file");
        assert_eq!(file.get("A"), Some("2"));
    }

    #[test]
    fn a_line_without_equals_names_its_line_number() {
        assert_eq!(
            EnvFile::parse("A=1\nnot a setting\n"),
            Err(EnvFileError::BadLine {
                line: 2,
                text: "not a setting".into()
            })
        );
    }

    #[test]
    fn a_bad_variable_name_is_rejected() {
        assert_eq!(
            EnvFile::parse("1A=x\n"),
            Err(EnvFileError::BadKey {
                line: 1,
                key: "1A".into()
            })
        );
    }
}
