//! HMAC-SHA256 signatures: slipway's own on webhook payloads, and Slack's on the requests its
//! slash commands and buttons send to slipway. Comparisons are constant-time (`hmac`'s
//! `verify_slice`).

use hmac::{Hmac, Mac};
use sha2::Sha256;

type HmacSha256 = Hmac<Sha256>;

/// The header carrying a webhook's signature: `sha256=HEX`.
pub const SIGNATURE_HEADER: &str = "X-Slipway-Signature";
/// The header carrying the Unix time (seconds) the signature covers.
pub const TIMESTAMP_HEADER: &str = "X-Slipway-Timestamp";
/// The header naming the delivery: the same on every attempt, for receivers to drop repeats.
pub const DELIVERY_HEADER: &str = "X-Slipway-Delivery";
/// The header counting attempts (1 for the first).
pub const ATTEMPT_HEADER: &str = "X-Slipway-Attempt";

fn mac(secret: &[u8]) -> HmacSha256 {
    // HMAC takes keys of any length.
    HmacSha256::new_from_slice(secret).expect("HMAC accepts keys of any length")
}

/// `sha256=HEX` of HMAC-SHA256(secret, `TIMESTAMP.BODY`): the value of [`SIGNATURE_HEADER`].
pub fn sign_webhook(secret: &[u8], timestamp: i64, body: &[u8]) -> String {
    let mut mac = mac(secret);
    mac.update(timestamp.to_string().as_bytes());
    mac.update(b".");
    mac.update(body);
    format!("sha256={}", hex::encode(mac.finalize().into_bytes()))
}

/// Whether `signature` (`sha256=HEX`) is slipway's signature of `body` sent at `timestamp`.
pub fn verify_webhook(secret: &[u8], timestamp: &str, body: &[u8], signature: &str) -> bool {
    let Some(Ok(given)) = signature.strip_prefix("sha256=").map(hex::decode) else {
        return false;
    };
    let mut mac = mac(secret);
    mac.update(timestamp.as_bytes());
    mac.update(b".");
    mac.update(body);
    mac.verify_slice(&given).is_ok()
}

/// Whether `signature` (`v0=HEX`, Slack's `X-Slack-Signature`) is HMAC-SHA256(secret,
/// `v0:TIMESTAMP:BODY`) of the raw request body.
pub fn verify_slack(secret: &[u8], timestamp: &str, body: &[u8], signature: &str) -> bool {
    let Some(Ok(given)) = signature.strip_prefix("v0=").map(hex::decode) else {
        return false;
    };
    let mut mac = mac(secret);
    mac.update(b"v0:");
    mac.update(timestamp.as_bytes());
    mac.update(b":");
    mac.update(body);
    mac.verify_slice(&given).is_ok()
}

/// Slack's signature of `body` at `timestamp`: what a test (or a proxy in front of slipway)
/// sends as `X-Slack-Signature`.
pub fn sign_slack(secret: &[u8], timestamp: &str, body: &[u8]) -> String {
    let mut mac = mac(secret);
    mac.update(b"v0:");
    mac.update(timestamp.as_bytes());
    mac.update(b":");
    mac.update(body);
    format!("v0={}", hex::encode(mac.finalize().into_bytes()))
}
