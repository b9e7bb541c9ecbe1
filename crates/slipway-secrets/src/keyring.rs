//! Master keys and envelope encryption with XChaCha20-Poly1305 (RustCrypto's
//! `chacha20poly1305`): each sealed value gets a fresh random data key; the data key is
//! encrypted ("wrapped") under the current master key. Rotation re-wraps data keys and leaves
//! the values' ciphertext as it is.

use std::path::Path;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use chacha20poly1305::aead::{Aead, Payload};
use chacha20poly1305::{KeyInit, XChaCha20Poly1305, XNonce};
use rand::RngCore;
use sha2::{Digest, Sha256};
use slipway_core::settings::Sealed;
use zeroize::Zeroizing;

/// Bytes of a master key and of a data key.
pub const KEY_BYTES: usize = 32;
const NONCE_BYTES: usize = 24;
/// Additional data bound to every wrapped data key.
const WRAP_CONTEXT: &[u8] = b"slipway data key v1";

/// Why a key could not be read or a sealed value not opened. Never carries key material.
#[derive(Debug, thiserror::Error)]
pub enum KeyError {
    #[error("{0}")]
    Invalid(String),
    #[error("cannot read the master key file {path}: {error}")]
    Unreadable { path: String, error: String },
    #[error(
        "the data key was wrapped by master key {key_id}, which is not configured (the current key is {current})"
    )]
    UnknownKey { key_id: String, current: String },
    #[error("the sealed value does not open: it was changed, or sealed for another place")]
    Tampered,
}

/// A 256-bit master key. Its bytes are wiped when it is dropped and never printed.
pub struct MasterKey {
    bytes: Zeroizing<[u8; KEY_BYTES]>,
    id: String,
}

impl std::fmt::Debug for MasterKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "MasterKey({})", self.id)
    }
}

impl MasterKey {
    fn from_bytes(bytes: [u8; KEY_BYTES]) -> MasterKey {
        let mut hasher = Sha256::new();
        hasher.update(b"slipway master key id v1\0");
        hasher.update(bytes);
        let id = format!("mk-{}", &hex::encode(hasher.finalize())[..12]);
        MasterKey {
            bytes: Zeroizing::new(bytes),
            id,
        }
    }

    /// A key written as base64 or hex of 32 bytes (surrounding whitespace ignored).
    pub fn parse(text: &str) -> Result<MasterKey, KeyError> {
        let text = Zeroizing::new(text.trim().to_owned());
        let decoded = if text.len() == 2 * KEY_BYTES {
            hex::decode(text.as_bytes()).ok()
        } else {
            STANDARD.decode(text.as_bytes()).ok()
        };
        let decoded = Zeroizing::new(decoded.ok_or_else(|| {
            KeyError::Invalid("a master key is 32 bytes written as base64 or hex".to_owned())
        })?);
        let bytes: [u8; KEY_BYTES] = decoded.as_slice().try_into().map_err(|_| {
            KeyError::Invalid(format!(
                "a master key is {KEY_BYTES} bytes; this one is {}",
                decoded.len()
            ))
        })?;
        Ok(MasterKey::from_bytes(bytes))
    }

    /// Reads a key file written by [`MasterKey::generate`].
    pub fn read(path: &Path) -> Result<MasterKey, KeyError> {
        let text = std::fs::read_to_string(path).map_err(|e| KeyError::Unreadable {
            path: path.display().to_string(),
            error: e.to_string(),
        })?;
        MasterKey::parse(&Zeroizing::new(text)).map_err(|e| match e {
            KeyError::Invalid(message) => {
                KeyError::Invalid(format!("{}: {message}", path.display()))
            }
            other => other,
        })
    }

    /// A new random key and its base64 text (for a key file).
    pub fn generate() -> (MasterKey, Zeroizing<String>) {
        let mut bytes = [0u8; KEY_BYTES];
        rand::rng().fill_bytes(&mut bytes);
        let text = Zeroizing::new(STANDARD.encode(bytes));
        (MasterKey::from_bytes(bytes), text)
    }

    /// A short public name of the key (`mk-` and 12 hex digits of a hash of it).
    pub fn id(&self) -> &str {
        &self.id
    }

    fn cipher(&self) -> XChaCha20Poly1305 {
        XChaCha20Poly1305::new(self.bytes.as_ref().into())
    }
}

fn random<const N: usize>() -> [u8; N] {
    let mut bytes = [0u8; N];
    rand::rng().fill_bytes(&mut bytes);
    bytes
}

