//! The tech_debt phase through the real binary: each support status from OS
//! and database strings as exports write them, judged on a fixed day;
//! sixr_ready; the flow's tech_debt_analysis; and re-runs that change nothing.

use crate::common::Work;
use serde_json::Value;

fn fixture() -> String {
    format!(
        "{}/tests/fixtures/tech_debt/os_strings_as_exported.csv",
        env!("CARGO_MANIFEST_DIR")
    )
}

/// name → (support_status, sixr_ready, details)
fn verdicts(work: &Work) -> Vec<(String, String, String, Value)> {
    let conn = work.conn();
    let mut stmt = conn
        .prepare(
            "SELECT name, support_status, sixr_ready, tech_debt_details FROM assets ORDER BY name",
        )
        .unwrap();
    stmt.query_map([], |r| {
        let details: String = r.get(3)?;
        Ok((
            r.get(0)?,
            r.get(1)?,
            r.get(2)?,
            serde_json::from_str(&details).unwrap(),
        ))
    })
    .unwrap()
    .collect::<Result<_, _>>()
    .unwrap()
}

fn status_of<'v>(
    all: &'v [(String, String, String, Value)],
    name: &str,
) -> &'v (String, String, String, Value) {
    all.iter()
        .find(|(n, ..)| n == name)
        .unwrap_or_else(|| panic!("no asset {name}"))
}

#[test]
fn every_support_status_from_real_os_and_database_strings() {
    let work = Work::new();
    let (code, json) = work.import_json(&[&fixture(), "--support-as-of", "2026-11-24"]);
    assert_eq!(code, 0, "{json}");
    let all = verdicts(&work);
    for (name, status, based_on) in [
        ("w2k8r2-legacy", "end_of_life", "Windows Server 2008 R2"),
        ("w2016-app", "extended_support", "Windows Server 2016"),
        ("rhel9-web", "supported", "Red Hat Enterprise Linux 9"),
        // The OS is supported, the database engine is not: the worst wins.
        ("rhel9-sql", "end_of_life", "Microsoft SQL Server 2014"),
        ("ubuntu2204", "supported", "Ubuntu 22.04"),
        ("ol7-batch", "extended_support", "Oracle Linux 7"),
        (
            "sles12-sap",
            "extended_support",
            "SUSE Linux Enterprise Server 12",
        ),
        // Both ended; MySQL 5.7 ended first.
        ("centos7-old", "end_of_life", "MySQL 5.7"),
        ("debian10-tools", "end_of_life", "Debian 10"),
        ("aix71-core", "end_of_life", "Oracle Database 12.2"),
        ("solaris114", "supported", "Oracle Solaris 11"),
        (
            "mystery-box",
            "unknown",
            "no operating system or database the catalogue knows",
        ),
    ] {
        let (_, got, _, details) = status_of(&all, name);
        assert_eq!(got, status, "{name}: {details}");
        assert_eq!(details["based_on"], based_on, "{name}: {details}");
    }
    // What the verdict rests on: the catalogue entry, its dates and its source.
    let (_, _, _, details) = status_of(&all, "w2k8r2-legacy");
    let os = &details["components"][0];
    assert_eq!(os["product"], "Windows Server");
    assert_eq!(os["version"], "2008 R2");
    assert_eq!(os["extended_end"], "2020-01-14");
    assert!(os["source"].as_str().unwrap().contains("microsoft.com"));
    let (_, _, _, details) = status_of(&all, "aix71-core");
    let products: Vec<&str> = details["components"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["product"].as_str().unwrap())
        .collect();
    assert_eq!(products, ["IBM AIX", "Oracle Database"]);

    // 6R readiness: ol7-batch has no storage, mystery-box no environment.
    assert_eq!(status_of(&all, "rhel9-web").2, "ready");
    let (_, _, ready, details) = status_of(&all, "ol7-batch");
    assert_eq!(ready, "not_ready");
    assert_eq!(details["sixr_missing"], serde_json::json!(["storage_gb"]));
    assert_eq!(status_of(&all, "mystery-box").2, "not_ready");

    // The flow records the phase and the analysis.
    let conn = work.conn();
    let (done, status, analysis): (i64, String, String) = conn
        .query_row(
            "SELECT tech_debt_completed, status, tech_debt_analysis FROM discovery_flows",
            [],
            |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
        )
        .unwrap();
    assert_eq!((done, status.as_str()), (1, "completed"));
    let analysis: Value = serde_json::from_str(&analysis).unwrap();
    assert_eq!(analysis["as_of"], "2026-11-24");
    assert_eq!(analysis["by_status"]["end_of_life"], 5, "{analysis}");
    assert_eq!(analysis["by_status"]["extended_support"], 3);
    assert_eq!(analysis["by_status"]["supported"], 3);
    assert_eq!(analysis["by_status"]["unknown"], 1);
    assert_eq!(analysis["sixr_ready"]["missing_fields"]["storage_gb"], 1);
    assert!(analysis["catalogue"]["compiled"].as_str().is_some());
    let worst = analysis["worst"].as_array().unwrap();
    assert_eq!(worst.len(), 8, "end of life and extended support only");
    // End of life first, the longest out of support first.
    assert_eq!(worst[0]["name"], "w2k8r2-legacy", "{worst:?}");
    assert_eq!(worst[0]["support_ends"], "2020-01-14");
    assert!(worst[..5].iter().all(|w| w["status"] == "end_of_life"));
    assert_eq!(json["tech_debt"]["by_status"]["end_of_life"], 5);

    // Judged again on the same day nothing changes; on another day it does.
    let (_, again) = work.import_json(&[&fixture(), "--force", "--support-as-of", "2026-11-24"]);
    assert_eq!(again["tech_debt"]["updated"], 0, "{}", again["tech_debt"]);
    let (_, earlier) = work.import_json(&[&fixture(), "--force", "--support-as-of", "2020-01-01"]);
    assert!(earlier["tech_debt"]["updated"].as_u64().unwrap() > 0);
    let all = verdicts(&work);
    assert_eq!(status_of(&all, "w2016-app").1, "supported");
    assert_eq!(status_of(&all, "w2k8r2-legacy").1, "extended_support");
}

