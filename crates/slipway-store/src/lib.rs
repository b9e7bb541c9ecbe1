//! Durable state for slipway: deploys, the hash-chained event log, the outbox of effects,
//! operator intents, engine leases, the catalog (users, tokens, artifacts, releases) and config
//! versions (sealed, immutable, numbered per service and environment) — on SQLite (default) or
//! PostgreSQL, behind one type.
//!
//! Every write that changes a deploy stores its new state, its events and its effects in one
//! transaction, and checks the writer's lease fencing token in that same transaction.

mod catalog;
mod checklist;
mod error;
mod locks;
mod notifications;
mod provenance;
mod settings;
mod store;
mod trains;

pub use catalog::{
    ArtifactPut, ArtifactRecord, NewRelease, Page, ReleaseChoice, ReleaseRecord, TokenRecord, User,
};
pub use checklist::{ItemPlace, TickAction, TickRecord};
pub use error::{StoreError, redact_url};
pub use locks::Lock;
pub use notifications::{
    AfterAttempt, DeliveryAttempt, DeliveryStatus, NewNotification, Notification,
};
pub use provenance::{AttestationPut, AttestationRecord, NewAttestation};
pub use settings::{ConfigVersionRecord, NewConfigVersion};
pub use store::*;
pub use trains::{
    NewPublication, NewTrain, NotesDelivery, NotesRecord, PendingPatch, Publication,
    PublishedNotes, TrainKind, TrainRecord, notes_effect_key,
};
