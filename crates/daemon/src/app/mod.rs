//! The composition root: builds every part from the configuration, runs them under supervision
//! until a shutdown signal (`run`), and the health the probes report (`health`).

pub mod health;
pub mod run;
pub mod supervise;

pub use run::{init_logging, run};
