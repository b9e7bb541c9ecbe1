//! The audit chain: how an event's hash is computed and how a sequence of stored events is
//! verified. Each event carries the hash of the one before it and the hash of its own canonical
//! form, so an edit, an insertion or a gap anywhere breaks the chain from that point on.
//!
//! The canonical form is the event's columns, each length-prefixed, fed straight into SHA-256:
//! verification needs no JSON parsing and no allocation per event.

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::time::Time;

/// A SHA-256 digest.
pub type Hash = [u8; 32];

/// The `prev_hash` of the first event.
pub const GENESIS: Hash = [0; 32];

/// The hashed columns of one stored event.
#[derive(Clone, Copy, Debug)]
pub struct EventFields<'a> {
    /// Position in the log, starting at 1, without gaps.
    pub seq: i64,
    pub at: Time,
    pub deploy: Option<i64>,
    pub kind: &'a str,
    /// The event's JSON, exactly as stored.
    pub payload: &'a str,
}

/// The hash of `fields` chained to `prev`.
pub fn chain_hash(prev: &Hash, fields: &EventFields<'_>) -> Hash {
    let mut hasher = Sha256::new();
    hasher.update(prev);
    hasher.update(fields.seq.to_le_bytes());
    hasher.update(fields.at.as_millis().to_le_bytes());
    match fields.deploy {
        Some(deploy) => {
            hasher.update([1]);
            hasher.update(deploy.to_le_bytes());
        }
        None => hasher.update([0]),
    }
    hasher.update((fields.kind.len() as u64).to_le_bytes());
    hasher.update(fields.kind.as_bytes());
    hasher.update((fields.payload.len() as u64).to_le_bytes());
    hasher.update(fields.payload.as_bytes());
    hasher.finalize().into()
}

/// Checks a log one event at a time, in `seq` order.
#[derive(Clone, Debug)]
pub struct ChainVerifier {
    prev: Hash,
    next_seq: i64,
}

impl Default for ChainVerifier {
    fn default() -> Self {
        Self {
            prev: GENESIS,
            next_seq: 1,
        }
    }
}

impl ChainVerifier {
    /// Checks the next stored event: its position, the previous hash it carries and its own hash.
    pub fn check(
        &mut self,
        fields: &EventFields<'_>,
        stored_prev: &[u8],
        stored_hash: &[u8],
    ) -> Result<(), ChainBreak> {
        let problem = if fields.seq != self.next_seq {
            Some(BreakKind::Gap {
                expected: self.next_seq,
            })
        } else if stored_prev != self.prev {
            Some(BreakKind::PreviousHashMismatch)
        } else {
            let hash = chain_hash(&self.prev, fields);
            if stored_hash != hash {
                Some(BreakKind::HashMismatch)
            } else {
                self.prev = hash;
                None
            }
        };
        match problem {
            Some(kind) => Err(ChainBreak {
                seq: fields.seq,
                kind,
            }),
            None => {
                self.next_seq += 1;
                Ok(())
            }
        }
    }

    /// Checks the recorded head (last seq and hash) against what was verified: this catches
    /// events removed from the end of the log.
    pub fn check_head(&self, head_seq: i64, head_hash: &[u8]) -> Result<u64, ChainBreak> {
        let last = self.next_seq - 1;
        if head_seq != last || (last > 0 && head_hash != self.prev) {
            return Err(ChainBreak {
                seq: last + 1,
                kind: BreakKind::Truncated { head_seq },
            });
        }
        Ok(u64::try_from(last).unwrap_or(0))
    }

    /// The hash of the last verified event.
    pub fn last_hash(&self) -> Hash {
        self.prev
    }
}

/// The first place where a log stops verifying.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, thiserror::Error)]
#[error("event {seq}: {kind}")]
pub struct ChainBreak {
    pub seq: i64,
    pub kind: BreakKind,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, thiserror::Error)]
#[serde(tag = "problem", rename_all = "snake_case")]
pub enum BreakKind {
    /// An event is missing or out of order.
    #[error("missing event: expected event {expected} here")]
    Gap { expected: i64 },
    /// The event does not point at the one before it (inserted or reordered).
    #[error("does not follow the event before it (inserted, reordered or its predecessor edited)")]
    PreviousHashMismatch,
    /// The event's content does not match its hash (edited).
    #[error("content does not match its hash (edited)")]
    HashMismatch,
    /// The log ends before the recorded head.
    #[error("log ends before its recorded head at event {head_seq} (events removed from the end)")]
    Truncated { head_seq: i64 },
}

#[cfg(test)]
mod tests {
    use super::*;

    fn log(n: i64) -> Vec<(i64, String, Hash, Hash)> {
        let mut prev = GENESIS;
        (1..=n)
            .map(|seq| {
                let payload = format!("{{\"n\":{seq}}}");
                let hash = chain_hash(
                    &prev,
                    &EventFields {
                        seq,
                        at: Time(seq),
                        deploy: Some(7),
                        kind: "k",
                        payload: &payload,
                    },
                );
                let row = (seq, payload, prev, hash);
                prev = hash;
                row
            })
            .collect()
    }

    fn verify(rows: &[(i64, String, Hash, Hash)]) -> Result<(), ChainBreak> {
        let mut verifier = ChainVerifier::default();
        for (seq, payload, prev, hash) in rows {
            let fields = EventFields {
                seq: *seq,
                at: Time(*seq),
                deploy: Some(7),
                kind: "k",
                payload,
            };
            verifier.check(&fields, prev, hash)?;
        }
        Ok(())
    }

    #[test]
    fn intact_chain_verifies() {
        assert_eq!(verify(&log(5)), Ok(()));
    }

    #[test]
    fn edited_payload_is_named_as_the_first_bad_event() {
        let mut rows = log(5);
        rows[2].1 = "{\"n\":99}".to_owned();
        assert_eq!(
            verify(&rows),
            Err(ChainBreak {
                seq: 3,
                kind: BreakKind::HashMismatch
            })
        );
    }

    #[test]
    fn removed_event_is_a_gap() {
        let mut rows = log(5);
        rows.remove(1);
        assert_eq!(
            verify(&rows).unwrap_err().kind,
            BreakKind::Gap { expected: 2 }
        );
    }
}
