//! Where the seats are: a SQLite file, or a PostgreSQL database named by its URL.

use std::path::{Path, PathBuf};

use super::model::{SeatStore, StoreError};
use super::postgres::PostgresStore;
use super::sqlite::SqliteStore;

/// A seat database, as `--db` or the config file's `db` names it.
#[derive(Clone, PartialEq, Eq)]
pub enum DbLocation {
    Sqlite(PathBuf),
    /// A `postgres://` or `postgresql://` URL (it may hold a password: never shown).
    Postgres(String),
}

impl std::fmt::Debug for DbLocation {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{self}")
    }
}

/// Names the database without its password.
impl std::fmt::Display for DbLocation {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Sqlite(path) => write!(f, "{}", path.display()),
            Self::Postgres(url) => match url.parse() {
                Ok(config) => f.write_str(&super::postgres::describe(&config)),
                Err(_) => f.write_str("postgres (an unreadable URL)"),
            },
        }
    }
}

impl DbLocation {
    /// Reads `text`: a PostgreSQL URL, or else a SQLite file, relative to `base` if given.
    pub fn parse(text: &str, base: Option<&Path>) -> Self {
        if text.starts_with("postgres://") || text.starts_with("postgresql://") {
            return Self::Postgres(text.to_owned());
        }
        let path = PathBuf::from(text);
        match base {
            Some(dir) if path.is_relative() => Self::Sqlite(dir.join(path)),
            _ => Self::Sqlite(path),
        }
    }

    /// Opens the database, migrating its schema forward to this lapd's.
    pub fn open(&self) -> Result<Box<dyn SeatStore>, StoreError> {
        Ok(match self {
            Self::Sqlite(path) => Box::new(SqliteStore::open(path)?),
            Self::Postgres(url) => Box::new(PostgresStore::open(url)?),
        })
    }
}
