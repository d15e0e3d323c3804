//! The streaming coordinator's publish options, as its key-verification webhook answers them in
//! response headers: `x-record`, `x-previews`, `x-resolutions`.

use crate::verify::{Preview, PublishOptions, Rendition};
use std::time::Duration;

/// A header whose value does not follow the documented format.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{header}: {value:?} is not {expected}")]
pub struct OptionsError {
    /// The header.
    pub header: &'static str,
    /// Its value.
    pub value: String,
    /// The documented format.
    pub expected: &'static str,
}

impl PublishOptions {
    /// Reads the options from the webhook's response headers (absent ones take the defaults:
    /// no recording, no previews, the original rendition only).
    ///
    /// - `x-record`: `true` or `false`;
    /// - `x-previews`: `WIDTHxHEIGHT, SECONDS` or `False` (a width of 0 keeps the aspect ratio);
    /// - `x-resolutions`: a comma-separated list of `WIDTHxHEIGHT-FPS`, `WIDTHxHEIGHT-FPS~KBPS`
    ///   or `ORIGINAL`.
    ///
    /// ```
    /// use media_ingest::{PublishOptions, Rendition};
    ///
    /// let options = PublishOptions::from_webhook_headers(Some("true"), Some("320x180, 5"), Some("1280x720-30~2500,ORIGINAL"))?;
    /// assert!(options.record);
    /// assert_eq!(options.renditions[1], Rendition::Original);
    /// # Ok::<(), media_ingest::OptionsError>(())
    /// ```
    pub fn from_webhook_headers(
        record: Option<&str>,
        previews: Option<&str>,
        resolutions: Option<&str>,
    ) -> Result<Self, OptionsError> {
        let record = match record.map(str::trim) {
            None => false,
            Some(value) if value.eq_ignore_ascii_case("true") => true,
            Some(value) if value.eq_ignore_ascii_case("false") => false,
            Some(value) => return Err(invalid("x-record", value, "true or false")),
        };
        let previews =
            match previews.map(str::trim) {
                None => None,
                Some(value) if value.eq_ignore_ascii_case("false") => None,
                Some(value) => Some(parse_preview(value).ok_or_else(|| {
                    invalid("x-previews", value, "WIDTHxHEIGHT, SECONDS or False")
                })?),
            };
        let renditions = match resolutions.map(str::trim) {
            None => vec![Rendition::Original],
            Some(value) => value
                .split(',')
                .map(|item| parse_rendition(item.trim()))
                .collect::<Option<Vec<_>>>()
                .filter(|list| !list.is_empty())
                .ok_or_else(|| {
                    invalid(
                        "x-resolutions",
                        value,
                        "a list of WIDTHxHEIGHT-FPS[~KBPS] or ORIGINAL",
                    )
                })?,
        };
        Ok(Self {
            record,
            previews,
            renditions,
            label: None,
        })
    }
}

fn invalid(header: &'static str, value: &str, expected: &'static str) -> OptionsError {
    OptionsError {
        header,
        value: value.to_owned(),
        expected,
    }
}

/// `WIDTHxHEIGHT`, both even and at most 8192; a width of 0 is allowed where `zero_width` says
/// so (keep the aspect ratio).
fn dimensions(text: &str, zero_width: bool) -> Option<(u32, u32)> {
    let (width, height) = text.trim().split_once(['x', 'X'])?;
    let (width, height): (u32, u32) = (width.trim().parse().ok()?, height.trim().parse().ok()?);
    // Encoders need even sizes, and nothing sensible is larger than 8K.
    let valid = |n: u32| (2..=8192).contains(&n) && n.is_multiple_of(2);
    ((valid(width) || zero_width && width == 0) && valid(height)).then_some((width, height))
}

fn parse_preview(value: &str) -> Option<Preview> {
    let (size, seconds) = value.split_once(',')?;
    let (width, height) = dimensions(size, true)?;
    let seconds: u64 = seconds
        .trim()
        .parse()
        .ok()
        .filter(|s| (1..=3600).contains(s))?;
    Some(Preview {
        width,
        height,
        interval: Duration::from_secs(seconds),
    })
}

fn parse_rendition(item: &str) -> Option<Rendition> {
    if item.eq_ignore_ascii_case("original") {
        return Some(Rendition::Original);
    }
    let (size, rest) = item.split_once('-')?;
    let (width, height) = dimensions(size, false)?;
    let (fps, kbps) = match rest.split_once('~') {
        Some((fps, kbps)) => (
            fps,
            Some(
                kbps.trim()
                    .parse()
                    .ok()
                    .filter(|k| (16..=200_000).contains(k))?,
            ),
        ),
        None => (rest, None),
    };
    let fps = fps.trim().parse().ok().filter(|f| (1..=240).contains(f))?;
    Some(Rendition::Scaled {
        width,
        height,
        fps,
        kbps,
    })
}

#[cfg(test)]
mod tests_options {
    use super::*;

    #[test]
    fn absent_headers_give_the_defaults() {
        let options = PublishOptions::from_webhook_headers(None, None, None).expect("valid");
        assert_eq!(
            options,
            PublishOptions {
                record: false,
                previews: None,
                renditions: vec![Rendition::Original],
                label: None,
            }
        );
    }

    #[test]
    fn every_documented_form_is_read() {
        let options = PublishOptions::from_webhook_headers(
            Some("TRUE"),
            Some(" 320x180, 5 "),
            Some("1920x1080-60, 1280x720-30~2500 ,original"),
        )
        .expect("valid");
        assert!(options.record);
        assert_eq!(
            options.previews,
            Some(Preview {
                width: 320,
                height: 180,
                interval: Duration::from_secs(5)
            })
        );
        assert_eq!(
            options.renditions,
            [
                Rendition::Scaled {
                    width: 1920,
                    height: 1080,
                    fps: 60,
                    kbps: None
                },
                Rendition::Scaled {
                    width: 1280,
                    height: 720,
                    fps: 30,
                    kbps: Some(2500)
                },
                Rendition::Original,
            ]
        );
        let off =
            PublishOptions::from_webhook_headers(Some("false"), Some("False"), Some("ORIGINAL"))
                .expect("valid");
        assert_eq!((off.record, off.previews), (false, None));
    }

    #[test]
    fn malformed_values_are_refused_by_name() {
        for (record, previews, resolutions, header) in [
            (Some("yes"), None, None, "x-record"),
            (None, Some("320x180"), None, "x-previews"),
            (None, Some("320x180, 0"), None, "x-previews"),
            (None, Some("321x180, 5"), None, "x-previews"),
            (None, None, Some(""), "x-resolutions"),
            (None, None, Some("1280x720"), "x-resolutions"),
            (None, None, Some("1280x720-30~"), "x-resolutions"),
            (None, None, Some("1280x720-0"), "x-resolutions"),
            (None, None, Some("99999x720-30"), "x-resolutions"),
            (None, None, Some("1280x720-30,,ORIGINAL"), "x-resolutions"),
        ] {
            let error = PublishOptions::from_webhook_headers(record, previews, resolutions)
                .expect_err("invalid");
            assert_eq!(error.header, header, "{error}");
        }
    }
}
