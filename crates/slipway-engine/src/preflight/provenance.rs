//! Provenance: the artifact carries a valid signature of a trusted CI key.
