//! What happens to an input after a source read it: decided and stored (`ingest`), diagnosed
//! (`diagnose`), escalated on its timers (`escalate`), and summed up in the digest (`digest`,
//! `digest_schedule`, `figures`).

pub mod diagnose;
pub mod digest;
pub mod digest_schedule;
pub mod escalate;
pub mod figures;
pub mod ingest;
