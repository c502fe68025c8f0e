//! The function's configuration, from its environment.

use std::collections::HashMap;

use crate::engine::{DEFAULT_MAX_BYTES, DEFAULT_MAX_PIXELS, OutputFormat, ThumbOptions, ThumbSpec};

/// Default `THUMB_SIZES`.
pub const DEFAULT_SIZES: &str = "256";
/// Default `THUMB_FORMAT`.
pub const DEFAULT_FORMAT: &str = "jpeg";
/// Default `THUMB_QUALITY`.
pub const DEFAULT_QUALITY: u8 = 80;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Config {
    /// `DEST_BUCKET` (required): where thumbnails go; events from it are always ignored.
    pub dest_bucket: String,
    /// `TABLE_NAME` (required): DynamoDB table, hash key `id` (S).
    pub table_name: String,
    /// `TOPIC_ARN` (required): SNS topic for one message per processed object.
    pub topic_arn: String,
    /// `SOURCE_BUCKET` (optional): when set, events from any other bucket are ignored.
    pub source_bucket: Option<String>,
    /// `THUMB_SIZES`, `THUMB_FORMAT`, `THUMB_QUALITY`, `MAX_PIXELS`, `MAX_BYTES`.
    pub thumb: ThumbOptions,
    /// `CDN_DISTRIBUTION_ID` (optional, `up --cdn`): the CloudFront distribution serving the
    /// thumbnails; every thumbnail the function deletes is invalidated there.
    pub cdn_distribution_id: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ConfigError {
    #[error("{0} is not set")]
    Missing(&'static str),
    #[error("{name}={value:?} is invalid: {reason}")]
    Invalid {
        name: &'static str,
        value: String,
        reason: String,
    },
}

fn invalid(name: &'static str, value: &str, reason: impl Into<String>) -> ConfigError {
    ConfigError::Invalid {
        name,
        value: value.to_string(),
        reason: reason.into(),
    }
}

impl Config {
    /// Reads the process environment.
    pub fn from_env() -> Result<Self, ConfigError> {
        let vars: HashMap<String, String> = std::env::vars_os()
            .filter_map(|(k, v)| Some((k.into_string().ok()?, v.into_string().ok()?)))
            .collect();
        Self::from_vars(&vars)
    }

    /// Reads a map of environment variables (e.g. a function's configuration read back from
    /// AWS). Empty values count as unset.
    pub fn from_vars(vars: &HashMap<String, String>) -> Result<Self, ConfigError> {
        let get = |name: &'static str| -> Option<&str> {
            vars.get(name).map(|v| v.trim()).filter(|v| !v.is_empty())
        };
        let required = |name: &'static str| -> Result<String, ConfigError> {
            get(name)
                .map(str::to_string)
                .ok_or(ConfigError::Missing(name))
        };
        let dest_bucket = required("DEST_BUCKET")?;
        let table_name = required("TABLE_NAME")?;
        let topic_arn = required("TOPIC_ARN")?;
        let source_bucket = get("SOURCE_BUCKET").map(str::to_string);
        let cdn_distribution_id = get("CDN_DISTRIBUTION_ID").map(str::to_string);

        let sizes_raw = get("THUMB_SIZES").unwrap_or(DEFAULT_SIZES);
        let mut sizes: Vec<ThumbSpec> = Vec::new();
        for part in sizes_raw.split(',') {
            let spec: ThumbSpec = part.parse().map_err(|e: crate::engine::ThumbSpecError| {
                invalid("THUMB_SIZES", sizes_raw, e.to_string())
            })?;
            if sizes.contains(&spec) {
                return Err(invalid(
                    "THUMB_SIZES",
                    sizes_raw,
                    format!("{spec} is listed twice"),
                ));
            }
            sizes.push(spec);
        }

        let format_raw = get("THUMB_FORMAT").unwrap_or(DEFAULT_FORMAT);
        let format: OutputFormat = format_raw.parse().map_err(|_| {
            invalid(
                "THUMB_FORMAT",
                format_raw,
                "expected jpeg, png, webp or avif",
            )
        })?;

        let quality = match get("THUMB_QUALITY") {
            None => DEFAULT_QUALITY,
            Some(q) => q
                .parse::<u8>()
                .ok()
                .filter(|q| (1..=100).contains(q))
                .ok_or_else(|| invalid("THUMB_QUALITY", q, "expected an integer from 1 to 100"))?,
        };

        let positive = |name: &'static str, default: u64| -> Result<u64, ConfigError> {
            match get(name) {
                None => Ok(default),
                Some(v) => v
                    .parse::<u64>()
                    .ok()
                    .filter(|n| *n > 0)
                    .ok_or_else(|| invalid(name, v, "expected a positive integer")),
            }
        };
        let keep_copyright = match get("THUMB_KEEP_COPYRIGHT") {
            None | Some("false") => false,
            Some("true") => true,
            Some(v) => return Err(invalid("THUMB_KEEP_COPYRIGHT", v, "expected true or false")),
        };
        let max_pixels = positive("MAX_PIXELS", DEFAULT_MAX_PIXELS)?;
        let max_bytes = positive("MAX_BYTES", DEFAULT_MAX_BYTES)?;

        Ok(Self {
            dest_bucket,
            table_name,
            topic_arn,
            source_bucket,
            thumb: ThumbOptions {
                sizes,
                format,
                quality,
                max_pixels,
                max_bytes,
                keep_copyright,
            },
            cdn_distribution_id,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn vars(pairs: &[(&str, &str)]) -> HashMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    const BASE: [(&str, &str); 3] = [
        ("DEST_BUCKET", "dest"),
        ("TABLE_NAME", "table"),
        ("TOPIC_ARN", "arn:aws:sns:us-east-1:123456789012:t"),
    ];

    #[test]
    fn defaults_and_full() {
        let c = Config::from_vars(&vars(&BASE)).unwrap();
        assert_eq!(c.thumb.sizes, vec![ThumbSpec::square(256)]);
        assert_eq!(c.thumb.format, OutputFormat::Jpeg);
        assert_eq!(c.thumb.quality, 80);
        assert_eq!(c.thumb.max_pixels, 100_000_000);
        assert_eq!(c.thumb.max_bytes, 50 * 1024 * 1024);
        assert_eq!(c.source_bucket, None);
        assert!(!c.thumb.keep_copyright);

        let mut v = vars(&BASE);
        v.extend(vars(&[
            ("THUMB_SIZES", "128, 320x200,1024"),
            ("THUMB_FORMAT", "webp"),
            ("THUMB_QUALITY", "70"),
            ("MAX_PIXELS", "1000"),
            ("MAX_BYTES", "2000"),
            ("SOURCE_BUCKET", "src"),
            ("THUMB_KEEP_COPYRIGHT", "true"),
        ]));
        let c = Config::from_vars(&v).unwrap();
        let shown: Vec<String> = c.thumb.sizes.iter().map(|s| s.to_string()).collect();
        assert_eq!(shown, ["128", "320x200", "1024"]);
        assert_eq!(c.thumb.format, OutputFormat::Webp);
        assert_eq!(
            (c.thumb.quality, c.thumb.max_pixels, c.thumb.max_bytes),
            (70, 1000, 2000)
        );
        assert_eq!(c.source_bucket.as_deref(), Some("src"));
        assert!(c.thumb.keep_copyright);
    }

    #[test]
    fn errors_name_the_variable() {
        let e = Config::from_vars(&vars(&BASE[1..])).unwrap_err();
        assert_eq!(e.to_string(), "DEST_BUCKET is not set");
        for (k, v) in [
            ("THUMB_SIZES", "256,abc"),
            ("THUMB_SIZES", "256,256x256"),
            ("THUMB_FORMAT", "gif"),
            ("THUMB_QUALITY", "0"),
            ("THUMB_QUALITY", "101"),
            ("MAX_PIXELS", "-1"),
            ("MAX_BYTES", "0"),
            ("THUMB_KEEP_COPYRIGHT", "yes"),
        ] {
            let mut m = vars(&BASE);
            m.insert(k.into(), v.into());
            let e = Config::from_vars(&m).unwrap_err();
            assert!(e.to_string().starts_with(k), "{k}={v}: {e}");
        }
    }
}
