//! The report printed to PDF by a headless Chromium (or Chrome, or Edge)
//! found on the machine: the HTML page is written to a private temporary
//! directory and printed offline (a proxy that refuses every connection, a
//! throw-away profile), so what the PDF shows is exactly the HTML report.

use std::io::Read as _;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// The browsers tried, in order, when `INTAKE_CHROMIUM` names none.
const CANDIDATES: &[&str] = &[
    "chromium",
    "chromium-browser",
    "google-chrome",
    "google-chrome-stable",
    "microsoft-edge",
    "/Applications/Google Chrome.app/Contents/MacOS/Google Chrome",
    "/Applications/Chromium.app/Contents/MacOS/Chromium",
    "C:\\Program Files\\Google\\Chrome\\Application\\chrome.exe",
    "C:\\Program Files (x86)\\Microsoft\\Edge\\Application\\msedge.exe",
];

/// How long a print may take before the browser is stopped.
const PRINT_TIMEOUT: Duration = Duration::from_secs(180);

#[derive(Debug, thiserror::Error)]
pub enum PdfError {
    #[error(
        "no Chromium, Chrome or Edge found to print the PDF; install one (Debian: apt install chromium), \
         name it in INTAKE_CHROMIUM, or write HTML (--format html) and print it from a browser"
    )]
    NoBrowser,
    #[error("{browser} could not be started: {source}")]
    Start {
        browser: String,
        source: std::io::Error,
    },
    #[error("{browser} printed no PDF (exit {status}): {stderr}")]
    Failed {
        browser: String,
        status: String,
        stderr: String,
    },
    #[error("{browser} took more than {} s to print the report and was stopped", PRINT_TIMEOUT.as_secs())]
    TimedOut { browser: String },
    #[error("temporary file for the PDF: {0}")]
    Io(#[from] std::io::Error),
}

/// The browser that prints: `INTAKE_CHROMIUM`, else the first candidate on
/// the PATH or at its usual place.
pub fn find_browser() -> Option<PathBuf> {
    if let Some(named) = std::env::var_os("INTAKE_CHROMIUM").filter(|v| !v.is_empty()) {
        return Some(PathBuf::from(named));
    }
    CANDIDATES.iter().find_map(|name| {
        let path = Path::new(name);
        if path.is_absolute() {
            return path.is_file().then(|| path.to_path_buf());
        }
        std::env::var_os("PATH").and_then(|paths| {
            std::env::split_paths(&paths)
                .map(|dir| dir.join(name))
                .find(|candidate| candidate.is_file())
        })
    })
}

/// Prints `html` to PDF and returns the PDF's bytes.
pub fn print(html: &str) -> Result<Vec<u8>, PdfError> {
    let browser = find_browser().ok_or(PdfError::NoBrowser)?;
    let name = browser.display().to_string();
    let dir = tempfile::Builder::new()
        .prefix("intake-report-")
        .tempdir()?;
    let page = dir.path().join("report.html");
    std::fs::write(&page, html)?;
    let pdf = dir.path().join("report.pdf");
    let mut child = Command::new(&browser)
        .args([
            "--headless",
            "--disable-gpu",
            "--no-sandbox",
            "--no-first-run",
            "--no-pdf-header-footer",
            "--print-to-pdf-no-header",
            // Offline: the page fetches nothing, and if it tried it would fail at once.
            "--proxy-server=127.0.0.1:9",
            "--proxy-bypass-list=<-loopback>",
        ])
        .arg(format!(
            "--user-data-dir={}",
            dir.path().join("profile").display()
        ))
        .arg(format!("--print-to-pdf={}", pdf.display()))
        .arg(format!("file://{}", page.display()))
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|source| PdfError::Start {
            browser: name.clone(),
            source,
        })?;
    // Read stderr beside the wait so a chatty browser never blocks on a full pipe.
    let mut stderr = child.stderr.take();
    let reader = std::thread::spawn(move || {
        let mut text = String::new();
        if let Some(stderr) = stderr.as_mut() {
            let _ = stderr.read_to_string(&mut text);
        }
        text
    });
    let started = Instant::now();
    let status = loop {
        if let Some(status) = child.try_wait()? {
            break status;
        }
        if started.elapsed() > PRINT_TIMEOUT {
            let _ = child.kill();
            let _ = child.wait();
            return Err(PdfError::TimedOut { browser: name });
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    let stderr = reader.join().unwrap_or_default();
    match std::fs::read(&pdf) {
        Ok(bytes) if bytes.starts_with(b"%PDF") => Ok(bytes),
        _ => Err(PdfError::Failed {
            browser: name,
            status: status.to_string(),
            stderr: stderr.lines().last().unwrap_or("").to_string(),
        }),
    }
}
