//! Tenants: the client account and engagement every row belongs to, and the user
//! who ran the command. Found by name, created on first use; without names a
//! default local tenant is used so `intake import file.csv` just works.

use rusqlite::{params, Connection, OptionalExtension};
use serde::Serialize;

use crate::db;

pub const DEFAULT_CLIENT: &str = "local";
pub const DEFAULT_ENGAGEMENT: &str = "default";

/// The resolved tenant of a run.
#[derive(Debug, Clone, Serialize)]
pub struct Tenant {
    pub client_account_id: String,
    pub client_name: String,
    pub engagement_id: String,
    pub engagement_name: String,
    pub user_id: String,
    pub user_name: String,
}

/// The user name to record when none is given: $USER, or "intake".
pub fn default_user() -> String {
    std::env::var("USER")
        .or_else(|_| std::env::var("USERNAME"))
        .ok()
        .filter(|u| !u.trim().is_empty())
        .unwrap_or_else(|| "intake".to_string())
}

/// Finds or creates the client, engagement and user, in one transaction.
pub fn resolve(
    conn: &Connection,
    client: Option<&str>,
    engagement: Option<&str>,
    user: Option<&str>,
) -> rusqlite::Result<Tenant> {
    let client_name = client.unwrap_or(DEFAULT_CLIENT).trim().to_string();
    let engagement_name = engagement.unwrap_or(DEFAULT_ENGAGEMENT).trim().to_string();
    let user_name = user.map(str::to_string).unwrap_or_else(default_user);
    let tx = conn.unchecked_transaction()?;
    let now = db::now();

    let client_account_id = find_or_insert(
        &tx,
        "SELECT id FROM client_accounts WHERE name = ?1",
        &[&client_name],
        |id| {
            tx.execute(
                "INSERT INTO client_accounts (id, name, created_at, updated_at) VALUES (?1, ?2, ?3, ?3)",
                params![id, client_name, now],
            )
        },
    )?;
    let engagement_id = find_or_insert(
        &tx,
        "SELECT id FROM engagements WHERE client_account_id = ?1 AND name = ?2",
        &[&client_account_id, &engagement_name],
        |id| {
            tx.execute(
                "INSERT INTO engagements (id, client_account_id, name, created_at, updated_at)
                 VALUES (?1, ?2, ?3, ?4, ?4)",
                params![id, client_account_id, engagement_name, now],
            )
        },
    )?;
    let user_id = find_or_insert(
        &tx,
        "SELECT id FROM users WHERE client_account_id = ?1 AND username = ?2",
        &[&client_account_id, &user_name],
        |id| {
            tx.execute(
                "INSERT INTO users (id, client_account_id, engagement_id, username, created_at, updated_at)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?5)",
                params![id, client_account_id, engagement_id, user_name, now],
            )
        },
    )?;
    tx.commit()?;
    Ok(Tenant {
        client_account_id,
        client_name,
        engagement_id,
        engagement_name,
        user_id,
        user_name,
    })
}

fn find_or_insert(
    conn: &Connection,
    select: &str,
    keys: &[&String],
    insert: impl FnOnce(&str) -> rusqlite::Result<usize>,
) -> rusqlite::Result<String> {
    let found: Option<String> = conn
        .query_row(select, rusqlite::params_from_iter(keys), |r| r.get(0))
        .optional()?;
    match found {
        Some(id) => Ok(id),
        None => {
            let id = db::new_id();
            insert(&id)?;
            Ok(id)
        }
    }
}
