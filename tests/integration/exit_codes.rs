//! Every code of the exit table (`src/cli/exit.rs`, `intake --help`) is
//! returned by a real command here, with what each code promises: errors on
//! stderr even under `--quiet`, nothing on stdout that is not data, and no
//! file left behind by a command that failed before doing work.

use crate::common::{TestDatabase, Work};

/// Runs `intake ARGS` and returns (code, stdout, stderr).
fn run(work: &Work, args: &[&str], env: &[(&str, String)]) -> (i32, String, String) {
    let mut cmd = work.intake();
    for (k, v) in env {
        cmd.env(k, v);
    }
    let out = cmd.args(args).output().unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// The files a failed command must not leave beside the database.
fn leftovers(work: &Work) -> Vec<String> {
    std::fs::read_dir(work.dir.path())
        .unwrap()
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| n.starts_with("intake.db"))
        .collect()
}

#[test]
fn every_exit_code_of_the_table_is_what_a_command_returns() {
    let work = Work::new();
    let good = work.write(
        "servers.csv",
        "Server Name,OS,RAM (GB)\nweb01,Ubuntu 22.04,8\nweb02,RHEL 8,lots\n",
    );
    let good = good.to_str().unwrap();

    // 2: a usage error creates nothing, and says so on stderr under --quiet.
    let (code, out, err) = run(
        &work,
        &["import", "--quiet", "--encoding", "klingon", good],
        &[],
    );
    assert_eq!(code, 2, "{err}");
    assert!(out.is_empty() && err.contains("klingon"), "{err}");
    assert!(leftovers(&work).is_empty(), "{:?}", leftovers(&work));
    let (code, _, err) = run(&work, &["import", "--no-such-option", good], &[]);
    assert_eq!(code, 2, "{err}");

    // 3: no database yet, for a command that reads one; nothing is created.
    let (code, out, err) = run(&work, &["report", "--quiet", "-o", "report.html"], &[]);
    assert_eq!(code, 3, "{err}");
    assert!(out.is_empty() && !err.is_empty());
    assert!(leftovers(&work).is_empty());
    let (code, _, err) = run(
        &work,
        &["sync", "--quiet"],
        &[("DATABASE_URL", "postgres://127.0.0.1:9/none".into())],
    );
    assert_eq!(code, 3, "sync never creates the local file: {err}");
    assert!(leftovers(&work).is_empty());

    // 0: imported; row warnings are reported, not failures.
    let (code, out, err) = run(&work, &["import", good], &[]);
    assert_eq!(code, 0, "{err}");
    assert!(
        out.contains("servers.csv"),
        "the summary is on stdout: {out}"
    );

    // 0: nothing to do (the same file again).
    let (code, _, err) = run(&work, &["import", "--quiet", good], &[]);
    assert_eq!(code, 0, "{err}");

    // 4: --strict and rows had warnings (a row longer than the header).
    let strict = work.write("strict.csv", "Server Name,OS\nweb03,Ubuntu 22.04,extra\n");
    let (code, _, err) = run(
        &work,
        &["import", "--quiet", "--strict", strict.to_str().unwrap()],
        &[],
    );
    assert_eq!(code, 4, "{err}");

    // 3: a missing path among several; the others are imported, the error is
    // on stderr under --quiet.
    let more = work.write("more.csv", "Server Name,OS\nweb09,Windows Server 2019\n");
    let (code, out, err) = run(
        &work,
        &["import", "--quiet", "nope.csv", more.to_str().unwrap()],
        &[],
    );
    assert_eq!(code, 3, "{err}");
    assert!(out.is_empty(), "--quiet prints no summary: {out}");
    assert!(
        err.contains("nope.csv"),
        "the failure is said under --quiet: {err}"
    );
    let conn = work.conn();
    assert_eq!(
        crate::common::count(
            &conn,
            "SELECT count(*) FROM data_imports WHERE filename LIKE '%more.csv'"
        ),
        1
    );
    drop(conn);

    // 3: no such flow.
    let (code, _, err) = run(
        &work,
        &["report", "--flow", "ffffffff", "-o", "r.html"],
        &[],
    );
    assert_eq!(code, 3, "{err}");
    assert!(err.contains("no flow ffffffff"), "{err}");

    // 4 and 5: a sync the central database refuses, and one while another
    // sync of the engagement holds its lock.
    let central = TestDatabase::create("exit_codes");
    let (code, _, err) = run(
        &work,
        &["sync", "--quiet"],
        &[("DATABASE_URL", central.url())],
    );
    assert_eq!(
        code, 4,
        "no central schema and no --create-schema is refused: {err}"
    );
    // The lock a sync holds: its tenant's ids (src/sync/mod.rs).
    let (client, engagement): (String, String) = work
        .conn()
        .query_row(
            "SELECT client_account_id, engagement_id FROM discovery_flows LIMIT 1",
            [],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )
        .unwrap();
    let mut holder = central.client();
    holder
        .execute(
            "SELECT pg_advisory_lock(hashtextextended($1, 0))",
            &[&format!("intake sync {client} {engagement}")],
        )
        .unwrap();
    let (code, _, err) = run(
        &work,
        &["sync", "--quiet", "--create-schema"],
        &[("DATABASE_URL", central.url())],
    );
    assert_eq!(code, 5, "{err}");
    assert!(err.contains("another sync"), "{err}");
    drop(holder);
    let (code, _, err) = run(
        &work,
        &["sync", "--quiet", "--create-schema"],
        &[("DATABASE_URL", central.url())],
    );
    assert_eq!(code, 0, "{err}");

    // 1: the database is unusable (not a SQLite file).
    let broken = Work::new();
    std::fs::write(broken.db(), vec![0x5a; 8192]).unwrap();
    let (code, out, err) = run(&broken, &["import", "--quiet", good], &[]);
    assert_eq!(code, 1, "{err}");
    assert!(out.is_empty() && !err.is_empty(), "{err}");
}
