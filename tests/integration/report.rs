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
        "<script", "<link", "<img", "<iframe", "src=", "href=", "url(", "@import",
    ] {
        assert!(
            !lower.contains(needle),
            "the report must not contain {needle}"
        );
    }
    assert!(lower.starts_with("<!doctype html>"));

    let text = rendered_text(&work, &work.path("report.html"));
    let flat: String = text.split_whitespace().collect::<Vec<_>>().join(" ");
    // The flow and its files.
    assert!(flat.contains("Discovery report: local / default"), "{flat}");
    assert!(flat.contains(json["master_flow_id"].as_str().unwrap()));
    assert!(flat.contains("cmdb_rel_ci_with_unknown_end.csv"));
    // Validation problems: the unresolved end, with its row and column.
    assert!(flat.contains("Validation problems"));
    assert!(flat.contains("ora-payroll-db"));
    // Charts: the labels and counts are drawn.
    assert!(flat.contains("By support status"));
    assert!(flat.contains("extended support"));
    assert!(flat.contains("By environment") && flat.contains("production"));
    // The worst tech debt, and dependencies with the clusters.
    assert!(flat.contains("Worst tech debt"));
    assert!(flat.contains("Windows Server 2012 R2"));
    assert!(flat.contains("WIN-DAL-23"));
    assert!(flat.contains("Dependencies"));
    assert!(flat.contains("CL-PROD-01"));
    assert!(flat.contains("Unresolved relationship ends"));

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
        os_chart.contains("Not known for 1 of 3 assets"),
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
    let summary = html.find("id=\"summary\"").unwrap();
    let appendix = html.find("Appendix").unwrap();
    let order = [
        "id=\"summary\"",
        "id=\"assets\"",
        "id=\"tech-debt\"",
        "id=\"dependencies\"",
        "id=\"problems\"",
        "id=\"files\"",
        "id=\"mappings\"",
        "id=\"about\"",
    ];
    let at: Vec<usize> = order
        .iter()
        .map(|s| html.find(s).unwrap_or_else(|| panic!("{s}")))
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
