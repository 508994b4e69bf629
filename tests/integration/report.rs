//! `intake report` through the real binary, rendered in headless Chromium
//! (Debian's package; `.ci/browser.sh` installs it): the page is printed to
//! PDF offline and its text read back with pdftotext, so the checks see what
//! a person would see, charts included. The file must fetch nothing.

use std::process::Command;

use crate::common::{sample, Work};

fn chromium() -> String {
    std::env::var("INTAKE_TEST_CHROMIUM").unwrap_or_else(|_| "chromium".into())
}

/// Prints `html` to PDF with headless Chromium and returns the PDF's text.
fn rendered_text(work: &Work, html: &std::path::Path) -> String {
    let pdf = work.path("report.pdf");
    let profile = work.path("chromium-profile");
    let out = Command::new(chromium())
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--no-pdf-header-footer",
            // Offline: any attempt to fetch something fails instead of hanging.
            "--proxy-server=127.0.0.1:9",
            "--proxy-bypass-list=<-loopback>",
        ])
        .arg(format!("--user-data-dir={}", profile.display()))
        .arg(format!("--print-to-pdf={}", pdf.display()))
        .arg(format!("file://{}", html.display()))
        .output()
        .expect("chromium runs (bash .ci/browser.sh installs it)");
    assert!(
        pdf.exists(),
        "chromium printed nothing: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = Command::new("pdftotext")
        .args(["-layout"])
        .arg(&pdf)
        .arg("-")
        .output()
        .expect("pdftotext runs (bash .ci/browser.sh installs poppler-utils)");
    assert!(text.status.success());
    String::from_utf8_lossy(&text.stdout).into_owned()
}

#[test]
fn the_report_is_self_contained_and_shows_flow_mappings_problems_charts_debt_and_dependencies() {
    let work = Work::new();
    let sn = sample("servicenow_cmdb_ci_server.csv")
        .display()
        .to_string();
    let rv = sample("RVTools_export_all.xlsx").display().to_string();
    let (code, _) = work.import_json(&[&sn, &rv, "--support-as-of", "2026-11-24"]);
    assert_eq!(code, 0);
    let rel = work.write(
        "cmdb_rel_ci_with_unknown_end.csv",
        "parent,type,child\nCRM,Depends on::Used by,lnx-fra-11\nPayroll,Depends on::Used by,ora-payroll-db\n",
    );
    let (code, json) = work.import_json(&[rel.to_str().unwrap(), "--support-as-of", "2026-11-24"]);
    assert_eq!(code, 0, "{json}");
    let out = work.run_ok(&["report", "--output", "report.html"]);
    assert!(String::from_utf8_lossy(&out.stderr).contains("wrote report.html"));
    let html = std::fs::read_to_string(work.path("report.html")).unwrap();

    // Self-contained: no script, no stylesheet, image or font to fetch.
    let lower = html.to_lowercase();
    for needle in [
        "<script", "<link", "<img", "<iframe", "src=", "url(", "@import",
    ] {
        assert!(
            !lower.contains(needle),
            "the report must not contain {needle}"
        );
    }
    // Links only within the page (the table of contents).
    assert_eq!(
        lower.matches("href=").count(),
        lower.matches("href=\"#").count()
    );
    assert!(lower.starts_with("<!doctype html>"));

    let text = rendered_text(&work, &work.path("report.html"));
    let flat: String = text.split_whitespace().collect::<Vec<_>>().join(" ");
    // The flow and its files.
    assert!(flat.contains("Discovery report: local / default"), "{flat}");
    assert!(flat.contains(json["master_flow_id"].as_str().unwrap()));
    assert!(flat.contains("cmdb_rel_ci_with_unknown_end.csv"));
    // The relationship end that names no asset, with its row and column.
    assert!(flat.contains("Relationship ends that name no known asset (1)"));
    assert!(flat.contains("ora-payroll-db"));
    // Charts: the labels and counts are drawn; support status by product.
    assert!(flat.contains("By location"));
    assert!(flat.contains("extended support"));
    assert!(flat.contains("By environment") && flat.contains("production"));
    // Tech debt by product, and dependencies with the clusters.
    assert!(flat.contains("Tech debt"));
    assert!(flat.contains("Windows Server 2012 R2"));
    assert!(flat.contains("Dependencies"));
    assert!(flat.contains("CL-PROD-01"));

    // The first flow's report carries the mapping table with confidence.
    let first = work
        .conn()
        .query_row(
            "SELECT master_flow_id FROM discovery_flows ORDER BY created_at LIMIT 1",
            [],
            |r| r.get::<_, String>(0),
        )
        .unwrap();
    work.run_ok(&["report", "--flow", &first, "--output", "first.html"]);
    let text = rendered_text(&work, &work.path("first.html"));
    let flat: String = text.split_whitespace().collect::<Vec<_>>().join(" ");
    assert!(flat.contains("Appendix: column mappings"));
    // The row of one mapping: source column, field, confidence, match type, status.
    let at = flat
        .find("u_application")
        .expect("the u_application mapping is listed");
    let row = &flat[at..(at + 80).min(flat.len())];
    for cell in ["application_name", "alias", "approved"] {
        assert!(row.contains(cell), "{cell} in {row}");
    }
    // Where a wrapped file name puts the right-aligned confidence depends on the
    // page layout, so it is checked on the page as a whole and in the row's HTML.
    assert!(flat.contains("92%"));
    let html = std::fs::read_to_string(work.path("first.html")).unwrap();
    let at = html
        .find("<td>u_application</td>")
        .expect("the row in the HTML");
    let row = &html[at..at + html[at..].find("</tr>").unwrap()];
    assert!(
        row.contains("92%") && row.contains("application_name"),
        "{row}"
    );
    assert!(flat.contains("servicenow_cmdb_ci_server.csv"));
    assert!(flat.contains("RVTools_export_all.xlsx"));
}

