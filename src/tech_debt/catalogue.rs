//! The end-of-support catalogue (`support_catalogue.toml`, compiled in) and
//! how a product and version are found in the free text of an OS or a
//! technology stack: the text is cut into lower-case words (dots kept, so
//! "8.6" stays one word), a product is found by one of its phrases, and its
//! version among the few words after the phrase; "8.6" matches version "8",
//! "2012 R2" is tried before "2012".

use std::cell::RefCell;
use std::collections::HashMap;
use std::sync::LazyLock;

use serde::Deserialize;
use serde_json::{json, Value};

use super::SupportStatus;

/// The catalogue as shipped in the binary; a unit test checks it parses.
pub static CATALOGUE: LazyLock<Catalogue> = LazyLock::new(|| {
    toml::from_str(include_str!("support_catalogue.toml"))
        .expect("support_catalogue.toml is checked by the tech_debt unit tests")
});

/// How many words after a product's phrase may hold its version.
const VERSION_WINDOW: usize = 6;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ProductKind {
    Os,
    Database,
}

#[derive(Debug, Deserialize)]
pub struct Catalogue {
    #[serde(rename = "catalogue")]
    pub info: CatalogueInfo,
    #[serde(rename = "product")]
    pub products: Vec<Product>,
}

#[derive(Debug, Deserialize)]
pub struct CatalogueInfo {
    /// The day the dates were last checked.
    pub compiled: String,
    pub source: String,
    #[serde(default)]
    pub note: String,
}

#[derive(Debug, Deserialize)]
pub struct Product {
    pub name: String,
    pub kind: ProductKind,
    #[serde(rename = "match")]
    pub phrases: Vec<String>,
    #[serde(default)]
    pub exclude: Vec<String>,
    pub source: String,
    pub versions: Vec<Version>,
}

#[derive(Debug, Deserialize)]
pub struct Version {
    pub version: String,
    #[serde(default)]
    pub aliases: Vec<String>,
    pub support_end: Option<String>,
    pub extended_end: Option<String>,
}

/// A product (and perhaps its version) found in an asset.
#[derive(Debug, Clone)]
pub struct Component {
    pub product: String,
    pub version: Option<String>,
    pub support_end: Option<String>,
    pub extended_end: Option<String>,
    /// The asset field it was found in.
    pub field: &'static str,
    pub source: String,
}

impl Component {
    /// Unknown when the version is not in the catalogue.
    pub fn status(&self, as_of: &str) -> SupportStatus {
        match self.version {
            None => SupportStatus::Unknown,
            Some(_) => SupportStatus::on(
                as_of,
                self.support_end.as_deref(),
                self.extended_end.as_deref(),
            ),
        }
    }

    /// "Windows Server 2012 R2".
    pub fn label(&self) -> String {
        match &self.version {
            Some(v) => format!("{} {v}", self.product),
            None => self.product.clone(),
        }
    }

    /// The day all support ends.
    pub fn last_end(&self) -> Option<&str> {
        self.extended_end.as_deref().or(self.support_end.as_deref())
    }

    pub fn to_json(&self, as_of: &str) -> Value {
        json!({
            "product": self.product,
            "version": self.version,
            "found_in": self.field,
            "status": self.status(as_of).name(),
            "support_end": self.support_end,
            "extended_end": self.extended_end,
            "source": self.source,
        })
    }
}

/// Lower-case words; dots inside a word are kept ("8.6", "5.10").
fn words(text: &str) -> Vec<String> {
    text.to_lowercase()
        .split(|c: char| !(c.is_alphanumeric() || c == '.'))
        .map(|w| w.trim_matches('.'))
        .filter(|w| !w.is_empty())
        .map(str::to_string)
        .collect()
}

/// Where `phrase` starts in `text` (both as words).
fn find_phrase(text: &[String], phrase: &[String]) -> Option<usize> {
    if phrase.is_empty() || phrase.len() > text.len() {
        return None;
    }
    (0..=text.len() - phrase.len()).find(|&i| text[i..i + phrase.len()] == *phrase)
}

