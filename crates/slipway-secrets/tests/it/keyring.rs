use slipway_secrets::{KeyError, Keyring, MasterKey};

#[test]
fn a_sealed_value_opens_only_with_its_context_and_key() {
    let (key, _) = MasterKey::generate();
    let keyring = Keyring::new(key, Vec::new());
    let sealed = keyring.seal(b"idp/prod", b"hunter2");
    assert!(!sealed.ciphertext.windows(7).any(|w| w == b"hunter2"));
    assert_eq!(
        keyring.open(b"idp/prod", &sealed).unwrap().as_slice(),
        b"hunter2"
    );
    assert!(matches!(
        keyring.open(b"idp/staging", &sealed),
        Err(KeyError::Tampered)
    ));
    let (other, _) = MasterKey::generate();
    let stranger = Keyring::new(other, Vec::new());
    assert!(matches!(
        stranger.open(b"idp/prod", &sealed),
        Err(KeyError::UnknownKey { .. })
    ));
    let mut flipped = sealed.clone();
    flipped.ciphertext[0] ^= 1;
    assert!(matches!(
        keyring.open(b"idp/prod", &flipped),
        Err(KeyError::Tampered)
    ));
}

#[test]
fn rotation_rewraps_the_data_key_and_keeps_the_ciphertext() {
    let (old, old_text) = MasterKey::generate();
    let sealed = Keyring::new(old, Vec::new()).seal(b"c", b"value");
    let (new, new_text) = MasterKey::generate();
    let both = Keyring::new(new, vec![MasterKey::parse(&old_text).unwrap()]);
    let rewrapped = both.rewrap(&sealed).unwrap().expect("under the old key");
    assert_eq!(rewrapped.ciphertext, sealed.ciphertext);
    assert_eq!(rewrapped.nonce, sealed.nonce);
    assert_ne!(rewrapped.key_id, sealed.key_id);
    assert!(both.rewrap(&rewrapped).unwrap().is_none());
    let new_only = Keyring::new(MasterKey::parse(&new_text).unwrap(), Vec::new());
    assert_eq!(
        new_only.open(b"c", &rewrapped).unwrap().as_slice(),
        b"value"
    );
    assert!(matches!(
        new_only.open(b"c", &sealed),
        Err(KeyError::UnknownKey { .. })
    ));
}

#[test]
fn master_keys_parse_from_base64_or_hex_and_refuse_other_lengths() {
    let (key, text) = MasterKey::generate();
    assert_eq!(
        MasterKey::parse(&format!("  {}\n", *text)).unwrap().id(),
        key.id()
    );
    let hex = "00".repeat(32);
    assert!(MasterKey::parse(&hex).is_ok());
    let short = MasterKey::parse("c2hvcnQ=").unwrap_err().to_string();
    assert!(short.contains("32 bytes"), "{short}");
    assert!(!format!("{key:?}").contains(&*text));
}
