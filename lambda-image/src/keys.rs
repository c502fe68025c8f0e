//! Object keys: decoding the key of an S3 event and deriving thumbnail keys.

use crate::engine::{OutputFormat, ThumbSpec};

/// Decodes an object key as S3 puts it into event notifications: `+` is a space, then
/// percent-decoding, then UTF-8. Invalid UTF-8 after decoding is replaced (U+FFFD) — such a
/// key could not be fetched anyway, and that failure is then reported for this record.
pub fn decode_event_key(raw: &str) -> String {
    let plus_decoded = raw.replace('+', " ");
    percent_encoding::percent_decode_str(&plus_decoded)
        .decode_utf8_lossy()
        .into_owned()
}

/// The extension of the last path segment of `key` (without the dot), if any.
fn extension(key: &str) -> Option<&str> {
    let name = key.rsplit('/').next().unwrap_or(key);
    let (stem, ext) = name.rsplit_once('.')?;
    (!stem.is_empty() && !ext.is_empty()).then_some(ext)
}

/// Key of the thumbnail of `source_key` for `spec` in the destination bucket:
/// `<size>/<source key>` when the source key already ends with an extension of the output
/// format (`jpg` and `jpeg` count as the same, any case), else `<size>/<source key>.<ext>`.
///
/// `256/photos/cat.jpg` for `photos/cat.jpg` as JPEG, `256/photos/cat.png.jpg` for
/// `photos/cat.png`, `320x200/a b+c.webp.jpg` for `a b+c.webp` in a 320x200 box.
pub fn thumbnail_key(spec: &ThumbSpec, source_key: &str, format: OutputFormat) -> String {
    match extension(source_key) {
        Some(ext) if format.matches_extension(ext) => format!("{spec}/{source_key}"),
        _ => format!("{spec}/{source_key}.{}", format.extension()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn event_keys_decode_like_s3() {
        assert_eq!(decode_event_key("photos/my+cat.jpg"), "photos/my cat.jpg");
        assert_eq!(decode_event_key("a%2Bb.jpg"), "a+b.jpg");
        assert_eq!(decode_event_key("caf%C3%A9+%E2%98%95.png"), "café ☕.png");
        assert_eq!(decode_event_key("100%25.jpg"), "100%.jpg");
        assert_eq!(decode_event_key("plain.jpg"), "plain.jpg");
    }

    #[test]
    fn thumbnail_keys() {
        let s = ThumbSpec::square(256);
        let r = ThumbSpec {
            width: 320,
            height: 200,
        };
        let j = OutputFormat::Jpeg;
        assert_eq!(thumbnail_key(&s, "photos/cat.jpg", j), "256/photos/cat.jpg");
        assert_eq!(
            thumbnail_key(&s, "photos/cat.JPEG", j),
            "256/photos/cat.JPEG"
        );
        assert_eq!(
            thumbnail_key(&s, "photos/cat.png", j),
            "256/photos/cat.png.jpg"
        );
        assert_eq!(thumbnail_key(&s, "photos/cat", j), "256/photos/cat.jpg");
        assert_eq!(
            thumbnail_key(&s, "photos.jpg/cat", j),
            "256/photos.jpg/cat.jpg"
        );
        assert_eq!(thumbnail_key(&s, ".jpg", j), "256/.jpg.jpg");
        assert_eq!(
            thumbnail_key(&r, "a b+c.png", OutputFormat::Webp),
            "320x200/a b+c.png.webp"
        );
        assert_eq!(
            thumbnail_key(&r, "x.webp", OutputFormat::Webp),
            "320x200/x.webp"
        );
    }
}
