//! Time as an input. The core never reads a clock: callers pass a [`Timestamp`] with every input that
//! depends on time, and the core hands back deadlines as timestamps too.

use serde::{Deserialize, Serialize};

/// A point in time, in milliseconds since the Unix epoch (UTC), supplied by the caller.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Timestamp(u64);

impl Timestamp {
    /// A timestamp from milliseconds since the Unix epoch.
    pub const fn from_unix_millis(millis: u64) -> Self {
        Self(millis)
    }

    /// A timestamp from whole seconds since the Unix epoch.
    pub const fn from_unix_secs(secs: u64) -> Self {
        Self(secs.saturating_mul(1000))
    }

    /// Milliseconds since the Unix epoch.
    pub const fn unix_millis(self) -> u64 {
        self.0
    }

    /// Whole seconds since the Unix epoch (rounded down).
    pub const fn unix_secs(self) -> u64 {
        self.0 / 1000
    }

    /// This timestamp moved forward by `millis`, saturating at the end of time.
    #[must_use]
    pub const fn plus_millis(self, millis: u64) -> Self {
        Self(self.0.saturating_add(millis))
    }

    /// This timestamp moved forward by `secs` seconds, saturating at the end of time.
    #[must_use]
    pub const fn plus_secs(self, secs: u64) -> Self {
        self.plus_millis(secs.saturating_mul(1000))
    }
}

/// A calendar date and time of day in UTC, at one-second resolution.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct UtcDateTime {
    pub year: i64,
    pub month: u8,
    pub day: u8,
    pub hour: u8,
    pub minute: u8,
    pub second: u8,
}

impl UtcDateTime {
    /// The date and time with these fields (not checked: see [`UtcDateTime::to_unix_secs`]).
    pub const fn new(year: i64, month: u8, day: u8, hour: u8, minute: u8, second: u8) -> Self {
        Self {
            year,
            month,
            day,
            hour,
            minute,
            second,
        }
    }

    /// The calendar form of whole Unix seconds (proleptic Gregorian calendar).
    pub fn from_unix_secs(secs: u64) -> Self {
        let days = (secs / 86_400) as i64;
        let rem = secs % 86_400;
        let (year, month, day) = civil_from_days(days);
        Self {
            year,
            month,
            day,
            hour: (rem / 3600) as u8,
            minute: (rem % 3600 / 60) as u8,
            second: (rem % 60) as u8,
        }
    }

    /// Whole Unix seconds of this date and time, or `None` before the epoch or for an invalid date.
    pub fn to_unix_secs(self) -> Option<u64> {
        let valid = (1..=12).contains(&self.month)
            && self.day >= 1
            && self.day <= days_in_month(self.year, self.month)
            && self.hour < 24
            && self.minute < 60
            && self.second < 61;
        if !valid {
            return None;
        }
        let days = days_from_civil(self.year, self.month, self.day);
        let secs = days * 86_400
            + i64::from(self.hour) * 3600
            + i64::from(self.minute) * 60
            + i64::from(self.second);
        u64::try_from(secs).ok()
    }
}

fn is_leap(year: i64) -> bool {
    (year % 4 == 0 && year % 100 != 0) || year % 400 == 0
}

fn days_in_month(year: i64, month: u8) -> u8 {
    match month {
        1 | 3 | 5 | 7 | 8 | 10 | 12 => 31,
        4 | 6 | 9 | 11 => 30,
        2 if is_leap(year) => 29,
        _ => 28,
    }
}

// Howard Hinnant's days-from-civil algorithms: exact for the proleptic Gregorian calendar.
fn civil_from_days(days: i64) -> (i64, u8, u8) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = (doy - (153 * mp + 2) / 5 + 1) as u8;
    let month = if mp < 10 { mp + 3 } else { mp - 9 } as u8;
    let year = yoe + era * 400 + i64::from(month <= 2);
    (year, month, day)
}

fn days_from_civil(year: i64, month: u8, day: u8) -> i64 {
    let year = if month <= 2 { year - 1 } else { year };
    let era = year.div_euclid(400);
    let yoe = year.rem_euclid(400);
    let month = i64::from(month);
    let doy = (153 * (if month > 2 { month - 3 } else { month + 9 }) + 2) / 5 + i64::from(day) - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn calendar_round_trips_known_dates() {
        let cases = [
            (0, (1970, 1, 1, 0, 0, 0)),
            (951_782_400, (2000, 2, 29, 0, 0, 0)),
            (1_493_122_627, (2017, 4, 25, 12, 17, 7)),
            (4_102_444_799, (2099, 12, 31, 23, 59, 59)),
        ];
        for (secs, (year, month, day, hour, minute, second)) in cases {
            let dt = UtcDateTime::from_unix_secs(secs);
            assert_eq!(
                dt,
                UtcDateTime::new(year, month, day, hour, minute, second),
                "{secs}"
            );
            assert_eq!(dt.to_unix_secs(), Some(secs));
        }
    }

    #[test]
    fn invalid_dates_are_rejected() {
        let base = UtcDateTime::from_unix_secs(0);
        for bad in [
            UtcDateTime { month: 13, ..base },
            UtcDateTime {
                month: 2,
                day: 29,
                year: 2023,
                ..base
            },
            UtcDateTime { day: 0, ..base },
            UtcDateTime { hour: 24, ..base },
            UtcDateTime { year: 1969, ..base },
        ] {
            assert_eq!(bad.to_unix_secs(), None, "{bad:?}");
        }
    }

    #[test]
    fn every_day_for_three_centuries_round_trips() {
        for day in 0..(300 * 366) {
            let secs = day * 86_400 + 3661;
            assert_eq!(UtcDateTime::from_unix_secs(secs).to_unix_secs(), Some(secs));
        }
    }
}
