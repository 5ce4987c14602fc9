//! Where each key of a TOML document sits, so errors can name a line.

use super::error::Location;
use std::ops::Range;
use toml::Spanned;
use toml::de::{DeTable, DeValue};

/// One key (or array element) of the document.
#[derive(Debug, Clone)]
struct Entry {
    /// Dotted path, e.g. `routines[2].steps[0].seconds`.
    path: String,
    /// The key itself; for array elements the element.
    key: Range<usize>,
    /// The value.
    value: Range<usize>,
    /// The value when it is a string (used to name routines by id).
    text: Option<String>,
}

/// Paths and byte spans of every key in a document, and line starts to turn spans into positions.
#[derive(Debug, Clone)]
pub(crate) struct SpanIndex {
    entries: Vec<Entry>,
    line_starts: Vec<usize>,
    source: String,
}

impl SpanIndex {
    /// Indexes a parsed document; `source` is the text it was parsed from.
    pub fn new(source: &str, root: &DeTable<'_>) -> SpanIndex {
        let mut index = SpanIndex {
            entries: Vec::new(),
            line_starts: line_starts(source),
            source: source.to_owned(),
        };
        index.add_table("", root);
        index
    }

    fn add_table(&mut self, prefix: &str, table: &DeTable<'_>) {
        for (key, value) in table {
            let path = if prefix.is_empty() {
                key.get_ref().to_string()
            } else {
                format!("{prefix}.{}", key.get_ref())
            };
            self.add_value(path, key.span(), value);
        }
    }

    fn add_value(&mut self, path: String, key: Range<usize>, value: &Spanned<DeValue<'_>>) {
        self.entries.push(Entry {
            path: path.clone(),
            key,
            value: value.span(),
            text: value.get_ref().as_str().map(str::to_owned),
        });
        match value.get_ref() {
            DeValue::Table(table) => self.add_table(&path, table),
            DeValue::Array(items) => {
                for (i, item) in items.iter().enumerate() {
                    self.add_value(format!("{path}[{i}]"), item.span(), item);
                }
            }
            _ => {}
        }
    }

    /// Position of a byte offset, 1-based, the column counted in characters.
    pub(crate) fn position(&self, offset: usize) -> Location {
        let offset = offset.min(self.source.len());
        let line = self.line_starts.partition_point(|&start| start <= offset);
        let start = self
            .line_starts
            .get(line.wrapping_sub(1))
            .copied()
            .unwrap_or(0);
        let column = self
            .source
            .get(start..offset)
            .map_or(1, |s| s.chars().count() + 1);
        Location::File {
            line: line.max(1),
            column,
        }
    }

    /// Position of `path`'s key, or of its nearest written ancestor (a missing key is reported
    /// where its table is).
    pub(crate) fn find(&self, path: &str) -> Option<Location> {
        let mut path = path;
        loop {
            if let Some(entry) = self.entries.iter().find(|e| e.path == path) {
                return Some(self.position(entry.key.start));
            }
            path = parent(path)?;
        }
    }

    /// The innermost key whose key or value covers `offset`.
    pub(crate) fn key_at(&self, offset: usize) -> Option<&str> {
        self.entries
            .iter()
            .filter(|e| e.key.contains(&offset) || e.value.contains(&offset))
            .min_by_key(|e| {
                let key_len = if e.key.contains(&offset) {
                    e.key.len()
                } else {
                    usize::MAX
                };
                (e.value.len().min(key_len), usize::MAX - e.path.len())
            })
            .map(|e| e.path.as_str())
    }

    /// The string value written at `path`, if any.
    pub(crate) fn text(&self, path: &str) -> Option<&str> {
        self.entries
            .iter()
            .find(|e| e.path == path)
            .and_then(|e| e.text.as_deref())
    }
}

/// The path one level up: `a.b[1].c` -> `a.b[1]` -> `a.b` -> `a`.
fn parent(path: &str) -> Option<&str> {
    let cut = path.rfind(['.', '['])?;
    Some(&path[..cut])
}

fn line_starts(source: &str) -> Vec<usize> {
    std::iter::once(0)
        .chain(source.match_indices('\n').map(|(i, _)| i + 1))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn index(text: &str) -> SpanIndex {
        let doc = DeTable::parse(text).expect("test document parses");
        SpanIndex::new(text, doc.get_ref())
    }

    #[test]
    fn finds_nested_keys_and_array_elements() {
        let text =
            "[mqtt]\nurl = \"x\"\n\n[[routines]]\nid = \"a\"\n[[routines.steps]]\nseconds = 0\n";
        let idx = index(text);
        assert_eq!(
            idx.find("mqtt.url"),
            Some(Location::File { line: 2, column: 1 })
        );
        assert_eq!(
            idx.find("routines[0].steps[0].seconds"),
            Some(Location::File { line: 7, column: 1 })
        );
        // A key that is not written falls back to its table.
        assert_eq!(idx.find("mqtt.keep_alive_s"), idx.find("mqtt"));
        assert_eq!(idx.text("routines[0].id"), Some("a"));
    }

    #[test]
    fn key_at_picks_the_innermost_key() {
        let text = "[mqtt]\nkeep_alive_s = \"x\"\n";
        let idx = index(text);
        let offset = text.find("\"x\"").expect("value present");
        assert_eq!(idx.key_at(offset), Some("mqtt.keep_alive_s"));
        let offset = text.find("keep").expect("key present");
        assert_eq!(idx.key_at(offset), Some("mqtt.keep_alive_s"));
    }

    #[test]
    fn position_counts_characters() {
        let text = "a = \"é\"\nb = 1\n";
        let idx = index(text);
        assert_eq!(idx.position(0), Location::File { line: 1, column: 1 });
        let b = text.find('b').expect("b present");
        assert_eq!(idx.position(b), Location::File { line: 2, column: 1 });
        let one = text.find('1').expect("1 present");
        assert_eq!(idx.position(one), Location::File { line: 2, column: 5 });
    }

    #[test]
    fn parent_walks_up() {
        assert_eq!(parent("a.b[1].c"), Some("a.b[1]"));
        assert_eq!(parent("a.b[1]"), Some("a.b"));
        assert_eq!(parent("a"), None);
    }
}
