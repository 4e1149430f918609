//! How formwork writes durations, dates and error chains for people, one way everywhere
//! (progress lines, tables, error messages): humantime's durations, ISO-ordered UTC dates from
//! jiff, an error with its causes. Pure functions, used by `exec`'s messages, the HTTP clients
//! and the CLI's output alike.

use std::time::Duration;

use jiff::Timestamp;

/// A duration as people write it (humantime's form): `300ms`, `1s 500ms`, `30s`, `1m 30s`,
/// `2h`. Precision falls with size: milliseconds under a second, tenths under a minute, whole
/// seconds above.
pub fn duration(duration: Duration) -> String {
    let millis = duration.as_millis();
    let kept = match millis {
        0..1_000 => millis,
        1_000..60_000 => millis - millis % 100,
        _ => millis - millis % 1_000,
    };
    let kept = Duration::from_millis(u64::try_from(kept).unwrap_or(u64::MAX));
    humantime::format_duration(kept).to_string()
}

/// The date in tables: ISO 8601's order, readable and sortable.
const TABLE_DATE: &str = "%Y-%m-%d %H:%M:%S";

/// Unix seconds (OneForm's time unit) as a UTC date for tables; out of the calendar's range,
/// the number itself.
pub fn date(secs: i64) -> String {
    Timestamp::from_second(secs).map_or_else(|_| secs.to_string(), |t| t.strftime(TABLE_DATE).to_string())
}

/// An error and its sources, `: `-joined: hyper's own message is only "client error
/// (Connect)", the cause that says what happened is further down.
pub fn error_chain(error: &dyn std::error::Error) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_as_people_write_them() {
        let cases = [
            (Duration::ZERO, "0s"),
            (Duration::from_nanos(300_999_999), "300ms"),
            (Duration::from_millis(1_580), "1s 500ms"),
            (Duration::from_secs(30), "30s"),
            (Duration::from_millis(90_500), "1m 30s"),
            (Duration::from_secs(7200), "2h"),
        ];
        for (d, text) in cases {
            assert_eq!(duration(d), text);
        }
    }

    #[test]
    fn table_times_are_utc_dates() {
        assert_eq!(date(0), "1970-01-01 00:00:00");
        assert_eq!(date(1_795_328_220), "2026-11-22 06:17:00");
        assert_eq!(date(i64::MAX), i64::MAX.to_string(), "out of the calendar's range");
    }
}
