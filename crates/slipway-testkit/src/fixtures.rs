//! Small values tests build deploys from.

use slipway_core::deploy::ReleaseRef;

/// Release `RC n`: version `1.n.0`, a made-up digest and config hash derived from `n`.
pub fn release(n: u32) -> ReleaseRef {
    ReleaseRef {
        label: format!("RC {n}"),
        version: format!("1.{n}.0"),
        artifact: format!("sha256:{n:064x}"),
        config: format!("config-{n}"),
        config_version: None,
    }
}
