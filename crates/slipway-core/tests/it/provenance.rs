//! Provenance: statements CI signs, DSSE envelopes and their verification against trusted keys
//! — each way an attestation can be wrong fails with its own error — and the `[provenance]`
//! part of `slipway.toml`.

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use slipway_core::config::{ConfigErrors, ProvenanceRequirement, parse_config};
use slipway_core::provenance::{
    BuildFacts, Envelope, EnvelopeSignature, PAYLOAD_TYPE, PrivateKey, ProvenanceError, PublicKey,
    TrustedKey, Verified, pae, sign, sign_payload, statement, verify, verify_envelope,
};

const DIGEST: &str = "sha256:3f2a9c1d00000000000000000000000000000000000000000000000000000001";

fn key(byte: u8) -> PrivateKey {
    PrivateKey::from_seed([byte; 32])
}

fn trusted(name: &str, key: &PrivateKey) -> TrustedKey {
    TrustedKey {
        name: name.to_owned(),
        public_key: key.public_key(),
    }
}

fn facts(digest: &str) -> BuildFacts {
    BuildFacts {
        service: "idp".to_owned(),
        version: "1.4.0".to_owned(),
        digest: digest.to_owned(),
        commit: "3F2A9C1".to_owned(),
        build_id: "4812".to_owned(),
        builder: "https://ci.example.com/pipelines/idp".to_owned(),
    }
}

/// The envelope CI makes for [`DIGEST`], signed with `signer`, as JSON text.
fn envelope(signer: &PrivateKey) -> String {
    sign(&statement(&facts(DIGEST)).unwrap(), signer).to_json()
}

fn hex_bytes(hex: &str) -> [u8; 32] {
    let bytes = (0..hex.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&hex[i..i + 2], 16).unwrap())
        .collect::<Vec<_>>();
    bytes.try_into().unwrap()
}

#[test]
fn envelope_signed_by_a_trusted_key_verifies_with_its_facts() {
    let ci = key(1);
    let keys = [trusted("other", &key(2)), trusted("ci", &ci)];

    let verified = verify(&envelope(&ci), &keys, DIGEST).unwrap();

    assert_eq!(
        verified,
        Verified {
            key: "ci".to_owned(),
            key_id: ci.public_key().key_id(),
            digest: DIGEST.to_owned(),
            commit: "3f2a9c1".to_owned(),
            build_id: "4812".to_owned(),
            builder: "https://ci.example.com/pipelines/idp".to_owned(),
        }
    );
}

#[test]
fn statement_is_in_toto_v1_with_slsa_provenance_v1() {
    let statement = statement(&facts(DIGEST)).unwrap();
    let json = serde_json::to_value(&statement).unwrap();

    assert_eq!(json["_type"], "https://in-toto.io/Statement/v1");
    assert_eq!(
        json["subject"],
        serde_json::json!([{
            "name": "idp@1.4.0",
            "digest": { "sha256": DIGEST.strip_prefix("sha256:").unwrap() }
        }])
    );
    assert_eq!(json["predicateType"], "https://slsa.dev/provenance/v1");
    let predicate = &json["predicate"];
    assert_eq!(
        predicate["buildDefinition"]["resolvedDependencies"][0]["digest"]["gitCommit"],
        "3f2a9c1"
    );
    assert_eq!(
        predicate["buildDefinition"]["externalParameters"],
        serde_json::json!({ "service": "idp", "version": "1.4.0" })
    );
    assert_eq!(
        predicate["runDetails"]["builder"]["id"],
        "https://ci.example.com/pipelines/idp"
    );
    assert_eq!(predicate["runDetails"]["metadata"]["invocationId"], "4812");

    let envelope = Envelope::parse(&envelope(&key(1))).unwrap();
    assert_eq!(envelope.payload_type, "application/vnd.in-toto+json");
    assert_eq!(envelope.signatures.len(), 1);
    assert_eq!(envelope.signatures[0].keyid, key(1).public_key().key_id());
}

#[test]
fn statement_needs_a_digest_and_every_fact() {
    let bad_digest = statement(&facts("sha256:xyz")).unwrap_err();
    assert!(matches!(bad_digest, ProvenanceError::InvalidFacts(_)));
    let no_builder = statement(&BuildFacts {
        builder: " ".to_owned(),
        ..facts(DIGEST)
    })
    .unwrap_err();
    assert_eq!(no_builder.to_string(), "the builder must not be empty");
    let bad_commit = statement(&BuildFacts {
        commit: "main".to_owned(),
        ..facts(DIGEST)
    })
    .unwrap_err();
    assert_eq!(
        bad_commit.to_string(),
        "commit `main` is not a hexadecimal commit id"
    );
}