/// Whether the words `name` start at some point of `window`; the last word
/// may continue with a dot ("8" matches "8.6").
fn version_in(window: &[String], name: &[String]) -> bool {
    if name.is_empty() || name.len() > window.len() {
        return false;
    }
    (0..=window.len() - name.len()).any(|i| {
        name.iter().enumerate().all(|(k, part)| {
            let word = &window[i + k];
            word == part
                || (k == name.len() - 1
                    && word.starts_with(part.as_str())
                    && word[part.len()..].starts_with('.'))
        })
    })
}

impl Catalogue {
    /// The first product of `kind` named in `text`, with its version if one is
    /// listed; None when no product is named.
    pub fn find(&self, text: &str, kind: ProductKind, field: &'static str) -> Option<Component> {
        self.find_all(text, kind, field).into_iter().next()
    }

    /// Every product of `kind` named in `text` ("IIS 10, SQL Server 2014, MySQL 5.7").
    /// An inventory repeats the same few OS strings a million times, so the
    /// answers for recent texts are remembered (per thread, a bounded number).
    pub fn find_all(&self, text: &str, kind: ProductKind, field: &'static str) -> Vec<Component> {
        thread_local! {
            static RECENT: RefCell<HashMap<(ProductKind, String), Vec<Component>>> =
                RefCell::new(HashMap::new());
        }
        const REMEMBERED: usize = 4_096;
        let with_field = |found: Vec<Component>| {
            found
                .into_iter()
                .map(|c| Component { field, ..c })
                .collect()
        };
        // Only the shipped catalogue's answers are remembered.
        if !std::ptr::eq(self, &*CATALOGUE) {
            return with_field(self.search(text, kind));
        }
        let key = (kind, text.to_string());
        let found = RECENT.with_borrow_mut(|recent| {
            if let Some(found) = recent.get(&key) {
                return found.clone();
            }
            let found = self.search(text, kind);
            if recent.len() >= REMEMBERED {
                recent.clear();
            }
            recent.insert(key, found.clone());
            found
        });
        with_field(found)
    }

