//! Object keys: decoding the key of an S3 event and deriving thumbnail keys.

#[cfg(test)]
use crate::engine::Crop;
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

/// The short content identifier an original's thumbnail keys carry: the first 16 characters
/// of its ETag (lowercase, `-` and quotes dropped), `None` for an ETag without any.
///
/// The ETag rather than a hash of the bytes, because it is known wherever a key is derived:
/// the event (skipping without a GET), the item (`is_current`, `reprocess --only-missing`, the
/// delete path, which has no object left to hash) and the GET. A multipart ETag is no MD5 of
/// the content, and an SSE-KMS one differs on every upload; both still change whenever the
/// content does, which is what an immutable CDN cache needs. The price is that the same bytes
/// uploaded another way get new keys and are thumbnailed again — just as the ETag-based skip
/// already redoes them. 16 hex digits (64 bits) only need to tell apart the versions of one
/// source key.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct ContentId(String);

impl ContentId {
    pub const LEN: usize = 16;

    pub fn from_etag(etag: &str) -> Option<Self> {
        let id: String = etag
            .chars()
            .filter(char::is_ascii_alphanumeric)
            .take(Self::LEN)
            .map(|c| c.to_ascii_lowercase())
            .collect();
        (!id.is_empty()).then_some(Self(id))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Display for ContentId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

/// Key of the thumbnail of `source_key` (content `id`) for `spec` in the destination bucket:
/// `<size>/<source key stem>.<id>.<ext>` when the source key already ends with an extension of
/// the output format (`jpg` and `jpeg` count as the same, any case; the source's spelling is
/// kept), else `<size>/<source key>.<id>.<ext>`.
///
/// `256/photos/cat.<id>.jpg` for `photos/cat.jpg` as JPEG, `256/photos/cat.png.<id>.jpg` for
/// `photos/cat.png`, `320x200/a b+c.webp.<id>.jpg` for `a b+c.webp` in a 320x200 box.
///
/// The id goes in front of the extension, not in a prefix of its own, so that keys stay
/// grouped by size and then by the source's path (all versions of `photos/cat.jpg` sit next to
/// each other under `256/photos/`), and the file name still ends in the format's extension.
/// New content gives new keys, so the thumbnails can be cached as immutable.
pub fn thumbnail_key(
    spec: &ThumbSpec,
    source_key: &str,
    id: &ContentId,
    format: OutputFormat,
) -> String {
    match extension(source_key) {
        Some(ext) if format.matches_extension(ext) => {
            let stem = &source_key[..source_key.len() - ext.len() - 1];
            format!("{spec}/{stem}.{id}.{ext}")
        }
        _ => format!("{spec}/{source_key}.{id}.{}", format.extension()),
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
    fn content_ids_come_from_etags() {
        let id = |e: &str| ContentId::from_etag(e).map(|i| i.to_string());
        assert_eq!(
            id("\"D41D8CD98F00B204E9800998ECF8427E\"").as_deref(),
            Some("d41d8cd98f00b204")
        );
        assert_eq!(
            id("9b2cf535f27731c974343645a3985328-12").as_deref(),
            Some("9b2cf535f27731c9")
        );
        assert_eq!(id("ab-1").as_deref(), Some("ab1"));
        assert_eq!(id(""), None);
        assert_eq!(id("\"\""), None);
        // Keys and items carry the id as text: the same text as it displays.
        let etag = ContentId::from_etag("\"0123456789ABCDEF0123\"").expect("an id");
        assert_eq!(etag.as_str(), "0123456789abcdef");
    }

    #[test]
    fn thumbnail_keys() {
        let s = ThumbSpec::square(256);
        let r = ThumbSpec {
            width: 320,
            height: 200,
            crop: Crop::Fit,
        };
        let j = OutputFormat::Jpeg;
        let id = ContentId::from_etag("0123456789abcdef0123").expect("an id");
        let key = |spec, source| thumbnail_key(spec, source, &id, j);
        assert_eq!(
            key(&s, "photos/cat.jpg"),
            "256/photos/cat.0123456789abcdef.jpg"
        );
        assert_eq!(
            key(&s, "photos/cat.JPEG"),
            "256/photos/cat.0123456789abcdef.JPEG"
        );
        assert_eq!(
            key(&s, "photos/cat.png"),
            "256/photos/cat.png.0123456789abcdef.jpg"
        );
        assert_eq!(key(&s, "photos/cat"), "256/photos/cat.0123456789abcdef.jpg");
        assert_eq!(
            key(&s, "photos.jpg/cat"),
            "256/photos.jpg/cat.0123456789abcdef.jpg"
        );
        assert_eq!(key(&s, ".jpg"), "256/.jpg.0123456789abcdef.jpg");
        assert_eq!(
            thumbnail_key(&r, "a b+c.png", &id, OutputFormat::Webp),
            "320x200/a b+c.png.0123456789abcdef.webp"
        );
        assert_eq!(
            thumbnail_key(&r, "x.webp", &id, OutputFormat::Webp),
            "320x200/x.0123456789abcdef.webp"
        );
        let other = ContentId::from_etag("fedcba9876543210").expect("an id");
        assert_ne!(
            thumbnail_key(&s, "photos/cat.jpg", &other, j),
            key(&s, "photos/cat.jpg"),
            "new content, new key"
        );
    }
}