#[test]
fn tampered_payload_fails_as_an_invalid_signature() {
    let ci = key(1);
    let mut tampered = Envelope::parse(&envelope(&ci)).unwrap();
    let body = STANDARD.decode(&tampered.payload).unwrap();
    let body = String::from_utf8(body).unwrap().replace("4812", "4813");
    tampered.payload = STANDARD.encode(body);

    let error = verify(&tampered.to_json(), &[trusted("ci", &ci)], DIGEST).unwrap_err();

    assert_eq!(
        error,
        ProvenanceError::SignatureInvalid { key: "ci".into() }
    );
    assert_eq!(
        error.to_string(),
        "the signature by key `ci` does not match the envelope's payload: it was altered after \
         signing"
    );
}

#[test]
fn signature_by_another_key_claiming_a_trusted_key_id_fails_as_invalid() {
    let ci = key(1);
    let mut forged = Envelope::parse(&envelope(&key(9))).unwrap();
    forged.signatures[0].keyid = ci.public_key().key_id();

    let error = verify(&forged.to_json(), &[trusted("ci", &ci)], DIGEST).unwrap_err();

    assert_eq!(
        error,
        ProvenanceError::SignatureInvalid { key: "ci".into() }
    );
}

#[test]
fn envelope_signed_by_an_untrusted_key_fails_naming_the_trusted_keys() {
    let stranger = key(9);

    let error = verify(
        &envelope(&stranger),
        &[trusted("ci", &key(1)), trusted("ci-backup", &key(2))],
        DIGEST,
    )
    .unwrap_err();

    let ProvenanceError::Untrusted { key_ids, trusted } = &error else {
        panic!("expected Untrusted, got {error:?}");
    };
    assert_eq!(key_ids, &[stranger.public_key().key_id()]);
    assert_eq!(trusted, &["ci", "ci-backup"]);
    let short: String = stranger.public_key().key_id().chars().take(12).collect();
    assert_eq!(
        error.to_string(),
        format!("no signature of the envelope is by a trusted key (signed by key id {short})")
    );
    assert_eq!(
        error.hint(),
        "sign with a key [provenance] trusts (ci, ci-backup), or add this key's public key there"
    );
}

#[test]
fn envelope_without_signatures_is_untrusted() {
    let mut unsigned = Envelope::parse(&envelope(&key(1))).unwrap();
    unsigned.signatures.clear();

    let error = verify(&unsigned.to_json(), &[trusted("ci", &key(1))], DIGEST).unwrap_err();

    assert_eq!(error.to_string(), "the envelope has no signature");
}

#[test]
fn statement_about_another_artifact_fails_as_a_subject_mismatch() {
    let ci = key(1);
    let other = "sha256:0000000000000000000000000000000000000000000000000000000000000bad";

    let error = verify(&envelope(&ci), &[trusted("ci", &ci)], other).unwrap_err();

    assert_eq!(
        error,
        ProvenanceError::SubjectMismatch {
            expected: other.to_owned(),
            found: vec![DIGEST.to_owned()],
        }
    );
}

#[test]
fn wrong_payload_type_fails_before_anything_else() {
    let ci = key(1);
    let mut other = Envelope::parse(&envelope(&ci)).unwrap();
    other.payload_type = "application/json".to_owned();

    let error = verify(&other.to_json(), &[trusted("ci", &ci)], DIGEST).unwrap_err();

    assert_eq!(
        error,
        ProvenanceError::WrongPayloadType {
            found: "application/json".into()
        }
    );
}

#[test]
fn text_that_is_not_an_envelope_fails_as_not_json() {
    let keys = [trusted("ci", &key(1))];
    for text in ["", "not json", "{\"payload\": \"x\"}", "[1, 2]"] {
        let error = verify(text, &keys, DIGEST).unwrap_err();
        assert!(
            matches!(error, ProvenanceError::NotJson(_)),
            "{text:?} gave {error:?}"
        );
    }
}

#[test]
fn payload_or_signature_that_is_not_base64_fails_as_bad_base64() {
    let ci = key(1);
    let keys = [trusted("ci", &ci)];
    let good = Envelope::parse(&envelope(&ci)).unwrap();

    let mut payload = good.clone();
    payload.payload = "not base64!".to_owned();
    let mut signature = good;
    signature.signatures[0].sig = "%%%".to_owned();

    assert_eq!(
        verify(&payload.to_json(), &keys, DIGEST).unwrap_err(),
        ProvenanceError::BadBase64 { what: "payload" }
    );
    assert_eq!(
        verify(&signature.to_json(), &keys, DIGEST).unwrap_err(),
        ProvenanceError::BadBase64 { what: "signature" }
    );
}