    /// find_all without the memory; components carry no field yet.
    fn search(&self, text: &str, kind: ProductKind) -> Vec<Component> {
        let field = "";
        let text = words(text);
        let mut found = Vec::new();
        let mut taken_at: Vec<usize> = Vec::new();
        for product in self.products.iter().filter(|p| p.kind == kind) {
            if product
                .exclude
                .iter()
                .any(|e| find_phrase(&text, &words(e)).is_some())
            {
                continue;
            }
            let Some((at, len)) = product.phrases.iter().find_map(|p| {
                let phrase = words(p);
                find_phrase(&text, &phrase).map(|at| (at, phrase.len()))
            }) else {
                continue;
            };
            // "CentOS Stream 9" is CentOS Stream, not also CentOS.
            if taken_at.contains(&at) {
                continue;
            }
            taken_at.push(at);
            let window = &text[at + len..(at + len + VERSION_WINDOW).min(text.len())];
            let version = product.versions.iter().find(|v| {
                std::iter::once(&v.version)
                    .chain(&v.aliases)
                    .any(|name| version_in(window, &words(name)))
            });
            found.push(Component {
                product: product.name.clone(),
                version: version.map(|v| v.version.clone()),
                support_end: version.and_then(|v| v.support_end.clone()),
                extended_end: version.and_then(|v| v.extended_end.clone()),
                field,
                source: product.source.clone(),
            });
        }
        found
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn os(text: &str) -> Option<String> {
        CATALOGUE
            .find(text, ProductKind::Os, "operating_system")
            .map(|c| c.label())
    }

    #[test]
    fn catalogue_parses_and_its_dates_are_iso_days() {
        let format = time::macros::format_description!("[year]-[month]-[day]");
        assert!(time::Date::parse(&CATALOGUE.info.compiled, format).is_ok());
        let families: Vec<&str> = CATALOGUE.products.iter().map(|p| p.name.as_str()).collect();
        for wanted in [
            "Windows Server",
            "Red Hat Enterprise Linux",
            "CentOS",
            "Ubuntu",
            "SUSE Linux Enterprise Server",
            "Debian",
            "Oracle Linux",
            "IBM AIX",
            "Oracle Solaris",
            "Microsoft SQL Server",
            "Oracle Database",
            "MySQL",
            "PostgreSQL",
        ] {
            assert!(families.contains(&wanted), "{wanted} missing");
        }
        for product in &CATALOGUE.products {
            assert!(!product.source.is_empty(), "{} has no source", product.name);
            for v in &product.versions {
                for date in [&v.support_end, &v.extended_end].into_iter().flatten() {
                    assert!(
                        time::Date::parse(date, format).is_ok(),
                        "{} {}: {date}",
                        product.name,
                        v.version
                    );
                }
                if let (Some(s), Some(e)) = (&v.support_end, &v.extended_end) {
                    assert!(s <= e, "{} {} ends before it ends", product.name, v.version);
                }
            }
        }
    }

    #[test]
    fn real_os_strings_find_their_version() {
        assert_eq!(
            os("Microsoft Windows Server 2008 R2 (64-bit)").as_deref(),
            Some("Windows Server 2008 R2")
        );
        assert_eq!(
            os("Microsoft Windows Server 2016 or later (64-bit)").as_deref(),
            Some("Windows Server 2016")
        );
        assert_eq!(
            os("Red Hat Enterprise Linux 8.6").as_deref(),
            Some("Red Hat Enterprise Linux 8")
        );
        assert_eq!(
            os("RHEL 7.9").as_deref(),
            Some("Red Hat Enterprise Linux 7")
        );
        assert_eq!(os("CentOS Stream 9").as_deref(), Some("CentOS Stream 9"));
        assert_eq!(os("CentOS 7 (64-bit)").as_deref(), Some("CentOS 7"));
        assert_eq!(os("Ubuntu 20.04.6 LTS").as_deref(), Some("Ubuntu 20.04"));
        assert_eq!(
            os("SUSE Linux Enterprise Server 12 SP5").as_deref(),
            Some("SUSE Linux Enterprise Server 12")
        );
        assert_eq!(
            os("Debian GNU/Linux 10 (64-bit)").as_deref(),
            Some("Debian 10")
        );
        assert_eq!(
            os("Oracle Linux Server 7.9").as_deref(),
            Some("Oracle Linux 7")
        );
        assert_eq!(os("AIX 7.1").as_deref(), Some("IBM AIX 7.1"));
        assert_eq!(os("AIX 7200-05-03-2148").as_deref(), Some("IBM AIX 7.2"));
        assert_eq!(os("SunOS 5.10").as_deref(), Some("Oracle Solaris 10"));
        assert_eq!(
            os("Oracle Solaris 11.4").as_deref(),
            Some("Oracle Solaris 11")
        );
        assert_eq!(os("Ubuntu Linux (64-bit)").as_deref(), Some("Ubuntu"));
        assert_eq!(os("Microsoft Windows 10 Enterprise"), None);
        assert_eq!(os("Other 3.x or later Linux (64-bit)"), None);
    }

    #[test]
    fn database_engines_in_a_technology_stack() {
        let found: Vec<String> = CATALOGUE
            .find_all(
                "IIS 10, SQL Server 2014 SP3, MySQL 5.7.44",
                ProductKind::Database,
                "technology_stack",
            )
            .iter()
            .map(Component::label)
            .collect();
        assert_eq!(found, ["Microsoft SQL Server 2014", "MySQL 5.7"]);
        let oracle = |t: &str| {
            CATALOGUE
                .find(t, ProductKind::Database, "technology_stack")
                .map(|c| c.label())
        };
        assert_eq!(
            oracle("Oracle Database 19c Enterprise Edition").as_deref(),
            Some("Oracle Database 19c")
        );
        assert_eq!(
            oracle("Oracle 12c Release 2").as_deref(),
            Some("Oracle Database 12.2")
        );
        assert_eq!(
            oracle("Oracle 11g").as_deref(),
            Some("Oracle Database 11.2")
        );
        assert_eq!(oracle("PostgreSQL 13.4").as_deref(), Some("PostgreSQL 13"));
        assert_eq!(oracle("Oracle Linux 8"), None);
    }
}
