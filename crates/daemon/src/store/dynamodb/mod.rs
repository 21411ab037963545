//! The DynamoDB store: the same [`Backend`] on one table (`deploy/dynamodb/state-table.json`),
//! for several replicas sharing one queue.
//!
//! Layout (partition key `pk`, sort key `sk`; one sparse index `by-state` on `g1pk`/`g1sk`):
//!
//! | item            | pk                | sk              | by-state (only while it matters)          |
//! |-----------------|-------------------|-----------------|-------------------------------------------|
//! | incident        | `INC#<key>`       | `#INC`          | `INCIDENT#active` / `INCIDENT#resolved`   |
//! | timeline entry  | `INC#<key>`       | `TL#<id>`       | —                                         |
//! | deadline        | `INC#<key>`       | `DL#<id>`       | `DEADLINE#pending`, sorted by due time    |
//! | outbox item     | `INC#<key>`       | `OB#<id>`       | `OUTBOX#pending`, sorted by id (settled: `expires_at`) |
//! | Slack thread    | `INC#<key>`       | `#THREAD`       | —                                         |
//! | processed event | `EVT#<id>`        | `#EVT`          | — (`expires_at` for TTL)                   |
//! | processed trans.| `TR#<transition>` | `#TR`           | — (`expires_at` for TTL)                   |
//! | silence         | `SILENCE`         | `<id>`          | —                                         |
//! | one-off claim   | `ONCE#<key>`      | `#ONCE`         | — (`expires_at` for TTL)                   |
//!
//! Who does what is decided by conditional writes, never by a lock service:
//! * an input's whole effect is one `TransactWriteItems`: a new incident is `attribute_not_exists`
//!   (the loser re-reads and joins the winner's incident), a changed one `version = :read`
//!   (optimistic; retried on conflict), and the processed markers are `attribute_not_exists`
//!   (a duplicate cancels the whole transaction: nothing is written twice);
//! * a deadline is claimed `pending → fired/skipped` with this replica as `owner`, in the same
//!   transaction as the escalation it queues, conditioned on the incident's `version`;
//! * an outbox item is leased (`lease_owner`, `lease_until`) before it is sent;
//! * a one-off job (e.g. one period's digest) is claimed by an `attribute_not_exists` put.
//!
//! Pending deadlines and notifications are found by querying the sparse index, not by scanning:
//! an item leaves the index when it stops being pending.
//!
//! Files: `table` (creation, reads, one transaction), `codec` (items and attributes),
//! `writes` (a decision's transaction, optimistic retries, firing, pruning), `backend` (the
//! [`Backend`](crate::store::Backend) operations).

mod backend;
mod codec;
mod table;
mod writes;

use aws_sdk_dynamodb::types::AttributeValue;
use aws_sdk_dynamodb::Client;
use pipeline_responder_core::incident::IncidentsView;
use std::collections::HashMap;
use std::sync::Arc;

type Item = HashMap<String, AttributeValue>;

/// The table description shipped in `deploy/` (what `create_table` creates).
pub const TABLE_DEFINITION: &str = include_str!("../../../../../deploy/dynamodb/state-table.json");

/// The sparse index of pending work and incidents by state.
const INDEX: &str = "by-state";
/// `store.retention_days` unless configured: processed-event markers and settled posts are
/// kept this long (DynamoDB TTL on `expires_at` removes them); resolved incidents are removed
/// by the retention sweep (`prune`).
const DEFAULT_RETENTION_DAYS: i64 = 90;
/// Resolved incidents removed per retention sweep (the next sweep takes the rest).
const PRUNE_BATCH: usize = 100;
/// Attempts of an optimistic write before giving up (the input then comes back from SQS).
const MAX_ATTEMPTS: u32 = 12;
/// DynamoDB's limit of actions in one transaction.
const MAX_TRANSACTION_ITEMS: usize = 100;

const ACTIVE: &str = "INCIDENT#active";
const RESOLVED: &str = "INCIDENT#resolved";
const DEADLINE_PENDING: &str = "DEADLINE#pending";
const OUTBOX_PENDING: &str = "OUTBOX#pending";

/// Overlap of two consecutive view reads: covers clock skew between replicas and the index's
/// propagation delay (re-reading a few incidents twice is harmless).
const VIEW_MARGIN_MS: i64 = 5_000;

/// The DynamoDB store. Cheap to clone.
#[derive(Clone, Debug)]
pub struct DynamoStore {
    client: Client,
    table: String,
    /// This replica, recorded on the deadlines it fires and the posts it leases.
    owner: String,
    /// The incidents as last read, refreshed by deltas (see `view`).
    views: Arc<tokio::sync::Mutex<ViewCache>>,
    /// `store.retention_days`: processed-event markers and settled posts carry `expires_at` this
    /// far ahead, for the table's TTL.
    retention: chrono::Duration,
}

/// Incident views (indexed for the rules, shared with whoever holds the last answer), with the
/// version each was read at.
#[derive(Debug, Default)]
struct ViewCache {
    views: Arc<IncidentsView>,
    versions: HashMap<String, i64>,
    /// Wall-clock millis when the last read started (none before the first full read).
    refreshed_at: Option<i64>,
    /// The history window of the full read (an earlier `since` needs a new full read).
    since: i64,
}

impl DynamoStore {
    pub fn new(client: Client, table: impl Into<String>, owner: impl Into<String>) -> Self {
        Self {
            client,
            table: table.into(),
            owner: owner.into(),
            views: Arc::default(),
            retention: chrono::Duration::days(DEFAULT_RETENTION_DAYS),
        }
    }

    /// The same store with `store.retention_days` for its TTLs.
    pub fn with_retention_days(mut self, days: u32) -> Self {
        self.retention = chrono::Duration::days(days.into());
        self
    }
}
