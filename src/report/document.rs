//! The report as data: sections of paragraphs, tables and charts, built once
//! from the database and rendered as HTML (`html`), Markdown (`markdown`) or,
//! through the HTML, PDF (`pdf`). Keeping the content apart from its markup
//! is what lets the three formats say the same thing.

/// The whole report: a title, a line under it, an optional alert (the flow
/// did not finish) and its sections in order.
#[derive(Debug, Default)]
pub struct Document {
    pub title: String,
    pub subtitle: String,
    pub alert: Option<String>,
    pub sections: Vec<Section>,
}

/// One numbered part of the report, listed in the table of contents.
#[derive(Debug)]
pub struct Section {
    /// The anchor (`#summary`), stable so links into a report keep working.
    pub id: &'static str,
    pub title: String,
    /// Appendix sections come after the body and hold ids, paths and phases.
    pub appendix: bool,
    pub blocks: Vec<Block>,
}

#[derive(Debug)]
pub enum Block {
    /// A sentence or two in the body's voice.
    Text(String),
    /// A quieter remark: what a table leaves out, where the full list is.
    Note(String),
    /// Labelled findings, one per line ("End of life: 12 of 171 machines").
    Findings(Vec<(String, String)>),
    /// Headline numbers.
    Tiles(Vec<(String, i64)>),
    /// Bar charts side by side; each keeps its heading in print.
    Charts(Vec<Chart>),
    /// A heading inside a section.
    Subheading(String),
    Table(Table),
}

#[derive(Debug)]
pub struct Chart {
    pub heading: String,
    pub bars: Vec<(String, i64)>,
    /// The values that were not known, said as a share under the bars.
    pub unknown: Option<String>,
}

#[derive(Debug)]
pub struct Table {
    pub header: Vec<&'static str>,
    pub rows: Vec<Vec<Cell>>,
}

#[derive(Debug, Clone)]
pub enum Cell {
    Text(String),
    /// A count, right-aligned.
    Count(i64),
    /// A confidence or share from 0 to 1, drawn with a small bar in HTML.
    Share(f64),
}

impl From<String> for Cell {
    fn from(text: String) -> Self {
        Cell::Text(text)
    }
}

impl From<&str> for Cell {
    fn from(text: &str) -> Self {
        Cell::Text(text.to_string())
    }
}

impl From<i64> for Cell {
    fn from(n: i64) -> Self {
        Cell::Count(n)
    }
}

impl Cell {
    /// The cell as plain text (Markdown, and tests).
    pub fn text(&self) -> String {
        match self {
            Cell::Text(t) => t.clone(),
            Cell::Count(n) => thousands(*n),
            Cell::Share(s) => format!("{:.0} %", s * 100.0),
        }
    }
}

impl Section {
    pub fn new(id: &'static str, title: &str) -> Self {
        Section {
            id,
            title: title.to_string(),
            appendix: false,
            blocks: Vec::new(),
        }
    }

    pub fn appendix(id: &'static str, title: &str) -> Self {
        Section {
            appendix: true,
            ..Section::new(id, title)
        }
    }

    pub fn text(&mut self, text: impl Into<String>) {
        self.blocks.push(Block::Text(text.into()));
    }

    pub fn note(&mut self, text: impl Into<String>) {
        self.blocks.push(Block::Note(text.into()));
    }

    pub fn subheading(&mut self, text: impl Into<String>) {
        self.blocks.push(Block::Subheading(text.into()));
    }

    pub fn table(&mut self, header: &[&'static str], rows: Vec<Vec<Cell>>) {
        self.blocks.push(Block::Table(Table {
            header: header.to_vec(),
            rows,
        }));
    }
}

/// 14600 as "14,600".
pub fn thousands(n: i64) -> String {
    let digits = n.unsigned_abs().to_string();
    let mut out = String::new();
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    if n < 0 {
        out.insert(0, '-');
    }
    out
}

/// `n` of `total` as "12 (7 %)"; just the count when there is no total.
pub fn share_of(n: i64, total: i64) -> String {
    if total > 0 {
        format!(
            "{} ({:.0} %)",
            thousands(n),
            n as f64 * 100.0 / total as f64
        )
    } else {
        thousands(n)
    }
}
