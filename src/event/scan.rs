//! The fast path of [`decode`](super::decode): a scanner for the flat
//! records that make up nearly all traffic (presence pings, ticks).
//!
//! It reads one JSON object whose values are strings without escapes,
//! integers or `null`, straight into the same [`Raw`] serde would build, and
//! gives up — returning `None`, so the caller takes the serde path — on
//! anything else: escapes, nested values, floats, duplicate known keys,
//! control characters, invalid UTF-8, trailing bytes. Whenever it returns a
//! record, serde would have returned the same one (a property test holds it
//! to that), so validation and errors stay in one place.

use std::borrow::Cow;

use super::{CowStr, Raw};

struct Cursor<'a> {
    /// The record, checked as UTF-8 once: strings are slices of it.
    s: &'a str,
    b: &'a [u8],
    i: usize,
}

impl<'a> Cursor<'a> {
    #[inline]
    fn ws(&mut self) {
        while let Some(b' ' | b'\t' | b'\n' | b'\r') = self.b.get(self.i) {
            self.i += 1;
        }
    }

    #[inline]
    fn next(&mut self) -> Option<u8> {
        let c = *self.b.get(self.i)?;
        self.i += 1;
        Some(c)
    }

    #[inline]
    fn peek(&self) -> Option<u8> {
        self.b.get(self.i).copied()
    }

    /// A string without escapes or control characters, after its `"`.
    #[inline]
    fn string(&mut self) -> Option<&'a str> {
        let start = self.i;
        let len = self.b[start..]
            .iter()
            .position(|&c| c == b'"' || c == b'\\' || c < 0x20)?;
        if self.b[start + len] != b'"' {
            return None;
        }
        self.i = start + len + 1;
        // Both ends are at ASCII bytes, so at character boundaries.
        self.s.get(start..start + len)
    }

    /// An integer as JSON writes it (`-?(0|[1-9][0-9]*)`, not `-0`), not
    /// followed by a fraction or an exponent; `None` for anything else or on
    /// overflow.
    fn integer(&mut self) -> Option<i64> {
        let negative = self.peek() == Some(b'-');
        if negative {
            self.i += 1;
        }
        let start = self.i;
        let mut n: i64 = 0;
        while let Some(c @ b'0'..=b'9') = self.peek() {
            let d = i64::from(c - b'0');
            n = n
                .checked_mul(10)?
                .checked_add(if negative { -d } else { d })?;
            self.i += 1;
        }
        let digits = self.i - start;
        // `-0` is a float to serde: let it decide.
        if digits == 0 || (digits > 1 && self.b[start] == b'0') || (negative && n == 0) {
            return None;
        }
        if let Some(b'.' | b'e' | b'E') = self.peek() {
            return None;
        }
        Some(n)
    }

    fn literal(&mut self, word: &[u8]) -> Option<()> {
        if self.b[self.i..].starts_with(word) {
            self.i += word.len();
            Some(())
        } else {
            None
        }
    }

    /// A string or `null`.
    fn opt_str(&mut self) -> Option<Option<CowStr<'a>>> {
        match self.next()? {
            b'"' => Some(Some(CowStr(Cow::Borrowed(self.string()?)))),
            b'n' => self.literal(b"ull").map(|_| None),
            _ => None,
        }
    }

    /// An integer or `null`.
    fn opt_int(&mut self) -> Option<Option<i64>> {
        match self.peek()? {
            b'n' => {
                self.i += 1;
                self.literal(b"ull").map(|_| None)
            }
            _ => self.integer().map(Some),
        }
    }

    /// The value of a key the record does not know: skipped, if scalar.
    fn skip(&mut self) -> Option<()> {
        match self.peek()? {
            b'"' => {
                self.i += 1;
                self.string().map(|_| ())
            }
            b'n' => self.literal(b"null"),
            b't' => self.literal(b"true"),
            b'f' => self.literal(b"false"),
            b'-' | b'0'..=b'9' => self.integer().map(|_| ()),
            _ => None,
        }
    }
}

