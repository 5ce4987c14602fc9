//! A tolerant, allocation-free walk over the raw bytes of a JSON object's top-level pairs, for
//! the readers that must see into payloads serde_json refuses or that are too large to parse:
//! the stop scan and id recovery. Depth is counted, never recursed.

/// Whether the raw JSON string token `key` (with quotes) is `name`.
pub(super) fn key_is(key: &[u8], name: &str) -> bool {
    match key.strip_prefix(b"\"").and_then(|k| k.strip_suffix(b"\"")) {
        Some(inner) if !inner.contains(&b'\\') => inner == name.as_bytes(),
        _ => json_string(key).as_deref() == Some(name),
    }
}

/// The text of a raw JSON string token (with quotes), unescaped.
pub(super) fn json_string(raw: &[u8]) -> Option<String> {
    serde_json::from_slice::<String>(raw).ok()
}

/// Walks the top-level pairs of a JSON object without building it, calling `visit(key,
/// value)` with each raw key token and raw value text as it goes. Tolerant: it stops at the
/// first thing it cannot read (so a truncated prefix still yields its first pairs) and does
/// not check scalars. Returns whether the object was read to its end with nothing after it.
/// No recursion (nesting is counted), so depth cannot exhaust the stack.
pub(super) fn scan_object<'a>(bytes: &'a [u8], mut visit: impl FnMut(&'a [u8], &'a [u8])) -> bool {
    let mut i = skip_ws(bytes, 0);
    if bytes.get(i) != Some(&b'{') {
        return false;
    }
    i = skip_ws(bytes, i + 1);
    if bytes.get(i) == Some(&b'}') {
        return skip_ws(bytes, i + 1) == bytes.len();
    }
    loop {
        let Some(key_end) = string_end(bytes, i) else {
            return false;
        };
        let key = &bytes[i..key_end];
        i = skip_ws(bytes, key_end);
        if bytes.get(i) != Some(&b':') {
            return false;
        }
        i = skip_ws(bytes, i + 1);
        let Some(value_end) = value_end(bytes, i) else {
            return false;
        };
        visit(key, &bytes[i..value_end]);
        i = skip_ws(bytes, value_end);
        match bytes.get(i) {
            Some(b',') => i = skip_ws(bytes, i + 1),
            Some(b'}') => return skip_ws(bytes, i + 1) == bytes.len(),
            _ => return false,
        }
    }
}

fn skip_ws(bytes: &[u8], mut i: usize) -> usize {
    while bytes
        .get(i)
        .is_some_and(|b| matches!(b, b' ' | b'\t' | b'\n' | b'\r'))
    {
        i += 1;
    }
    i
}

/// End (exclusive) of the JSON string token starting at `i`.
fn string_end(bytes: &[u8], i: usize) -> Option<usize> {
    if bytes.get(i) != Some(&b'"') {
        return None;
    }
    let mut j = i + 1;
    loop {
        match *bytes.get(j)? {
            b'"' => return Some(j + 1),
            b'\\' => j += 2,
            _ => j += 1,
        }
    }
}

