//! The central database's connection string, checked before anything uses
//! it. A URL whose password holds an `@`, `/`, `?` or `#` that was not
//! percent-encoded is read by the driver as another host name or path: the
//! rest of the password would be shown in messages, stored in the sync log
//! and sent to the resolver. Such a URL is refused with the fix, and the
//! only form of a connection string that is ever shown is `target`'s
//! host:port/database.

use postgres::config::Host;
use postgres::Config;

/// Why a connection string was refused. The messages never hold any part of it.
#[derive(Debug, thiserror::Error)]
pub enum UrlError {
    #[error("the central database URL has a '{found}' in its user name or password that is not percent-encoded, so part of the password would be read as the host. Write it as {encoded} (postgres://user:p{encoded}ss@host:5432/database)")]
    Unencoded { found: char, encoded: &'static str },
    #[error("the central database URL cannot be read: {reason}. Expected postgres://user:password@host:5432/database, with special characters in the password percent-encoded")]
    Invalid { reason: String },
}

/// Parses a connection string (a `postgres://` URL or libpq's `key=value`
/// form) once its user name and password are known to be encoded.
pub fn parse(database_url: &str) -> Result<Config, UrlError> {
    let url = database_url.trim();
    let rest = ["postgres://", "postgresql://"].iter().find_map(|scheme| {
        url.get(..scheme.len())
            .filter(|head| head.eq_ignore_ascii_case(scheme))
            .map(|_| &url[scheme.len()..])
    });
    let mut secret = "";
    if let Some(rest) = rest {
        // The user information ends at the last '@' before the query: an '@'
        // is never part of a host, so any earlier one is the password's.
        let before_query = rest.split('?').next().unwrap_or(rest);
        if let Some(last_at) = before_query.rfind('@') {
            secret = &rest[..last_at];
            for (found, encoded) in [('@', "%40"), ('/', "%2F"), ('#', "%23")] {
                if secret.contains(found) {
                    return Err(UrlError::Unencoded { found, encoded });
                }
            }
        }
    }
    url.parse::<Config>().map_err(|e| {
        let said = e.to_string();
        let password = password_text(url);
        let leaks = (!secret.is_empty() && said.contains(secret))
            || password.is_some_and(|p| !p.is_empty() && said.contains(&p));
        UrlError::Invalid {
            reason: if leaks {
                "it is not a valid connection string".into()
            } else {
                said
            },
        }
    })
}

/// The password of a connection string, as the driver reads it.
fn password_text(url: &str) -> Option<String> {
    let config = url.parse::<Config>().ok()?;
    config
        .get_password()
        .map(|p| String::from_utf8_lossy(p).into_owned())
}

/// host:port/database of a parsed connection string: what may be shown,
/// logged and stored.
pub fn target(config: &Config) -> String {
    let host = config
        .get_hosts()
        .first()
        .map(|h| match h {
            Host::Tcp(name) => name.clone(),
            Host::Unix(path) => path.display().to_string(),
        })
        .unwrap_or_else(|| "localhost".into());
    let port = config.get_ports().first().copied().unwrap_or(5432);
    format!(
        "{host}:{port}/{}",
        config.get_dbname().unwrap_or("postgres")
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_unencoded_at_in_the_password_is_refused_without_showing_it() {
        let err = parse("postgres://app:s3cr@tpass@db.example.com:5432/platform").unwrap_err();
        let said = err.to_string();
        assert!(said.contains("%40"), "{said}");
        assert!(!said.contains("s3cr") && !said.contains("tpass"), "{said}");
        let err = parse("postgres://app:pa/ss@db.example.com/platform").unwrap_err();
        assert!(err.to_string().contains("%2F"));
        let err = parse("postgres://app:pa#ss@db.example.com/platform").unwrap_err();
        assert!(err.to_string().contains("%23"));
    }

    #[test]
    fn encoded_passwords_and_key_value_strings_are_read() {
        let config = parse("postgres://app:s3cr%40tpass@db.example.com:6543/platform").unwrap();
        assert_eq!(config.get_password(), Some(&b"s3cr@tpass"[..]));
        assert_eq!(target(&config), "db.example.com:6543/platform");
        let config = parse("host=db.example.com user=app password=p@ss dbname=platform").unwrap();
        assert_eq!(target(&config), "db.example.com:5432/platform");
        assert_eq!(
            target(&parse("postgres://postgres@127.0.0.1:5432").unwrap()),
            "127.0.0.1:5432/postgres"
        );
    }

    #[test]
    fn a_parse_error_never_repeats_the_password() {
        let err = parse("postgres://app:hunter2@db.example.com:notaport/platform").unwrap_err();
        assert!(!err.to_string().contains("hunter2"), "{err}");
    }
}