/// Fills `raw` (left as `Raw::default()` made it) from a flat record;
/// `None` sends it down the serde path.
pub(super) fn scan<'a>(b: &'a [u8], raw: &mut Raw<'a>) -> Option<()> {
    // Invalid UTF-8 anywhere is refused by serde before it parses anything.
    let s = std::str::from_utf8(b).ok()?;
    let mut c = Cursor { s, b, i: 0 };
    let mut seen = 0u32;
    c.ws();
    if c.next()? != b'{' {
        return None;
    }
    c.ws();
    if c.peek()? == b'}' {
        c.i += 1;
    } else {
        loop {
            if c.next()? != b'"' {
                return None;
            }
            let key = c.string()?;
            c.ws();
            if c.next()? != b':' {
                return None;
            }
            c.ws();
            let slot = match key {
                "type" => Some((0, &mut raw.kind_tag)),
                "id" => Some((1, &mut raw.id)),
                "webinar_id" => Some((2, &mut raw.webinar_id)),
                "viewer_id" => Some((3, &mut raw.viewer_id)),
                "action" => Some((4, &mut raw.action)),
                "kind" => Some((5, &mut raw.kind)),
                "client_id" => Some((6, &mut raw.client_id)),
                "campaign_id" => Some((7, &mut raw.campaign_id)),
                "session_id" => Some((8, &mut raw.session_id)),
                "link_id" => Some((9, &mut raw.link_id)),
                "entry_id" => Some((10, &mut raw.entry_id)),
                "cid" => Some((11, &mut raw.cid)),
                "path" => Some((12, &mut raw.path)),
                "referrer" => Some((13, &mut raw.referrer)),
                "user_agent" => Some((14, &mut raw.user_agent)),
                "ip" => Some((15, &mut raw.ip)),
                "method" => Some((16, &mut raw.method)),
                _ => None,
            };
            match (slot, key) {
                (Some((bit, field)), _) => {
                    if seen & (1 << bit) != 0 {
                        return None;
                    }
                    seen |= 1 << bit;
                    *field = c.opt_str()?;
                }
                (None, "ts") => {
                    if seen & (1 << 18) != 0 {
                        return None;
                    }
                    seen |= 1 << 18;
                    raw.ts = c.opt_int()?;
                }
                (None, "status") => {
                    if seen & (1 << 19) != 0 {
                        return None;
                    }
                    seen |= 1 << 19;
                    raw.status = match c.opt_int()? {
                        None => None,
                        Some(n) => Some(u16::try_from(n).ok()?),
                    };
                }
                (None, "query") => {
                    if seen & (1 << 17) != 0 {
                        return None;
                    }
                    seen |= 1 << 17;
                    raw.query = c.opt_str()?.map(|s| super::Query(s.0));
                }
                // Nested UTM parameters take the serde path.
                (None, "utm") => return None,
                (None, _) => c.skip()?,
            }
            c.ws();
            match c.next()? {
                b',' => c.ws(),
                b'}' => break,
                _ => return None,
            }
        }
    }
    c.ws();
    (c.i == b.len()).then_some(())
}

#[cfg(test)]
mod tests {
    use super::super::{decode, decode_with_serde, validate};
    use super::*;
    use proptest::prelude::*;

    fn fast(line: &str) -> bool {
        scan(line.as_bytes(), &mut Raw::default()).is_some()
    }

