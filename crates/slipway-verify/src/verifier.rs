//! Runs a plan's checks. (Being written.)

/// Runs the checks of a verification.
pub struct Verifier;
