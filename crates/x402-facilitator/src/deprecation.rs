//! The v1 retirement timeline on every v1 answer: `Deprecation` (RFC 9745), `Sunset`
//! (RFC 8594) and a `Link` to the migration guide. Resource servers' HTTP tooling and logs
//! see the dates without anyone reading a changelog, and v1 keeps working until the
//! operator switches it off (`X402_VERSION_SUPPORT=v2`).

use std::time::{SystemTime, UNIX_EPOCH};

use axum::http::{HeaderName, HeaderValue};

/// What was wrong with one deprecation setting (the configuration names the key).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct DeprecationError {
    /// Which setting: `since`, `sunset` or `link`.
    pub setting: &'static str,
    /// What is wrong.
    pub message: String,
}

/// The headers added to v1 answers, formatted once at start.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct V1Deprecation {
    headers: Vec<(HeaderName, HeaderValue)>,
}

fn parse_time(setting: &'static str, text: &str) -> Result<SystemTime, DeprecationError> {
    humantime::parse_rfc3339_weak(text.trim()).map_err(|e| DeprecationError {
        setting,
        message: format!("{text:?} is not an RFC 3339 date and time (2027-06-30T00:00:00Z): {e}"),
    })
}

fn header(setting: &'static str, value: String) -> Result<HeaderValue, DeprecationError> {
    HeaderValue::from_str(&value).map_err(|_| DeprecationError {
        setting,
        message: format!("{value:?} cannot be sent as a header value"),
    })
}

impl V1Deprecation {
    /// Builds the notice from the three optional settings; all absent means no notice.
    pub fn new(
        since: Option<&str>,
        sunset: Option<&str>,
        link: Option<&str>,
    ) -> Result<V1Deprecation, DeprecationError> {
        let since = since.map(|t| parse_time("since", t)).transpose()?;
        let sunset = sunset.map(|t| parse_time("sunset", t)).transpose()?;
        if let (Some(since), Some(sunset)) = (since, sunset) {
            if sunset < since {
                return Err(DeprecationError {
                    setting: "sunset",
                    message: "the sunset comes before the deprecation date".into(),
                });
            }
        }
        let mut headers = Vec::new();
        if let Some(since) = since {
            // RFC 9745: a structured-field date, seconds since the epoch.
            let seconds = since
                .duration_since(UNIX_EPOCH)
                .map_err(|_| DeprecationError {
                    setting: "since",
                    message: "the deprecation date is before 1970".into(),
                })?
                .as_secs();
            headers.push((
                HeaderName::from_static("deprecation"),
                header("since", format!("@{seconds}"))?,
            ));
        }
        if let Some(sunset) = sunset {
            headers.push((
                HeaderName::from_static("sunset"),
                header("sunset", httpdate::fmt_http_date(sunset))?,
            ));
        }
        if let Some(link) = link {
            let link = link.trim();
            let well_formed = (link.starts_with("https://") || link.starts_with("http://"))
                && !link.contains(['<', '>', ' ', '"']);
            if !well_formed {
                return Err(DeprecationError {
                    setting: "link",
                    message: format!("{link:?} is not an http(s) URL"),
                });
            }
            headers.push((
                HeaderName::from_static("link"),
                header("link", format!("<{link}>; rel=\"deprecation\""))?,
            ));
        }
        if headers.is_empty() {
            return Ok(V1Deprecation::default());
        }
        if since.is_none() {
            // Sunset or link alone still announce a retirement: say it is deprecated now.
            let now = SystemTime::now()
                .duration_since(UNIX_EPOCH)
                .map(|d| d.as_secs())
                .unwrap_or(0);
            headers.insert(
                0,
                (
                    HeaderName::from_static("deprecation"),
                    header("since", format!("@{now}"))?,
                ),
            );
        }
        Ok(V1Deprecation { headers })
    }

    /// The headers for a v1 answer (empty when no notice is configured).
    pub fn headers(&self) -> &[(HeaderName, HeaderValue)] {
        &self.headers
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn value<'a>(d: &'a V1Deprecation, name: &str) -> Option<&'a str> {
        d.headers()
            .iter()
            .find(|(n, _)| n.as_str() == name)
            .and_then(|(_, v)| v.to_str().ok())
    }

    #[test]
    fn dates_and_link_are_formatted_as_the_rfcs_say() {
        let d = V1Deprecation::new(
            Some("2026-12-01T00:00:00Z"),
            Some("2027-06-30T00:00:00Z"),
            Some("https://example.com/x402-v2-migration"),
        )
        .unwrap();
        assert_eq!(value(&d, "deprecation"), Some("@1796083200"));
        assert_eq!(value(&d, "sunset"), Some("Wed, 30 Jun 2027 00:00:00 GMT"));
        assert_eq!(
            value(&d, "link"),
            Some("<https://example.com/x402-v2-migration>; rel=\"deprecation\"")
        );
    }

    #[test]
    fn nothing_configured_means_no_headers() {
        assert!(V1Deprecation::new(None, None, None)
            .unwrap()
            .headers()
            .is_empty());
    }

    #[test]
    fn a_sunset_alone_also_marks_v1_deprecated() {
        let d = V1Deprecation::new(None, Some("2027-06-30T00:00:00Z"), None).unwrap();
        assert!(value(&d, "deprecation").is_some_and(|v| v.starts_with('@')));
        assert!(value(&d, "sunset").is_some());
    }

    #[test]
    fn bad_settings_are_refused_with_their_name() {
        let cases = [
            (Some("next june"), None, None, "since"),
            (None, Some("2027-13-01T00:00:00Z"), None, "sunset"),
            (
                Some("2027-06-30T00:00:00Z"),
                Some("2027-01-01T00:00:00Z"),
                None,
                "sunset",
            ),
            (None, None, Some("ftp://example.com"), "link"),
            (None, None, Some("https://example.com/a b"), "link"),
            (None, None, Some("https://example.com/>; rel=x"), "link"),
        ];
        for (since, sunset, link, setting) in cases {
            let err = V1Deprecation::new(since, sunset, link).unwrap_err();
            assert_eq!(err.setting, setting, "{since:?} {sunset:?} {link:?}: {err}");
        }
    }
}