    #[test]
    fn the_common_records_take_the_fast_path() {
        assert!(fast(
            r#"{"type":"presence","webinar_id":"w-17","viewer_id":"u-8812","action":"ping","ts":1764000000000}"#
        ));
        assert!(fast(r#"{"type":"tick","ts":1764000001000}"#));
        assert!(fast(" { \"type\" : \"tick\" ,\n\t\"ts\" : 0 } \r\n"));
        assert!(fast(
            r#"{"type":"pageview","path":"/","status":200,"extra":true,"n":null,"k":-5}"#
        ));
        assert!(fast("{}"));
    }

    #[test]
    fn anything_unusual_takes_the_serde_path() {
        for line in [
            r#"{"type":"presence","webinar_id":"w\u002d17"}"#,
            r#"{"type":"visit","utm":{"source":"x"}}"#,
            r#"{"ts":1.5}"#,
            r#"{"ts":1e3}"#,
            r#"{"ts":01}"#,
            r#"{"ts":-0}"#,
            r#"{"ts":99999999999999999999}"#,
            r#"{"ts":"1"}"#,
            r#"{"type":"a","type":"b"}"#,
            r#"{"x":{"nested":1}}"#,
            r#"{"x":[1]}"#,
            r#"{"type":"tick","ts":1} x"#,
            r#"{"type":"tick","ts":1,}"#,
            "{\"type\":\"a\tb\"}",
            r#"{"status":70000}"#,
            r#"{"status":-1}"#,
            r#"{"type":true}"#,
            "[1]",
            "",
        ] {
            assert!(!fast(line), "{line}");
        }
        assert!(
            scan(b"{\"type\":\"\xff\"}", &mut Raw::default()).is_none(),
            "invalid UTF-8"
        );
    }

    #[test]
    fn decode_answers_alike_on_both_paths() {
        let line = r#"{"type":"presence","webinar_id":"w 1","viewer_id":"u","action":"ping"}"#;
        assert!(fast(line));
        assert_eq!(decode(line.as_bytes()), decode_with_serde(line.as_bytes()));
    }

    /// Pieces of JSON-ish records: known and unknown keys, values of every
    /// kind (some the scanner refuses), odd spacing.
    fn token() -> impl Strategy<Value = String> {
        let key = prop_oneof![
            Just("type"),
            Just("id"),
            Just("ts"),
            Just("webinar_id"),
            Just("viewer_id"),
            Just("action"),
            Just("kind"),
            Just("client_id"),
            Just("campaign_id"),
            Just("session_id"),
            Just("entry_id"),
            Just("utm"),
            Just("path"),
            Just("ip"),
            Just("status"),
            Just("other"),
            Just(""),
        ];
        let value = prop_oneof![
            Just("\"presence\"".to_owned()),
            Just("\"ping\"".to_owned()),
            Just("\"leave\"".to_owned()),
            Just("\"tick\"".to_owned()),
            Just("\"chat\"".to_owned()),
            Just("\"visit\"".to_owned()),
            Just("\"w-1\"".to_owned()),
            Just("\"u 1\"".to_owned()),
            Just("\"\"".to_owned()),
            Just("\"a\\\"b\"".to_owned()),
            Just("\"é\"".to_owned()),
            Just("\"203.0.113.7\"".to_owned()),
            Just("null".to_owned()),
            Just("true".to_owned()),
            Just("0".to_owned()),
            Just("-0".to_owned()),
            Just("01".to_owned()),
            Just("1.5".to_owned()),
            Just("2e3".to_owned()),
            Just("-7".to_owned()),
            Just("65536".to_owned()),
            Just("9223372036854775807".to_owned()),
            Just("9223372036854775808".to_owned()),
            Just("{}".to_owned()),
            Just("[]".to_owned()),
            Just("{\"source\":\"x\"}".to_owned()),
            (0i64..2_000_000_000_000).prop_map(|n| n.to_string()),
        ];
        let space = prop_oneof![Just(""), Just(" "), Just("\n"), Just("\t ")];
        (key, value, space.clone(), space)
            .prop_map(|(k, v, a, b)| format!("{a}\"{k}\"{b}:{a}{v}{b}"))
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(3000))]
        #[test]
        fn whenever_the_scanner_answers_serde_agrees(
            tokens in prop::collection::vec(token(), 0..8),
            tail in prop_oneof![Just(""), Just(" "), Just(","), Just("}"), Just("x")],
        ) {
            let line = format!("{{{}}}{tail}", tokens.join(","));
            let mut raw = Raw::default();
            if scan(line.as_bytes(), &mut raw).is_some() {
                let mut serde: Raw<'_> = serde_json::from_slice(line.as_bytes())
                    .map_err(|e| TestCaseError::fail(format!("serde refused what the scanner took: {line}: {e}")))?;
                prop_assert_eq!(validate(&mut raw), validate(&mut serde), "{}", line);
            }
        }
    }
}