#[test]
fn a_report_without_a_flow_says_so() {
    let work = Work::new();
    let out = work
        .intake()
        .args(["report", "--output", "report.html"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(3));
    assert!(String::from_utf8_lossy(&out.stderr).contains("run `intake import` first"));
    assert!(!work.path("report.html").exists());
}

/// The operating-system chart names products and versions however each
/// export spelled them, and an unknown value is a share, not a bar.
#[test]
fn operating_systems_are_merged_by_product_and_unknowns_are_a_share() {
    let work = Work::new();
    let a = work.write(
        "cmdb.csv",
        "Server Name,Operating System\nweb01,Microsoft Windows Server 2019 Datacenter\nweb02,Windows Server 2019 Standard\n",
    );
    let b = work.write("notes.csv", "Server Name,Owner\nweb03,alice\n");
    let (code, json) = work.import_json(&[a.to_str().unwrap(), b.to_str().unwrap()]);
    assert_eq!(code, 0, "{json}");
    work.run_ok(&["report", "-q", "-o", "report.html"]);
    let html = std::fs::read_to_string(work.path("report.html")).unwrap();
    let os_chart = &html[html.find("By operating system").unwrap()..];
    let os_chart = &os_chart[..os_chart.find("</div>").unwrap()];
    assert_eq!(
        os_chart.matches(">Windows Server 2019<").count(),
        1,
        "{os_chart}"
    );
    assert!(!os_chart.contains("Datacenter"), "{os_chart}");
    assert!(
        os_chart.contains("Not known for 1 of 3 machines"),
        "{os_chart}"
    );
    assert!(!os_chart.contains("(not known)"), "{os_chart}");
    // A chart never splits from its heading in print.
    assert!(html.contains(".chart{break-inside:avoid"));
}

/// The report opens with a summary a client reads first; ids, phases and
/// local paths are only in the appendix.
#[test]
fn the_report_opens_with_a_summary_and_keeps_ids_and_paths_in_the_appendix() {
    let work = Work::new();
    let dir = work.path("exports");
    std::fs::create_dir(&dir).unwrap();
    let file = dir.join("servers.csv");
    std::fs::write(
        &file,
        "Server Name,Operating System,Environment,Colour\nweb01,Windows Server 2008 R2,prod,red\nweb02,Ubuntu 22.04,,blue\n,Ubuntu 22.04,test,red\n,Ubuntu 22.04,test,red\n,RHEL 8,dev,red\n",
    )
    .unwrap();
    let (code, json) = work.import_json(&[file.to_str().unwrap()]);
    assert_eq!(code, 0, "{json}");
    work.run_ok(&["report", "-q", "-o", "report.html"]);
    let html = std::fs::read_to_string(work.path("report.html")).unwrap();
    let summary = html.find("<section id=\"summary\"").unwrap();
    let appendix = html.find("<section id=\"files\"").unwrap();
    let order = [
        "id=\"summary\"",
        "id=\"inventory\"",
        "id=\"applications\"",
        "id=\"tech-debt\"",
        "id=\"dependencies\"",
        "id=\"quality\"",
        "id=\"files\"",
        "id=\"mappings\"",
        "id=\"all-dependencies\"",
        "id=\"about\"",
    ];
    let at: Vec<usize> = order
        .iter()
        .map(|s| {
            html.find(&format!("<section {s}"))
                .unwrap_or_else(|| panic!("{s}"))
        })
        .collect();
    assert!(
        at.windows(2).all(|w| w[0] < w[1]),
        "sections in order: {at:?}"
    );
    let front = &html[..appendix];
    let master = json["master_flow_id"].as_str().unwrap();
    assert!(!front.contains(master), "no flow id before the appendix");
    assert!(
        !front.contains(work.dir.path().to_str().unwrap()),
        "no local path"
    );
    assert!(
        html[summary..appendix].contains("2 servers"),
        "what it describes"
    );
    assert!(
        html[summary..appendix].contains("End of life:</b> 1 (50 %) of 2 machines"),
        "{}",
        &html[summary..summary + 1500]
    );
    assert!(html[appendix..].contains(master));
    assert!(
        html[appendix..].contains(">servers.csv<"),
        "sources by file name"
    );
}

/// The report's sections in the order a reader meets them.
const SECTIONS: [&str; 10] = [
    "Summary",
    "Inventory",
    "Applications",
    "Tech debt",
    "Dependencies",
    "Data quality by source",
    "Appendix: sources",
    "Appendix: column mappings",
    "Appendix: dependencies",
    "Appendix: about this report",
];

/// The text of each page of `pdf`, as pdftotext lays it out.
fn pages_of(pdf: &std::path::Path) -> Vec<String> {
    let text = Command::new("pdftotext")
        .args(["-layout"])
        .arg(pdf)
        .arg("-")
        .output()
        .expect("pdftotext runs (bash .ci/browser.sh installs poppler-utils)");
    assert!(text.status.success());
    let text = String::from_utf8_lossy(&text.stdout).into_owned();
    let mut pages: Vec<String> = text.split('\u{c}').map(str::to_string).collect();
    if pages.last().is_some_and(|p| p.trim().is_empty()) {
        pages.pop();
    }
    pages
}

fn words(text: &str) -> String {
    text.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// An engagement of several sources: every sample export (CMDB CSV and
/// workbook, RVTools, three cloud templates, a hand-made CP1252 file) and a
/// relationship export beside them.
fn multi_source(work: &Work) -> serde_json::Value {
    let samples = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("samples");
    let rel = work.write(
        "cmdb_rel_ci.csv",
        "parent,type,child\nCRM,Depends on::Used by,lnx-fra-11\nPayroll,Depends on::Used by,ora-payroll-db\n",
    );
    let (code, json) = work.import_json(&[
        samples.to_str().unwrap(),
        rel.to_str().unwrap(),
        "--support-as-of",
        "2026-11-24",
    ]);
    assert!(code == 0 || code == 3, "{json}");
    json
}

/// The PDF a consultant hands on: sections in order after a table of
/// contents, no page ending on a heading or a table header whose content
/// is on the next page, every chart on the page of its heading, ids and
/// paths only in the appendix, operating systems merged, and the mapping
/// table's last column printed for every row.
#[test]
fn the_pdf_report_keeps_headings_with_their_content_and_ids_in_the_appendix() {
    let work = Work::new();
    let json = multi_source(&work);
    let mut print = work.intake();
    if let Ok(browser) = std::env::var("INTAKE_TEST_CHROMIUM") {
        print.env("INTAKE_CHROMIUM", browser);
    }
    let out = print.args(["report", "-o", "report.pdf"]).output().unwrap();
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let pdf = std::fs::read(work.path("report.pdf")).unwrap();
    assert!(pdf.starts_with(b"%PDF"), "a PDF, chosen by the extension");
    work.run_ok(&["report", "-q", "-o", "report.md"]);
    let markdown = std::fs::read_to_string(work.path("report.md")).unwrap();
    let pages = pages_of(&work.path("report.pdf"));
    assert!(pages.len() >= 4, "{} pages", pages.len());

    // Headings and table headers, read from the Markdown of the same report.
    let headings: Vec<String> = markdown
        .lines()
        .filter_map(|l| l.strip_prefix("## ").or_else(|| l.strip_prefix("### ")))
        .map(|h| words(&h.replace('\\', "")))
        .collect();
    let table_headers: Vec<Vec<String>> = markdown
        .lines()
        .zip(markdown.lines().skip(1))
        .filter(|(_, next)| next.starts_with("|---"))
        .map(|(header, _)| {
            header
                .split('|')
                .map(str::trim)
                .filter(|c| !c.is_empty())
                .map(str::to_string)
                .collect()
        })
        .collect();
    for (n, page) in pages.iter().enumerate().take(pages.len() - 1) {
        let last = words(
            page.lines()
                .rev()
                .find(|l| !l.trim().is_empty())
                .unwrap_or(""),
        );
        assert!(
            !headings.contains(&last),
            "page {} ends with the heading {last:?}",
            n + 1
        );
        for header in &table_headers {
            let header_words: Vec<&str> = header.iter().flat_map(|c| c.split(' ')).collect();
            let line: Vec<&str> = last.split(' ').collect();
            let only_header = line.len() >= 2
                && line.first() == header_words.first()
                && line.iter().all(|w| header_words.contains(w));
            assert!(
                !only_header,
                "page {} ends with the header of a table: {last:?}",
                n + 1
            );
        }
    }
    // Each chart is on the page of its heading: the heading and its first bar.
    let mut lines = markdown.lines().peekable();
    let mut charts = 0;
    while let Some(line) = lines.next() {
        let Some(heading) = line.strip_prefix("### By ") else {
            continue;
        };
        let first_bar = lines
            .by_ref()
            .find(|l| l.starts_with("| ") && !l.starts_with("| value"))
            .and_then(|l| l.split('|').nth(1))
            .map(|cell| cell.trim().to_string());
        let Some(first_bar) = first_bar.filter(|b| b.chars().count() <= 27) else {
            continue;
        };
        let heading = format!("By {heading}");
        assert!(
            pages
                .iter()
                .any(|p| words(p).contains(&heading) && words(p).contains(&first_bar)),
            "{heading} is on the page of its first bar {first_bar}"
        );
        charts += 1;
    }
    assert!(charts >= 5, "{charts} charts checked");

    // Sections in order, after the table of contents.
    let flat = words(&pages.join("\n"));
    let body_start = flat
        .find("Appendix: about this report")
        .expect("the contents list the appendix")
        + "Appendix: about this report".len();
    let mut at = body_start;
    for title in SECTIONS {
        at += flat[at..]
            .find(title)
            .unwrap_or_else(|| panic!("{title} after {}", &flat[at.saturating_sub(80)..at]));
    }
    // No flow id, UUID or local path before the appendix.
    let appendix = body_start + flat[body_start..].find("Appendix: sources").unwrap();
    let front = &flat[..appendix];
    let uuid =
        regex::Regex::new(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}").unwrap();
    assert!(uuid.find(front).is_none(), "{:?}", uuid.find(front));
    assert!(flat[appendix..].contains(json["master_flow_id"].as_str().unwrap()));
    for path in [
        work.dir.path().to_str().unwrap(),
        env!("CARGO_MANIFEST_DIR"),
    ] {
        assert!(!flat.contains(path), "no local path {path}");
    }
    for phase in [
        "data_import",
        "attribute_mapping",
        "data_cleansing",
        "tech_debt",
    ] {
        assert!(
            !front.contains(phase),
            "no phase name {phase} before the appendix"
        );
    }
    // Operating systems merged to product and version: no edition words, each label once.
    let os = markdown
        .split("### By operating system")
        .nth(1)
        .and_then(|rest| rest.split("\n\n").nth(1))
        .expect("the operating-system chart");
    let labels: Vec<&str> = os
        .lines()
        .skip(2)
        .filter_map(|l| l.split('|').nth(1))
        .map(str::trim)
        .collect();
    assert!(labels.len() >= 3, "{os}");
    let mut unique = labels.clone();
    unique.sort();
    unique.dedup();
    assert_eq!(unique.len(), labels.len(), "{os}");
    for edition in ["Datacenter", "Standard", "Microsoft"] {
        assert!(
            labels.iter().all(|l| !l.contains(edition)),
            "{edition} in {os}"
        );
    }
    // The mapping table fits the page: every approved row prints its state.
    let approved = crate::common::count(
        &work.conn(),
        "SELECT count(*) FROM import_field_mappings WHERE status = 'approved' AND target_field IS NOT NULL",
    );
    let mapping_pages = {
        let text = pages.join("\n");
        let from = text.rfind("Appendix: column mappings").unwrap();
        let to = text.rfind("Appendix: dependencies").unwrap();
        text[from..to].to_string()
    };
    let printed = mapping_pages
        .lines()
        .filter(|l| l.split_whitespace().any(|w| w == "approved"))
        .count() as i64;
    assert_eq!(printed, approved, "{mapping_pages}");
}

/// `--format md` (or a `.md` output) writes the same sections as Markdown
/// whose tables have as many cells in every row as in their header.
#[test]
fn the_markdown_report_has_the_sections_and_well_formed_tables() {
    let work = Work::new();
    multi_source(&work);
    let out = work.run_ok(&["report", "-q", "--format", "md", "-o", "-"]);
    let markdown = String::from_utf8(out.stdout).unwrap();
    assert!(markdown.starts_with("# Discovery report: local / default"));
    let sections: Vec<&str> = markdown
        .lines()
        .filter_map(|l| l.strip_prefix("## "))
        .collect();
    assert_eq!(sections[0], "Contents");
    assert_eq!(sections[1..], SECTIONS);
    let cells = |line: &str| line.replace("\\|", "").matches('|').count();
    let mut tables = 0;
    let lines: Vec<&str> = markdown.lines().collect();
    for (i, line) in lines.iter().enumerate() {
        if lines.get(i + 1).is_some_and(|n| n.starts_with("|---")) {
            tables += 1;
            let width = cells(line);
            for row in lines[i + 1..].iter().take_while(|l| l.starts_with('|')) {
                assert_eq!(cells(row), width, "{line}\n{row}");
            }
        }
    }
    assert!(tables >= 10, "{tables} tables");
    // The application view names each application's machines.
    let apps = &markdown
        [markdown.find("## Applications").unwrap()..markdown.find("## Tech debt").unwrap()];
    assert!(
        apps.contains("| application | machines | runs on |"),
        "{apps}"
    );
}

/// Without a browser a PDF is refused with what to do (exit 3), and
/// nothing is written.
#[test]
fn a_pdf_without_a_browser_says_what_to_install() {
    let work = Work::new();
    let file = work.write("servers.csv", "Server Name,OS\nweb01,Ubuntu 22.04\n");
    work.run_ok(&["import", "-q", file.to_str().unwrap()]);
    let empty = work.path("no-browsers");
    std::fs::create_dir(&empty).unwrap();
    let out = work
        .intake()
        .env("PATH", &empty)
        .env_remove("INTAKE_CHROMIUM")
        .args(["report", "--format", "pdf", "-o", "report.pdf"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(3));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("INTAKE_CHROMIUM") && stderr.contains("--format html"),
        "{stderr}"
    );
    assert!(!work.path("report.pdf").exists());
}