/// The current master key, which seals, and the previous ones, which still open.
#[derive(Debug)]
pub struct Keyring {
    current: MasterKey,
    previous: Vec<MasterKey>,
}

impl Keyring {
    pub fn new(current: MasterKey, previous: Vec<MasterKey>) -> Keyring {
        Keyring { current, previous }
    }

    /// The id of the key new values are sealed under.
    pub fn current_id(&self) -> &str {
        self.current.id()
    }

    fn key(&self, id: &str) -> Result<&MasterKey, KeyError> {
        std::iter::once(&self.current)
            .chain(&self.previous)
            .find(|key| key.id() == id)
            .ok_or_else(|| KeyError::UnknownKey {
                key_id: id.to_owned(),
                current: self.current.id().to_owned(),
            })
    }

    /// Encrypts `plaintext` under a fresh data key, bound to `context` (which must be given
    /// again to open it), and wraps the data key under the current master key.
    pub fn seal(&self, context: &[u8], plaintext: &[u8]) -> Sealed {
        let data_key = Zeroizing::new(random::<KEY_BYTES>());
        let nonce = random::<NONCE_BYTES>();
        let cipher = XChaCha20Poly1305::new(data_key.as_ref().into());
        let ciphertext = cipher
            .encrypt(
                XNonce::from_slice(&nonce),
                Payload {
                    msg: plaintext,
                    aad: context,
                },
            )
            .expect("XChaCha20-Poly1305 encrypts any message shorter than 256 GiB");
        Sealed {
            key_id: self.current.id().to_owned(),
            wrapped_key: wrap(&self.current, &data_key),
            nonce: nonce.to_vec(),
            ciphertext,
        }
    }

    /// Decrypts what [`Keyring::seal`] sealed for `context`.
    pub fn open(&self, context: &[u8], sealed: &Sealed) -> Result<Zeroizing<Vec<u8>>, KeyError> {
        let master = self.key(&sealed.key_id)?;
        let data_key = unwrap(master, &sealed.wrapped_key)?;
        if sealed.nonce.len() != NONCE_BYTES {
            return Err(KeyError::Tampered);
        }
        let cipher = XChaCha20Poly1305::new(data_key.as_ref().into());
        cipher
            .decrypt(
                XNonce::from_slice(&sealed.nonce),
                Payload {
                    msg: &sealed.ciphertext,
                    aad: context,
                },
            )
            .map(Zeroizing::new)
            .map_err(|_| KeyError::Tampered)
    }

    /// `sealed` with its data key wrapped under the current master key instead, or `None`
    /// when it already is. The values' nonce and ciphertext are kept as they are.
    pub fn rewrap(&self, sealed: &Sealed) -> Result<Option<Sealed>, KeyError> {
        if sealed.key_id == self.current.id() {
            return Ok(None);
        }
        let data_key = unwrap(self.key(&sealed.key_id)?, &sealed.wrapped_key)?;
        Ok(Some(Sealed {
            key_id: self.current.id().to_owned(),
            wrapped_key: wrap(&self.current, &data_key),
            ..sealed.clone()
        }))
    }
}

fn wrap_context(master: &MasterKey) -> Vec<u8> {
    [WRAP_CONTEXT, b"\0", master.id().as_bytes()].concat()
}

/// The data key encrypted under `master`: nonce, then ciphertext and tag.
fn wrap(master: &MasterKey, data_key: &[u8; KEY_BYTES]) -> Vec<u8> {
    let nonce = random::<NONCE_BYTES>();
    let aad = wrap_context(master);
    let wrapped = master
        .cipher()
        .encrypt(
            XNonce::from_slice(&nonce),
            Payload {
                msg: data_key,
                aad: &aad,
            },
        )
        .expect("a 32-byte key always encrypts");
    [nonce.as_slice(), &wrapped].concat()
}

fn unwrap(master: &MasterKey, wrapped: &[u8]) -> Result<Zeroizing<[u8; KEY_BYTES]>, KeyError> {
    if wrapped.len() <= NONCE_BYTES {
        return Err(KeyError::Tampered);
    }
    let (nonce, ciphertext) = wrapped.split_at(NONCE_BYTES);
    let aad = wrap_context(master);
    let key = Zeroizing::new(
        master
            .cipher()
            .decrypt(
                XNonce::from_slice(nonce),
                Payload {
                    msg: ciphertext,
                    aad: &aad,
                },
            )
            .map_err(|_| KeyError::Tampered)?,
    );
    let bytes: [u8; KEY_BYTES] = key.as_slice().try_into().map_err(|_| KeyError::Tampered)?;
    Ok(Zeroizing::new(bytes))
}
