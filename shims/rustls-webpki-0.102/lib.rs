//! rustls-webpki 0.103 under the 0.102 name, so rumqttc's error type resolves without `ring`.
//! rustls-rustcrypto also names `webpki::alg_id`, which 0.103 left to rustls-pki-types.

pub use pki_types::alg_id;
pub use webpki_0_103::*;
