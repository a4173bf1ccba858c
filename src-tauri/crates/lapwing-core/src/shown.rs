//! Text from outside made safe to show. Product names and vendors come from manifests that
//! anyone who can write a products folder wrote, host and instance names from DNS and mDNS,
//! notices and features from a server. Printed as they are, an ESC sequence rewrites a
//! terminal, a bidi override reverses what follows it (a menu label, the rest of a line), and
//! markup in a notification body is obeyed. Every place that shows such text to a person goes
//! through [`shown`] (and a notification body through [`markup_escaped`] as well); data for
//! programs (JSON) keeps the exact text, where the encoder escapes what it must.

use std::borrow::Cow;
use std::fmt::Write as _;

/// Characters that change how the text around them is laid out without being seen: the bidi
/// embeddings and overrides (U+202A–U+202E), the isolates (U+2066–U+2069) and the marks
/// (U+200E, U+200F, U+061C).
fn is_bidi_control(c: char) -> bool {
    matches!(c, '\u{202A}'..='\u{202E}' | '\u{2066}'..='\u{2069}' | '\u{200E}' | '\u{200F}' | '\u{061C}')
}

/// Whether `c` must not reach a person's screen as itself: C0 (tab and newline included: the
/// text is one field of a line), DEL, C1, and the bidi controls.
fn is_unsafe(c: char) -> bool {
    c.is_control() || is_bidi_control(c)
}

/// `text` with every control and bidi character written as `\u{…}`, so that it shows what was
/// there and does nothing; borrowed when there was none (the usual case).
pub fn shown(text: &str) -> Cow<'_, str> {
    if !text.chars().any(is_unsafe) {
        return Cow::Borrowed(text);
    }
    let mut out = String::with_capacity(text.len() + 8);
    for c in text.chars() {
        if is_unsafe(c) {
            // Writing to a String cannot fail.
            let _ = write!(out, "\\u{{{:x}}}", u32::from(c));
        } else {
            out.push(c);
        }
    }
    Cow::Owned(out)
}

/// [`shown`], then `&`, `<` and `>` as entities: a freedesktop notification body may be read
/// as markup, in which `<b>` would be obeyed and a stray `&` or `<` cut the text short.
pub fn markup_escaped(text: &str) -> String {
    let shown = shown(text);
    let mut out = String::with_capacity(shown.len());
    for c in shown.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            c => out.push(c),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plain_text_is_borrowed_unchanged() {
        let text = "Acme Studio — Évaluation: 9 days left <b>&";
        assert!(matches!(shown(text), Cow::Borrowed(t) if t == text));
    }

    #[test]
    fn controls_and_bidi_characters_are_written_out() {
        assert_eq!(shown("\u{1b}[2JAcme"), "\\u{1b}[2JAcme");
        assert_eq!(shown("a\u{202E}b\u{2066}c"), "a\\u{202e}b\\u{2066}c");
        assert_eq!(
            shown("a\tb\nc\u{7f}d\u{9b}e"),
            "a\\u{9}b\\u{a}c\\u{7f}d\\u{9b}e"
        );
        for c in [
            '\u{202A}', '\u{202D}', '\u{2069}', '\u{200E}', '\u{200F}', '\u{061C}',
        ] {
            assert!(!shown(&format!("x{c}y")).contains(c), "{c:?}");
        }
        // Other format characters (a zero-width joiner in an emoji) are text, not layout.
        assert_eq!(shown("a\u{200D}b"), "a\u{200D}b");
    }

    #[test]
    fn markup_is_escaped_after_controls() {
        assert_eq!(
            markup_escaped("<b>bold</b> & \u{1b}[1m"),
            "&lt;b&gt;bold&lt;/b&gt; &amp; \\u{1b}[1m"
        );
        assert_eq!(markup_escaped("Acme Studio"), "Acme Studio");
    }
}