#[test]
fn signed_payload_that_is_not_slsa_provenance_is_refused() {
    let ci = key(1);
    let body = format!(
        r#"{{"_type":"https://in-toto.io/Statement/v1","subject":[{{"name":"x","digest":{{"sha256":"{}"}}}}],"predicateType":"https://example.com/other","predicate":{{}}}}"#,
        DIGEST.strip_prefix("sha256:").unwrap()
    );
    let other = sign_payload(PAYLOAD_TYPE, body.as_bytes(), &ci);

    let error = verify(&other.to_json(), &[trusted("ci", &ci)], DIGEST).unwrap_err();

    assert!(
        matches!(&error, ProvenanceError::NotAStatement(why) if why.contains("predicateType")),
        "{error:?}"
    );
}

#[test]
fn pae_matches_the_dsse_specification_example() {
    assert_eq!(
        pae("http://example.com/HelloWorld", b"hello world"),
        b"DSSEv1 29 http://example.com/HelloWorld 11 hello world"
    );
    // Lengths count bytes, not characters; an empty body still ends with a space.
    assert_eq!(pae("é", b""), "DSSEv1 2 é 0 ".as_bytes());
}

/// The DSSE test vectors' ed25519 key "A" (RFC 8032's first test key) and their
/// `single-signature` and `url-safe-base64` envelopes.
#[test]
fn dsse_ed25519_test_vectors_verify_and_signing_reproduces_them() {
    let a = PrivateKey::from_seed(hex_bytes(
        "9d61b19deffd5a60ba844af492ec2cc44449c5697b326919703bac031cae7f60",
    ));
    let public = a.public_key().to_string();
    assert_eq!(
        public,
        format!(
            "ed25519:{}",
            STANDARD.encode(hex_bytes(
                "d75a980182b10ab7d54bfed3c964073a0ee172f3daa62325af021a68f707511a"
            ))
        )
    );
    let keys = [trusted("A", &a)];
    let single = Envelope {
        payload_type: PAYLOAD_TYPE.to_owned(),
        payload: "eyJfdHlwZSI6Imh0dHBzOi8vaW4tdG90by5pby9TdGF0ZW1lbnQvdjEifQ==".to_owned(),
        signatures: vec![EnvelopeSignature {
            keyid: "A".to_owned(),
            sig: "2WAfaHm5jluo0w+0rk8uVkluELJYWjSmU9x7EUzx+AyteDGJ4/nqyJXfmAUVFIAoQafWm7AxBZNw5M9ixNHiCA=="
                .to_owned(),
        }],
    };
    let (signer, body) = verify_envelope(&single, &keys).unwrap();
    assert_eq!(signer.name, "A");
    assert_eq!(body, br#"{"_type":"https://in-toto.io/Statement/v1"}"#);
    // ed25519 is deterministic: signing the same body gives the vector's signature.
    assert_eq!(
        sign_payload(PAYLOAD_TYPE, &body, &a).signatures[0].sig,
        single.signatures[0].sig
    );

    let url_safe = Envelope {
        payload_type: PAYLOAD_TYPE.to_owned(),
        payload: "-_-_Pj8=".to_owned(),
        signatures: vec![EnvelopeSignature {
            keyid: "A".to_owned(),
            sig: "P-_KHICeR7tI6S_YyejJTRtrXhcQyQ2LYPaL8h90KjC9qN8HU_svOQ6TuDOT1HIrsGW886DbWNWcCmX5twLrAw=="
                .to_owned(),
        }],
    };
    let (_, body) = verify_envelope(&url_safe, &keys).unwrap();
    assert_eq!(body, [0xfb, 0xff, 0xbf, 0x3e, 0x3f]);
}

#[test]
fn keys_round_trip_through_their_text_forms() {
    let ci = key(7);
    let pem = ci.to_pem();
    assert!(pem.starts_with("-----BEGIN PRIVATE KEY-----\n"), "{pem}");
    let read = PrivateKey::from_pem(&pem).unwrap();
    assert_eq!(read.public_key(), ci.public_key());
    assert!(!format!("{read:?}").contains(&pem));

    let text = ci.public_key().to_string();
    assert!(text.starts_with("ed25519:"));
    assert_eq!(PublicKey::parse(&text).unwrap(), ci.public_key());
    let id = ci.public_key().key_id();
    assert_eq!(id.len(), 64);
    assert!(
        id.bytes()
            .all(|b| b.is_ascii_hexdigit() && !b.is_ascii_uppercase())
    );

    assert!(matches!(
        PrivateKey::from_pem("-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n"),
        Err(ProvenanceError::InvalidPrivateKey(_))
    ));
    for bad in ["ssh-ed25519 AAAA", "ed25519:!!", "ed25519:AAAA"] {
        assert!(
            matches!(
                PublicKey::parse(bad),
                Err(ProvenanceError::InvalidPublicKey { .. })
            ),
            "{bad}"
        );
    }
}

// --- `slipway.toml`

const SERVICE: &str = "[[service]]\nname = \"idp\"\nstart = \"bin/server\"\n";

fn config_errors(text: &str) -> ConfigErrors {
    match parse_config("slipway.toml", text) {
        Ok(config) => panic!("expected errors, parsed:\n{config:#?}"),
        Err(errors) => errors,
    }
}

#[test]
fn trusted_keys_are_read_and_protected_environments_require_provenance() {
    let ci = key(1).public_key();
    let text = format!(
        "{SERVICE}[provenance]\nkeys = [{{ name = \"ci\", public_key = \"{ci}\" }}]\n\
         [environment.dev]\n[environment.staging]\nprovenance = \"required\"\n\
         [environment.prod]\nprotected = true\n[environment.lab]\nprotected = true\n\
         provenance = \"off\"\n"
    );

    let config = parse_config("slipway.toml", &text).unwrap();

    assert_eq!(
        config.provenance.keys,
        [TrustedKey {
            name: "ci".to_owned(),
            public_key: ci
        }]
    );
    let requirement = |name: &str| config.environment(name).unwrap().policy.provenance;
    assert_eq!(requirement("dev"), ProvenanceRequirement::Off);
    assert_eq!(requirement("staging"), ProvenanceRequirement::Required);
    assert_eq!(requirement("prod"), ProvenanceRequirement::Required);
    assert_eq!(requirement("lab"), ProvenanceRequirement::Off);
}

#[test]
fn protected_environment_without_trusted_keys_is_a_config_error() {
    let text = format!("{SERVICE}[environment.prod]\nprotected = true\n");

    let errors = config_errors(&text);

    assert_eq!(
        errors.to_string(),
        "error: slipway.toml:5:1: [environment.prod] needs a CI key to check artifacts against, \
         but [provenance] trusts none: it is protected, which requires provenance unless it says \
         provenance = \"off\"\n  hint: add [provenance] with keys = [{ name = \"ci\", public_key = \
         \"ed25519:…\" }] (`slipway artifact keygen --out ci.key` prints the entry), or write \
         provenance = \"off\" in [environment.prod] to deploy unsigned artifacts there"
    );
    // Saying so is enough to deploy unsigned artifacts.
    let off = format!("{SERVICE}[environment.prod]\nprotected = true\nprovenance = \"off\"\n");
    assert!(parse_config("slipway.toml", &off).is_ok());
}

#[test]
fn provenance_mistakes_are_reported_with_their_place() {
    let ci = key(1).public_key();
    let text = format!(
        "{SERVICE}[provenance]\nkeys = [\n  {{ name = \"ci\", public_key = \"{ci}\" }},\n  \
         {{ name = \"ci\", public_key = \"ed25519:AAAA\" }},\n  \
         {{ name = \"backup\", public_key = \"{ci}\" }},\n  {{ nam = \"x\" }},\n]\n\
         [environment.prod]\nprovenance = \"yes\"\n[environment.dev]\nprovenance = true\n"
    );

    let errors = config_errors(&text);

    let lines: Vec<String> = errors
        .iter()
        .map(|e| format!("{}:{} {}", e.line, e.column, e.message))
        .collect();
    assert_eq!(
        lines,
        [
            "7:12 trusted key `ci` is defined twice",
            "7:31 `public_key` in key #2 of [provenance]: `ed25519:AAAA` is not an ed25519 \
             public key: 3 bytes, not 32",
            "8:35 `public_key` in key #3 of [provenance]: the same key is already trusted as `ci`",
            "9:3 missing `name` in key #4 of [provenance]",
            "9:3 missing `public_key` in key #4 of [provenance]",
            "9:5 unknown key `nam` in key #4 of [provenance]",
            "12:14 `provenance` in [environment.prod]: `yes` is neither \"required\" nor \"off\"",
            "14:14 `provenance` in [environment.dev]: expected a string, found boolean",
        ]
    );
}
