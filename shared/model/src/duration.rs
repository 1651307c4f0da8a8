//! Durations as Kuma writes them: Go-style sequences such as `1h30m` or `500ms`, plus `d`
//! (24h) and `y` (365d), which CA lifetimes use.

use std::time::Duration;

/// Why a duration string was rejected.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DurationError {
    #[error("must not be empty")]
    Empty,
    #[error("expected a number at {0:?}")]
    MissingNumber(String),
    #[error("unknown unit {0:?}; use ns, us, ms, s, m, h, d or y")]
    UnknownUnit(String),
    #[error("is too large")]
    Overflow,
}

/// Parses `10s`, `1h30m`, `1.5h`, `24h`, `1d`, `10y`, `0`.
pub fn parse(text: &str) -> Result<Duration, DurationError> {
    if text.is_empty() {
        return Err(DurationError::Empty);
    }
    if text == "0" {
        return Ok(Duration::ZERO);
    }
    let mut rest = text;
    let mut total = 0f64;
    while !rest.is_empty() {
        let number_len = rest
            .find(|c: char| !(c.is_ascii_digit() || c == '.'))
            .unwrap_or(rest.len());
        let number: f64 = rest[..number_len]
            .parse()
            .map_err(|_| DurationError::MissingNumber(rest.to_string()))?;
        rest = &rest[number_len..];
        let unit_len = rest
            .find(|c: char| c.is_ascii_digit() || c == '.')
            .unwrap_or(rest.len());
        let seconds = match &rest[..unit_len] {
            "ns" => 1e-9,
            "us" | "µs" => 1e-6,
            "ms" => 1e-3,
            "s" => 1.0,
            "m" => 60.0,
            "h" => 3600.0,
            "d" => 86_400.0,
            "y" => 365.0 * 86_400.0,
            other => return Err(DurationError::UnknownUnit(other.to_string())),
        };
        rest = &rest[unit_len..];
        total += number * seconds;
    }
    Duration::try_from_secs_f64(total).map_err(|_| DurationError::Overflow)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_kuma_forms() {
        assert_eq!(parse("10s"), Ok(Duration::from_secs(10)));
        assert_eq!(parse("1h30m"), Ok(Duration::from_secs(5400)));
        assert_eq!(parse("500ms"), Ok(Duration::from_millis(500)));
        assert_eq!(parse("1d"), Ok(Duration::from_secs(86_400)));
        assert_eq!(parse("10y"), Ok(Duration::from_secs(10 * 365 * 86_400)));
        assert_eq!(parse("0"), Ok(Duration::ZERO));
    }

    #[test]
    fn rejects_malformed() {
        assert_eq!(parse(""), Err(DurationError::Empty));
        assert_eq!(parse("10"), Err(DurationError::UnknownUnit(String::new())));
        assert_eq!(parse("5w"), Err(DurationError::UnknownUnit("w".into())));
        assert!(matches!(parse("h"), Err(DurationError::MissingNumber(_))));
        assert_eq!(parse("99999999999999999999y"), Err(DurationError::Overflow));
    }
}
