//! The composition root: builds every part from the configuration, runs them under supervision
//! until a shutdown signal (`run`). Nothing but `main`/`cli` depends on it.

pub mod run;
pub mod supervise;

pub use run::{init_logging, run};
