//! The one error type of the crate.

use flowline_model::ModelError;

/// None of these is retriable: they are bad input or bad settings, except
/// `Io`, whose retry (if any) belongs to the caller that owns the file.
#[derive(Debug, thiserror::Error)]
pub enum DatagenError {
    #[error("invalid generator config: {}", .0.join("; "))]
    Config(Vec<String>),
    #[error(transparent)]
    Model(#[from] ModelError),
    #[error("CSV: {0}")]
    Csv(String),
    /// Well-formed file, invalid content (reference data).
    #[error("invalid data: {0}")]
    BadData(String),
    #[error("I/O: {0}")]
    Io(#[from] std::io::Error),
    #[error("Parquet: {0}")]
    Parquet(#[from] parquet::errors::ParquetError),
    #[error("Arrow: {0}")]
    Arrow(#[from] arrow::error::ArrowError),
}

impl DatagenError {
    /// Bounded name for counting (replay reports bad lines by it).
    pub fn error_type(&self) -> &'static str {
        match self {
            DatagenError::Config(_) => "config",
            DatagenError::Model(e) => e.error_type(),
            DatagenError::Csv(_) => "bad_csv",
            DatagenError::BadData(_) => "bad_data",
            DatagenError::Io(_) => "io",
            DatagenError::Parquet(_) => "parquet",
            DatagenError::Arrow(_) => "arrow",
        }
    }
}

impl From<csv::Error> for DatagenError {
    fn from(e: csv::Error) -> Self {
        if !e.is_io_error() {
            return DatagenError::Csv(e.to_string());
        }
        match e.into_kind() {
            csv::ErrorKind::Io(io) => DatagenError::Io(io),
            other => DatagenError::Csv(format!("{other:?}")),
        }
    }
}
