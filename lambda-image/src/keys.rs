//! Object keys: decoding the key of an S3 event and deriving thumbnail keys.

#[cfg(test)]
use crate::engine::Crop;
use crate::engine::{OutputFormat, ThumbOptions, ThumbSpec};

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

/// The output settings a thumbnail's bytes depend on beyond its size and format, as the
/// short suffix its key carries: empty for JPEG/WebP/AVIF at quality 80 without the
/// copyright (and PNG without it, whatever the quality: PNG is lossless), else `-` and 8 hex
/// digits of a digest of the settings.
///
/// With `up --cdn` a thumbnail is cached for up to a year (`immutable`), so bytes must never
/// change under a key: new settings must give new keys, or the CDN keeps serving the old
/// bytes, including an Artist/Copyright the user has since turned off. The settings without
/// a suffix are fixed here, not the defaults of the day: they are what every key was made
/// with before keys carried settings, so those keys (and the items naming them) stay
/// current, and a later change of the defaults still changes the keys.
pub fn settings_suffix(format: OutputFormat, quality: u8, keep_copyright: bool) -> String {
    const UNSUFFIXED_QUALITY: u8 = 80;
    let lossy = !matches!(format, OutputFormat::Png);
    if (!lossy || quality == UNSUFFIXED_QUALITY) && !keep_copyright {
        return String::new();
    }
    // Versioned and spelled out, so that a setting added later digests differently.
    let canonical = format!(
        "v1;format={};quality={};copyright={}",
        format.extension(),
        if lossy { quality } else { 0 },
        u8::from(keep_copyright)
    );
    let h = fnv1a(canonical.bytes());
    format!("-{:08x}", (h >> 32) ^ (h & 0xffff_ffff))
}

/// FNV-1a, 64 bits: stable across builds and platforms (std's hasher is not). Nothing it
/// digests here is secret or chosen against it; it only has to tell a few values apart.
fn fnv1a(bytes: impl Iterator<Item = u8>) -> u64 {
    bytes.fold(0xcbf2_9ce4_8422_2325, |h, b| {
        (h ^ u64::from(b)).wrapping_mul(0x0000_0100_0000_01b3)
    })
}

/// Key of the thumbnail of `source_key` (content `id`) for `spec` with `opts`' format,
/// quality and copyright setting, in the destination bucket:
/// `<size>/<source key stem>.<id><settings>.<ext>` when the source key already ends with an
/// extension of the output format (`jpg` and `jpeg` count as the same, any case; the source's
/// spelling is kept), else `<size>/<source key>.<id><settings>.<ext>`, where `<settings>` is
/// [`settings_suffix`] (empty for the settings keys were made with before they carried any).
///
/// `256/photos/cat.<id>.jpg` for `photos/cat.jpg` as JPEG at quality 80,
/// `256/photos/cat.<id>-<8 hex>.jpg` at another quality or with the copyright kept,
/// `256/photos/cat.png.<id>.jpg` for `photos/cat.png`, `320x200/a b+c.webp.<id>.jpg` for
/// `a b+c.webp` in a 320x200 box.
///
/// The id goes in front of the extension, not in a prefix of its own, so that keys stay
/// grouped by size and then by the source's path (all versions of `photos/cat.jpg` sit next to
/// each other under `256/photos/`), and the file name still ends in the format's extension.
/// New content or new settings give new keys, so the thumbnails can be cached as immutable.
pub fn thumbnail_key(
    spec: &ThumbSpec,
    source_key: &str,
    id: &ContentId,
    opts: &ThumbOptions,
) -> String {
    let format = opts.format;
    let settings = settings_suffix(format, opts.quality, opts.keep_copyright);
    match extension(source_key) {
        Some(ext) if format.matches_extension(ext) => {
            let stem = &source_key[..source_key.len() - ext.len() - 1];
            format!("{spec}/{stem}.{id}{settings}.{ext}")
        }
        _ => format!("{spec}/{source_key}.{id}{settings}.{}", format.extension()),
    }
}

/// Characters a URL path segment may carry as they are (RFC 3986 unreserved); everything
/// else is percent-encoded as UTF-8. `+` too: S3 reads a `+` in a path as a space; and `*`,
/// which in an invalidation path would be a wildcard.
const SEGMENT: &percent_encoding::AsciiSet = &percent_encoding::NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'.')
    .remove(b'_')
    .remove(b'~');

/// The path of `key` behind the CDN: `/` and each `/`-separated segment percent-encoded, so
/// that CloudFront asks S3 for exactly that key. The one spelling of a key's URL: links
/// (`get`, `list`, the gallery) and invalidations must agree, since CloudFront matches an
/// invalidation path against the URL viewers asked for.
pub fn cdn_path(key: &str) -> String {
    let mut path = String::with_capacity(key.len() + 1);
    for seg in key.split('/') {
        path.push('/');
        path.extend(percent_encoding::utf8_percent_encode(seg, SEGMENT));
    }
    path
}

/// Paths per `CreateInvalidation` request. CloudFront allows 3,000 individual paths in
/// progress per distribution at a time (Developer Guide, "Concurrent invalidation request
/// maximum"); a third of it per request leaves room for the function's concurrent
/// invocations and `thumbctl delete` at the same time.
pub const INVALIDATION_BATCH: usize = 1000;

/// The invalidation batches that forget `keys` at the CDN: their [`cdn_path`]s, each once,
/// sorted, at most [`INVALIDATION_BATCH`] per batch. Individual paths only, never a
/// wildcard: wildcards have their own allowance of 15 in progress, and a prefix would also
/// forget thumbnails that stay.
pub fn invalidation_batches<'a>(keys: impl IntoIterator<Item = &'a str>) -> Vec<Vec<String>> {
    let paths: std::collections::BTreeSet<String> = keys
        .into_iter()
        .filter(|k| !k.is_empty())
        .map(cdn_path)
        .collect();
    let paths: Vec<String> = paths.into_iter().collect();
    paths
        .chunks(INVALIDATION_BATCH)
        .map(<[String]>::to_vec)
        .collect()
}

