//! Authenticated internal calls. Every gRPC server of a deployment (the RPC services and the
//! gateway's push port) refuses a call without a valid service credential, and every internal
//! client presents one, so reaching a port is not enough to act as `imAdmin` or to push frames to
//! users.
//!
//! The credential is `<unix seconds>.<hex HMAC-SHA256(service key, seconds)>` in the
//! `x-openim-service` metadata, accepted within [`MAX_SKEW_SECS`] of the server's clock. The
//! service key is derived from `share.token_key` (every service of a deployment has it; embedded
//! mode generates it in the data directory), so there is nothing more to configure. It is a
//! bearer credential: someone who can read the internal traffic can replay one for a few minutes.
//! Where that matters, run the internal network encrypted (a service mesh's mTLS); see
//! docs/security.md. Standalone's in-process calls need none.
//!
//! The gRPC health service stays open: probes carry no credential and it tells nothing.

use std::convert::Infallible;
use std::sync::Arc;
use std::task::{Context, Poll};

use hmac::{Hmac, Mac};
use sha2::Sha256;
use subtle::ConstantTimeEq;
use tonic::body::Body;

/// Metadata key (an HTTP/2 header) of the credential.
pub const HEADER: &str = "x-openim-service";
/// How far a credential's time may be from the server's clock.
pub const MAX_SKEW_SECS: i64 = 300;

/// The key credentials are made and checked with.
#[derive(Clone)]
pub struct ServiceKey(Arc<[u8; 32]>);

impl std::fmt::Debug for ServiceKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("ServiceKey(..)")
    }
}

impl ServiceKey {
    /// Derived from the token-signing key (never the key itself, so a credential says nothing
    /// about how tokens are signed).
    pub fn derive(token_key: &str) -> Self {
        let mut mac = Hmac::<Sha256>::new_from_slice(token_key.as_bytes()).expect("HMAC takes any key length");
        mac.update(b"openim internal rpc credential v1");
        Self(Arc::new(mac.finalize().into_bytes().into()))
    }

    fn mac(&self, secs: i64) -> [u8; 32] {
        let mut mac = Hmac::<Sha256>::new_from_slice(&self.0[..]).expect("HMAC takes any key length");
        mac.update(secs.to_string().as_bytes());
        mac.finalize().into_bytes().into()
    }

    /// A credential for the time `secs`.
    pub fn credential(&self, secs: i64) -> String {
        let mac: String = self.mac(secs).iter().map(|b| format!("{b:02x}")).collect();
        format!("{secs}.{mac}")
    }

    /// Whether `value` is a credential made with this key within [`MAX_SKEW_SECS`] of `now`.
    pub fn verify(&self, value: &str, now: i64) -> bool {
        let Some((secs, mac)) = value.split_once('.') else { return false };
        let Ok(secs) = secs.parse::<i64>() else { return false };
        if (now - secs).abs() > MAX_SKEW_SECS || mac.len() != 64 || !mac.is_ascii() {
            return false;
        }
        let Some(given) =
            (0..32).map(|i| u8::from_str_radix(&mac[2 * i..2 * i + 2], 16).ok()).collect::<Option<Vec<u8>>>()
        else {
            return false;
        };
        self.mac(secs).ct_eq(&given[..]).into()
    }
}

/// Adds a fresh credential to every request of a client channel.
pub fn sign(key: ServiceKey) -> impl Fn(http::Request<Body>) -> http::Request<Body> + Clone + Send + Sync + 'static {
    move |mut req: http::Request<Body>| {
        let now = crate::token::now_secs();
        if let Ok(v) = http::HeaderValue::from_str(&key.credential(now)) {
            req.headers_mut().insert(HEADER, v);
        }
        req
    }
}

/// A tower layer for a gRPC server that answers `UNAUTHENTICATED` to any call without a valid
/// credential (the health service excepted).
#[derive(Clone)]
pub struct RequireCredential {
    key: ServiceKey,
}

impl RequireCredential {
    pub fn new(key: ServiceKey) -> Self {
        Self { key }
    }
}

impl<S> tower::Layer<S> for RequireCredential {
    type Service = Checked<S>;
    fn layer(&self, inner: S) -> Checked<S> {
        Checked { key: self.key.clone(), inner }
    }
}

#[derive(Clone)]
pub struct Checked<S> {
    key: ServiceKey,
    inner: S,
}

impl<S> tower::Service<http::Request<Body>> for Checked<S>
where
    S: tower::Service<http::Request<Body>, Response = http::Response<Body>, Error = Infallible>,
    S::Future: Send + 'static,
{
    type Response = http::Response<Body>;
    type Error = Infallible;
    type Future = futures::future::Either<S::Future, std::future::Ready<Result<http::Response<Body>, Infallible>>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, req: http::Request<Body>) -> Self::Future {
        let open = req.uri().path().starts_with("/grpc.health.v1.Health/");
        let valid = || {
            req.headers()
                .get(HEADER)
                .and_then(|v| v.to_str().ok())
                .is_some_and(|v| self.key.verify(v, crate::token::now_secs()))
        };
        if open || valid() {
            return futures::future::Either::Left(self.inner.call(req));
        }
        tracing::warn!(path = %req.uri().path(), "Refused an internal call without a valid service credential.");
        let status = tonic::Status::unauthenticated("this port takes calls from the deployment's own services only");
        futures::future::Either::Right(std::future::ready(Ok(status.into_http())))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn credentials_verify_with_their_key_within_the_skew() {
        let key = ServiceKey::derive("a-token-key");
        let now = 1_800_000_000;
        let c = key.credential(now);
        assert!(key.verify(&c, now));
        assert!(key.verify(&c, now + MAX_SKEW_SECS));
        assert!(!key.verify(&c, now + MAX_SKEW_SECS + 1), "too old");
        assert!(!key.verify(&c, now - MAX_SKEW_SECS - 1), "from the future");
        assert!(!ServiceKey::derive("another-key").verify(&c, now), "another deployment's");
        let (secs, mac) = c.split_once('.').unwrap();
        assert!(!key.verify(&format!("{}.{mac}", secs.parse::<i64>().unwrap() + 1), now), "time changed");
        for bad in
            ["", ".", "x.y", "1800000000", &format!("{secs}.{}", "0".repeat(64)), &format!("{secs}.{}", &mac[..62])]
        {
            assert!(!key.verify(bad, now), "{bad:?}");
        }
        assert!(!c.contains("a-token-key"));
    }
}
