//! What a failed HTTP request says, for the sources, probes and markers that make them.

use std::error::Error;

/// Whether the connection was refused, anywhere in the error's chain of causes.
pub(crate) fn is_refused(error: &(dyn Error + 'static)) -> bool {
    causes(error).any(|cause| {
        cause
            .downcast_ref::<std::io::Error>()
            .is_some_and(|io| io.kind() == std::io::ErrorKind::ConnectionRefused)
    })
}

/// The innermost cause (`Connection refused (os error 111)`) rather than reqwest's own message,
/// which names the whole URL; `None` when the error has no cause.
pub(crate) fn root_cause<'e>(
    error: &'e (dyn Error + 'static),
) -> Option<&'e (dyn Error + 'static)> {
    causes(error).last()
}

/// The error's causes, outermost first (not the error itself).
fn causes<'e>(error: &'e (dyn Error + 'static)) -> impl Iterator<Item = &'e (dyn Error + 'static)> {
    std::iter::successors(error.source(), |&cause| cause.source())
}