/// End (exclusive) of the JSON value starting at `i`; containers are matched by counting.
fn value_end(bytes: &[u8], i: usize) -> Option<usize> {
    match *bytes.get(i)? {
        b'"' => string_end(bytes, i),
        b'{' | b'[' => {
            let mut depth = 0usize;
            let mut j = i;
            loop {
                match *bytes.get(j)? {
                    b'"' => {
                        j = string_end(bytes, j)?;
                        continue;
                    }
                    b'{' | b'[' => depth += 1,
                    b'}' | b']' => {
                        depth -= 1;
                        if depth == 0 {
                            return Some(j + 1);
                        }
                    }
                    _ => {}
                }
                j += 1;
            }
        }
        _ => {
            let len = bytes[i..]
                .iter()
                .position(|b| {
                    matches!(
                        b,
                        b',' | b'}' | b']' | b' ' | b'\t' | b'\n' | b'\r' | b'{' | b'[' | b'"'
                    )
                })
                .unwrap_or(bytes.len() - i);
            (len > 0).then_some(i + len)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The pairs `scan_object` visits, as text, and whether it read the object to its end.
    fn pairs(bytes: &[u8]) -> (Vec<(String, String)>, bool) {
        let text = |raw: &[u8]| String::from_utf8_lossy(raw).into_owned();
        let mut seen = Vec::new();
        let complete = scan_object(bytes, |key, value| seen.push((text(key), text(value))));
        (seen, complete)
    }

    fn owned(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs
            .iter()
            .map(|&(key, value)| (key.to_owned(), value.to_owned()))
            .collect()
    }

    #[test]
    fn pairs_are_visited_in_order_as_raw_tokens() {
        let (seen, complete) =
            pairs(b" {\n\t\"a\" : 1 ,\"b\":\"x\", \"c\":{\"d\":[1,2]}, \"e\":null\r} ");
        assert!(complete);
        assert_eq!(
            seen,
            owned(&[
                ("\"a\"", "1"),
                ("\"b\"", "\"x\""),
                ("\"c\"", "{\"d\":[1,2]}"),
                ("\"e\"", "null"),
            ])
        );
    }

    #[test]
    fn duplicate_keys_are_all_visited() {
        let (seen, complete) = pairs(br#"{"id":1,"id":2}"#);
        assert!(complete);
        assert_eq!(seen, owned(&[("\"id\"", "1"), ("\"id\"", "2")]));
    }

    #[test]
    fn an_empty_object_is_complete_and_visits_nothing() {
        for payload in ["{}", " { } ", "\n{\r\n}\t"] {
            assert_eq!(pairs(payload.as_bytes()), (Vec::new(), true), "{payload:?}");
        }
    }

    #[test]
    fn only_an_object_read_to_its_end_is_complete() {
        for payload in [
            "",
            "   ",
            "[]",
            "\"a\"",
            "42",
            "{",
            "{}x",
            "{} {}",
            r#"{"a":1}}"#,
            r#"{"a":1,}"#,
            r#"{"a" 1}"#,
            r#"{"a":1 "b":2}"#,
            "{a:1}",
            r#"{"a":}"#,
            "\u{c}{}",
        ] {
            assert!(!pairs(payload.as_bytes()).1, "{payload:?}");
        }
    }

    #[test]
    fn a_truncated_object_yields_the_pairs_before_the_cut() {
        let (seen, complete) = pairs(br#"{"id":"q1","action":"sta"#);
        assert!(!complete);
        assert_eq!(seen, owned(&[("\"id\"", "\"q1\"")]));
        let (seen, complete) = pairs(br#"{"id":7,"x":[1,{"y":"#);
        assert!(!complete);
        assert_eq!(seen, owned(&[("\"id\"", "7")]));
        let (seen, complete) = pairs(br#"{"id":7,"ke"#);
        assert!(!complete);
        assert_eq!(seen, owned(&[("\"id\"", "7")]));
    }

    #[test]
    fn escaped_quotes_and_backslashes_do_not_end_a_string() {
        assert_eq!(string_end(br#""a\"b""#, 0), Some(6));
        assert_eq!(string_end(br#""a\\"b"#, 0), Some(5));
        assert_eq!(string_end(br#"x"\"""#, 1), Some(5));
        let (seen, complete) = pairs(br#"{"k\"ey":"v\"}","n":1}"#);
        assert!(complete);
        assert_eq!(seen, owned(&[(r#""k\"ey""#, r#""v\"}""#), ("\"n\"", "1")]));
    }

    #[test]
    fn an_unterminated_string_has_no_end() {
        for raw in ["\"abc", "\"abc\\", "\"abc\\\"", "\""] {
            assert_eq!(string_end(raw.as_bytes(), 0), None, "{raw:?}");
        }
        assert_eq!(string_end(b"abc", 0), None);
        assert_eq!(string_end(b"\"\"", 5), None);
    }

    #[test]
    fn brackets_inside_strings_do_not_count_toward_nesting() {
        assert_eq!(value_end(br#"{"a":"}]"}x"#, 0), Some(10));
        assert_eq!(value_end(br#"["[", "\"]"]"#, 0), Some(12));
        assert_eq!(value_end(br#"{"a":"}"#, 0), None);
    }

    #[test]
    fn deep_nesting_is_counted_not_recursed() {
        let depth = 1_000_000;
        let deep = format!("{}{}", "[".repeat(depth), "]".repeat(depth));
        assert_eq!(value_end(deep.as_bytes(), 0), Some(deep.len()));
        assert_eq!(value_end(&deep.as_bytes()[..deep.len() - 1], 0), None);
        let (seen, complete) = pairs(format!("{{\"a\":{deep}}}").as_bytes());
        assert!(complete);
        assert_eq!(seen.len(), 1);
        assert_eq!(seen[0].1.len(), deep.len());
    }

    #[test]
    fn scalars_end_at_the_next_delimiter_unchecked() {
        for (raw, end) in [
            ("123,", 3),
            ("true}", 4),
            ("-1.5e3 ", 6),
            ("null]", 4),
            ("nul", 3),
            ("1e309\n", 5),
        ] {
            assert_eq!(value_end(raw.as_bytes(), 0), Some(end), "{raw:?}");
        }
        for raw in ["", ",", "}", "]", " 1"] {
            assert_eq!(value_end(raw.as_bytes(), 0), None, "{raw:?}");
        }
        assert_eq!(value_end(b"1", 5), None);
    }

    #[test]
    fn the_scanner_reads_bytes_not_utf8() {
        let (seen, complete) = pairs(b"{\"\xff\":\"\xfe\"}");
        assert!(complete);
        assert_eq!(seen.len(), 1);
    }

    #[test]
    fn only_json_white_space_is_skipped() {
        assert_eq!(skip_ws(b" \t\r\nx", 0), 4);
        assert_eq!(skip_ws(b"\x0cx", 0), 0);
        assert_eq!(skip_ws("\u{a0}x".as_bytes(), 0), 0);
        assert_eq!(skip_ws(b"  ", 1), 2);
        assert_eq!(skip_ws(b"  ", 5), 5);
    }

    #[test]
    fn keys_match_plain_or_escaped() {
        assert!(key_is(br#""id""#, "id"));
        assert!(key_is(br#""\u0069d""#, "id"));
        assert!(key_is(br#""a\"b""#, "a\"b"));
        for key in [
            &br#""ids""#[..],
            br#""ID""#,
            br#""i\d""#,
            b"id",
            br#""id"#,
            br#""""#,
        ] {
            assert!(!key_is(key, "id"), "{}", String::from_utf8_lossy(key));
        }
    }

    #[test]
    fn json_strings_are_unescaped_and_anything_else_refused() {
        assert_eq!(json_string(br#""a\nb""#).as_deref(), Some("a\nb"));
        assert_eq!(json_string(br#""\u00e9\/""#).as_deref(), Some("é/"));
        assert_eq!(json_string(br#""""#).as_deref(), Some(""));
        for raw in [&b"42"[..], b"\"open", br#""bad \q""#, b"\"\xff\"", b"null"] {
            assert_eq!(json_string(raw), None, "{}", String::from_utf8_lossy(raw));
        }
    }
}
