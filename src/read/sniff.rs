//! `intake sniff`: what the reader would decide about each file, without
//! touching the database: for text, the encoding, delimiter, header line and
//! title rows; for a workbook, every sheet with its visibility, declared size,
//! header row and whether it would be imported; and the layout recognised.

use serde::Serialize;

use super::csv_source::{CsvSource, PreambleRow};
use super::layout::{self, TableRole};
use super::{delimiter::delimiter_name, probe, FileProbe, InputFile, ReadOptions, WorkbookProbe};

/// What sniff found in one file.
#[derive(Debug, Clone, Serialize)]
pub struct SniffReport {
    pub path: String,
    pub bytes: u64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub text: Option<TextSniff>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub workbook: Option<WorkbookProbe>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error_code: Option<&'static str>,
}

/// A delimited text file as the reader sees it.
#[derive(Debug, Clone, Serialize)]
pub struct TextSniff {
    pub encoding: String,
    pub encoding_source: super::EncodingSource,
    pub bom: bool,
    pub delimiter: String,
    pub delimiter_source: super::DelimiterSource,
    /// Delimiter, quote, escape and padding as read.
    pub dialect: super::delimiter::Dialect,
    /// A dialect that read the head nearly as consistently, when there is one.
    pub runner_up: Option<super::delimiter::Dialect>,
    pub header_line: u64,
    /// One header line, none (the columns are numbered), or two combined.
    pub header_shape: super::header::HeaderShape,
    pub columns: Vec<String>,
    pub preamble: Vec<PreambleRow>,
    pub layout: Option<TableRole>,
    pub note: Option<String>,
}

/// Sniffs one file; a file that cannot be read gets its error in the report.
pub fn sniff(file: &InputFile, options: &ReadOptions) -> SniffReport {
    let mut report = SniffReport {
        path: file.display.clone(),
        bytes: std::fs::metadata(&file.path).map_or(0, |m| m.len()),
        text: None,
        workbook: None,
        error: None,
        error_code: None,
    };
    let fail = |report: &mut SniffReport, error: crate::read::ReadError| {
        report.error = Some(error.to_string());
        report.error_code = Some(error.code());
    };
    match probe(file, options) {
        Err(error) => fail(&mut report, error),
        Ok(FileProbe::Workbook(book)) => report.workbook = Some(book),
        Ok(FileProbe::Text(text)) => {
            let source = CsvSource::open(
                &file.path,
                &file.display,
                text.scan.encoding,
                text.scan.encoding_source,
                text.dialect,
                text.stray_quote,
                None,
                options.max_record_bytes,
                Default::default(),
            );
            match source {
                Err(error) => fail(&mut report, error),
                Ok(source) => {
                    report.text = Some(TextSniff {
                        encoding: text.scan.encoding.name().to_string(),
                        encoding_source: text.scan.encoding_source,
                        bom: text.scan.has_bom,
                        delimiter: delimiter_name(text.dialect.delimiter),
                        dialect: text.dialect,
                        runner_up: text.runner_up,
                        delimiter_source: text.delimiter_source,
                        header_line: source.header_line(),
                        header_shape: source.header_shape(),
                        columns: source.columns().to_vec(),
                        preamble: source.preamble().to_vec(),
                        layout: layout::recognise_table(source.columns())
                            .map(layout::single_table_role),
                        note: text.note.clone(),
                    })
                }
            }
        }
    }
    report
}