#[test]
fn a_date_that_is_not_a_date_is_a_usage_error() {
    let work = Work::new();
    let out = work
        .intake()
        .args(["import", &fixture(), "--support-as-of", "24/11/2026"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("YYYY-MM-DD"));
}

#[test]
fn an_application_takes_the_worst_verdict_of_the_machines_it_runs_on() {
    let work = Work::new();
    let servers = format!(
        "{}/tests/fixtures/dependencies/servers_with_application_lists.csv",
        env!("CARGO_MANIFEST_DIR")
    );
    let (code, json) = work.import_json(&[&servers, "--support-as-of", "2026-11-24"]);
    assert_eq!(code, 0, "{json}");
    let all = verdicts(&work);
    // Web Shop runs on Windows Server 2008 R2 (end of life) and RHEL 9.
    let (_, status, _, details) = status_of(&all, "Web Shop");
    assert_eq!(status, "end_of_life", "{details}");
    assert_eq!(details["inherited_from"], "app-host-01", "{details}");
    assert_eq!(
        details["based_on"],
        "runs on app-host-01 (Windows Server 2008 R2)"
    );
    assert_eq!(details["support_ends"], "2020-01-14");
    let (_, _, _, host) = status_of(&all, "app-host-02");
    assert_eq!(host["based_on"], "Red Hat Enterprise Linux 9");
    assert_eq!(host["inherited_from"], Value::Null);
    // app-host-01 and the two applications on it.
    let outcome = &json["tech_debt"];
    assert_eq!(outcome["by_status"]["end_of_life"], 3, "{outcome}");
    assert_eq!(status_of(&all, "Billing").1, "end_of_life");
    let (_, again) = work.import_json(&[&servers, "--force", "--support-as-of", "2026-11-24"]);
    assert_eq!(again["tech_debt"]["updated"], 0, "{}", again["tech_debt"]);
}
