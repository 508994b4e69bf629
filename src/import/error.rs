//! Errors of an `intake import` run as a whole: the database cannot be used,
//! the inputs cannot be gathered, an option is wrong or a phase failed. A file
//! that cannot be read is not one of these: it is a failed file of the outcome.

use crate::db::DbError;
use crate::pipeline::PipelineError;
use crate::read::InputError;

/// Errors of an import run as a whole.
#[derive(Debug, thiserror::Error)]
pub enum ImportError {
    #[error(transparent)]
    Db(#[from] DbError),
    #[error(transparent)]
    Input(#[from] InputError),
    #[error("invalid option: {0}")]
    InvalidOption(String),
    #[error(transparent)]
    Pipeline(#[from] PipelineError),
}

impl From<rusqlite::Error> for ImportError {
    fn from(e: rusqlite::Error) -> Self {
        ImportError::Db(DbError::Sql(e))
    }
}