/// The `CallerReference` of one invalidation batch: `thumbctl-<ms>-<digest of the paths>`.
/// Made once per batch and sent again on every retry of it, so that a request CloudFront
/// applied but whose answer was lost is answered with the invalidation it made, not made
/// twice (a reused reference with the same paths returns the earlier invalidation). The time
/// keeps a later removal of the same keys (a re-upload of the same bytes, deleted again)
/// from being taken for that earlier one, which would then invalidate nothing.
pub fn invalidation_reference(paths: &[String], unix_ms: u128) -> String {
    let h = fnv1a(
        paths
            .iter()
            .flat_map(|p| p.bytes().chain(std::iter::once(b'\n'))),
    );
    format!("thumbctl-{unix_ms}-{h:016x}")
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
        let j = ThumbOptions::default();
        let webp = ThumbOptions {
            format: OutputFormat::Webp,
            ..ThumbOptions::default()
        };
        let id = ContentId::from_etag("0123456789abcdef0123").expect("an id");
        let key = |spec, source| thumbnail_key(spec, source, &id, &j);
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
            thumbnail_key(&r, "a b+c.png", &id, &webp),
            "320x200/a b+c.png.0123456789abcdef.webp"
        );
        assert_eq!(
            thumbnail_key(&r, "x.webp", &id, &webp),
            "320x200/x.0123456789abcdef.webp"
        );
        let other = ContentId::from_etag("fedcba9876543210").expect("an id");
        assert_ne!(
            thumbnail_key(&s, "photos/cat.jpg", &other, &j),
            key(&s, "photos/cat.jpg"),
            "new content, new key"
        );
    }

    #[test]
    fn new_settings_give_new_keys() {
        let s = ThumbSpec::square(256);
        let id = ContentId::from_etag("0123456789abcdef").expect("an id");
        let opts = |format, quality, keep_copyright| ThumbOptions {
            format,
            quality,
            keep_copyright,
            ..ThumbOptions::default()
        };
        let key = |o: &ThumbOptions| thumbnail_key(&s, "photos/cat.jpg", &id, o);
        let j = OutputFormat::Jpeg;
        let base = key(&opts(j, 80, false));
        let q50 = key(&opts(j, 50, false));
        let copyright = key(&opts(j, 80, true));
        let both = key(&opts(j, 50, true));
        let all = [&base, &q50, &copyright, &both];
        for (i, a) in all.iter().enumerate() {
            for b in &all[i + 1..] {
                assert_ne!(a, b, "other settings, other key");
            }
        }
        assert_eq!(
            q50,
            key(&opts(j, 50, false)),
            "the same settings, the same key"
        );
        assert_eq!(q50.len(), base.len() + 9, "a dash and 8 hex digits: {q50}");
        assert!(q50.starts_with("256/photos/cat.0123456789abcdef-") && q50.ends_with(".jpg"));
        for lossy in [OutputFormat::Webp, OutputFormat::Avif] {
            assert_ne!(
                settings_suffix(lossy, 80, false),
                settings_suffix(lossy, 81, false)
            );
        }
        // PNG is lossless: its quality changes no byte, so no key.
        let p = OutputFormat::Png;
        assert_eq!(settings_suffix(p, 30, false), "");
        assert_eq!(settings_suffix(p, 30, true), settings_suffix(p, 90, true));
        assert_ne!(settings_suffix(p, 30, true), "");
        // The same numbers in another format never share a suffix.
        assert_ne!(
            settings_suffix(OutputFormat::Webp, 50, false),
            settings_suffix(j, 50, false)
        );
        // Pinned: keys already in buckets must keep their names across releases.
        assert_eq!(settings_suffix(j, 50, false), "-fe6acc5b");
    }

    #[test]
    fn cdn_paths_encode_each_segment_and_keep_the_slashes() {
        assert_eq!(
            cdn_path("256/2026/my cat+dog é.jpg"),
            "/256/2026/my%20cat%2Bdog%20%C3%A9.jpg"
        );
        assert_eq!(cdn_path("128/a?b#c%d*.jpg"), "/128/a%3Fb%23c%25d%2A.jpg");
        assert_eq!(cdn_path("8/x-y_z~.jpg"), "/8/x-y_z~.jpg");
    }

    #[test]
    fn invalidations_are_batched_and_referenced_by_their_paths() {
        let keys: Vec<String> = (0..2500).map(|i| format!("8/k{i:04}.jpg")).collect();
        let mut with_dupes: Vec<&str> = keys.iter().map(String::as_str).collect();
        with_dupes.push("8/k0000.jpg");
        with_dupes.push("");
        let batches = invalidation_batches(with_dupes);
        assert_eq!(
            batches.iter().map(Vec::len).collect::<Vec<_>>(),
            [1000, 1000, 500]
        );
        assert_eq!(batches[0][0], "/8/k0000.jpg");
        assert!(invalidation_batches(Vec::<&str>::new()).is_empty());
        let a = invalidation_reference(&batches[0], 7);
        assert_eq!(
            a,
            invalidation_reference(&batches[0], 7),
            "a retry reuses it"
        );
        assert_ne!(a, invalidation_reference(&batches[1], 7), "other paths");
        assert_ne!(a, invalidation_reference(&batches[0], 8), "a later removal");
        assert!(a.starts_with("thumbctl-7-") && a.len() <= 128, "{a}");
    }
}
