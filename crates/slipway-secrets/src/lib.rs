//! Secrets of config versions: master keys and envelope encryption (`keyring`), and the vault
//! that seals versions for the store, opens them for targets, fingerprints secrets for
//! reviewers and rotates the master key.

mod keyring;
mod preflight;
mod vault;

pub use keyring::{KEY_BYTES, KeyError, Keyring, MasterKey};
pub use preflight::ConfigCheck;
pub use vault::{MASTER_KEY_VARIABLE, Vault, VaultError, digest, load_keyring};
