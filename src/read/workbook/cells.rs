//! One cell as text, the way a person reads it in Excel: dates and times in
//! ISO 8601 (1900 and 1904 date systems), whole numbers without ".0", other
//! numbers with Excel's 15 significant digits, text exactly as stored (so
//! "00123" keeps its zeros), booleans as true/false. Error cells and formulas
//! without a cached value carry no value: they become null with a reason.

use calamine::{Data, DataRef, ExcelDateTime};

/// What kind of value a cell held; header detection uses it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CellKind {
    Text,
    Number,
    Date,
    Bool,
    /// An error cell or a formula with no cached value.
    Missing,
}

/// A non-empty cell read from a sheet.
#[derive(Debug, Clone, PartialEq)]
pub struct CellValue {
    pub kind: CellKind,
    /// The text stored in raw_data; None becomes JSON null.
    pub text: Option<String>,
    /// Why the value is null: (warning code, what the cell held).
    pub problem: Option<(&'static str, String)>,
}

impl CellValue {
    fn text(kind: CellKind, text: String) -> CellValue {
        CellValue {
            kind,
            text: Some(text),
            problem: None,
        }
    }

    /// A formula cell whose file holds no computed value.
    pub fn formula_without_value(formula: Option<&str>) -> CellValue {
        let shown = formula.map_or_else(|| "a formula".to_string(), |f| format!("={f}"));
        CellValue {
            kind: CellKind::Missing,
            text: None,
            problem: Some(("formula_without_value", shown)),
        }
    }
}

/// Converts a streamed cell; None for an empty cell.
pub fn from_ref(value: &DataRef<'_>) -> Option<CellValue> {
    Some(match value {
        DataRef::Empty => return None,
        DataRef::String(s) => non_empty_text(s)?,
        DataRef::SharedString(s) => non_empty_text(s)?,
        DataRef::Int(i) => CellValue::text(CellKind::Number, i.to_string()),
        DataRef::Float(f) => CellValue::text(CellKind::Number, format_number(*f)),
        DataRef::Bool(b) => CellValue::text(CellKind::Bool, b.to_string()),
        DataRef::DateTime(dt) => CellValue::text(CellKind::Date, format_datetime(dt)),
        DataRef::DateTimeIso(s) => CellValue::text(CellKind::Date, s.clone()),
        DataRef::DurationIso(s) => CellValue::text(CellKind::Date, s.clone()),
        DataRef::Error(e) => CellValue {
            kind: CellKind::Missing,
            text: None,
            problem: Some(("error_cell", e.to_string())),
        },
    })
}

/// Converts a cell of a range read as a whole (.xls, .ods).
pub fn from_data(value: &Data) -> Option<CellValue> {
    let borrowed = match value {
        Data::Empty => return None,
        Data::String(s) => DataRef::SharedString(s),
        Data::Int(i) => DataRef::Int(*i),
        Data::Float(f) => DataRef::Float(*f),
        Data::Bool(b) => DataRef::Bool(*b),
        Data::DateTime(dt) => DataRef::DateTime(*dt),
        Data::DateTimeIso(s) => DataRef::DateTimeIso(s.clone()),
        Data::DurationIso(s) => DataRef::DurationIso(s.clone()),
        Data::Error(e) => DataRef::Error(e.clone()),
    };
    from_ref(&borrowed)
}

fn non_empty_text(s: &str) -> Option<CellValue> {
    // A cell holding only spaces is blank to the reader, as in CSV.
    (!s.trim().is_empty()).then(|| CellValue::text(CellKind::Text, s.to_string()))
}

/// Whole numbers without a fraction; others rounded to the 15 significant
/// digits Excel shows, so 0.1 + 0.2 reads "0.3", not "0.30000000000000004".
pub fn format_number(f: f64) -> String {
    if !f.is_finite() {
        return f.to_string();
    }
    if f.fract() == 0.0 && f.abs() < 1e15 {
        return format!("{}", f as i64);
    }
    let rounded: f64 = format!("{f:.14e}").parse().unwrap_or(f);
    format!("{rounded}")
}

/// A date cell in ISO 8601: "2024-03-01" for a date, "2024-03-01T14:30:00" for
/// a date and time, "14:30:00" for a time of day, "PT26H30M" for a duration.
pub fn format_datetime(dt: &ExcelDateTime) -> String {
    let serial = dt.as_f64();
    if dt.is_duration() {
        let total_ms = (serial * 86_400_000.0).round() as i64;
        let (sign, ms) = if total_ms < 0 {
            ("-", -total_ms)
        } else {
            ("", total_ms)
        };
        let (h, m, s, milli) = (ms / 3_600_000, ms / 60_000 % 60, ms / 1000 % 60, ms % 1000);
        let seconds = if milli > 0 {
            format!("{s}.{milli:03}")
        } else {
            s.to_string()
        };
        return format!("{sign}PT{h}H{m}M{seconds}S");
    }
    let (year, month, day, hour, minute, second, milli) = dt.to_ymd_hms_milli();
    let time = if milli > 0 {
        format!("{hour:02}:{minute:02}:{second:02}.{milli:03}")
    } else {
        format!("{hour:02}:{minute:02}:{second:02}")
    };
    let has_time = hour > 0 || minute > 0 || second > 0 || milli > 0;
    if (0.0..1.0).contains(&serial) {
        time // a time of day with no date
    } else if has_time {
        format!("{year:04}-{month:02}-{day:02}T{time}")
    } else {
        format!("{year:04}-{month:02}-{day:02}")
    }
}

/// "A", "B", ..., "Z", "AA" for a 0-based column.
pub fn column_letters(col: u32) -> String {
    let mut n = col + 1;
    let mut letters = Vec::new();
    while n > 0 {
        let rem = (n - 1) % 26;
        letters.push(b'A' + rem as u8);
        n = (n - 1) / 26;
    }
    letters.reverse();
    String::from_utf8(letters).expect("ASCII letters")
}

/// "C12" for the 0-based (row, column).
pub fn cell_ref(row: u32, col: u32) -> String {
    format!("{}{}", column_letters(col), row + 1)
}

#[cfg(test)]
mod tests {
    use super::*;
    use calamine::ExcelDateTimeType;

    fn date(serial: f64, is_1904: bool) -> String {
        format_datetime(&ExcelDateTime::new(
            serial,
            ExcelDateTimeType::DateTime,
            is_1904,
        ))
    }

    #[test]
    fn dates_in_both_systems() {
        assert_eq!(date(45352.0, false), "2024-03-01");
        assert_eq!(date(45352.0 - 1462.0, true), "2024-03-01");
        assert_eq!(date(45352.5, false), "2024-03-01T12:00:00");
        assert_eq!(date(0.75, false), "18:00:00");
    }

    #[test]
    fn durations() {
        let d = ExcelDateTime::new(1.0 + 2.5 / 24.0, ExcelDateTimeType::TimeDelta, false);
        assert_eq!(format_datetime(&d), "PT26H30M0S");
    }

    #[test]
    fn numbers_read_as_excel_shows_them() {
        assert_eq!(format_number(8.0), "8");
        assert_eq!(format_number(-16384.0), "-16384");
        assert_eq!(format_number(0.1 + 0.2), "0.3");
        assert_eq!(format_number(12.5), "12.5");
        assert_eq!(format_number(1e20), "100000000000000000000");
    }

    #[test]
    fn letters() {
        assert_eq!(column_letters(0), "A");
        assert_eq!(column_letters(25), "Z");
        assert_eq!(column_letters(26), "AA");
        assert_eq!(column_letters(16383), "XFD");
        assert_eq!(cell_ref(11, 2), "C12");
    }
}
