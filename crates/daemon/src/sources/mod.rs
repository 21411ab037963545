//! Where inputs come from. Each source hands message bodies to [`crate::pipeline::ingest::Ingest`] and
//! acknowledges them only after their effects are stored.

pub mod sqs;
pub mod watcher;
