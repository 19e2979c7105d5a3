//! HMAC-SHA256 signatures on the URLs the API serves for the embedded store.

use hmac::{Hmac, Mac as _};
use sha2::Sha256;

type HmacSha256 = Hmac<Sha256>;

/// Signs and checks URL fields with a key derived from a server secret.
#[derive(Clone)]
pub struct UrlSigner {
    key: [u8; 32],
}

impl std::fmt::Debug for UrlSigner {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("UrlSigner(..)")
    }
}

impl UrlSigner {
    /// A signer whose key is derived from `secret` for `purpose`, so that one secret (the token
    /// key) can serve several uses without a signature of one being valid for another.
    pub fn derive(secret: &[u8], purpose: &str) -> Self {
        let mut mac = HmacSha256::new_from_slice(secret).expect("HMAC takes any key length");
        mac.update(b"openim-object/");
        mac.update(purpose.as_bytes());
        Self { key: mac.finalize().into_bytes().into() }
    }

    fn mac(&self, fields: &[&str]) -> HmacSha256 {
        let mut mac = HmacSha256::new_from_slice(&self.key).expect("HMAC takes any key length");
        for f in fields {
            // Length-prefixed, so that no two field lists sign the same bytes.
            mac.update(&(f.len() as u64).to_be_bytes());
            mac.update(f.as_bytes());
        }
        mac
    }

    /// The signature of `fields`, as hex.
    pub fn sign(&self, fields: &[&str]) -> String {
        hex::encode(self.mac(fields).finalize().into_bytes())
    }

    /// Whether `signature` (hex) signs `fields`; compared in constant time.
    pub fn verify(&self, fields: &[&str], signature: &str) -> bool {
        match hex::decode(signature) {
            Ok(sig) => self.mac(fields).verify_slice(&sig).is_ok(),
            Err(_) => false,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signatures_bind_every_field_and_the_purpose() {
        let s = UrlSigner::derive(b"secret", "urls");
        let sig = s.sign(&["PUT", "a/b", "10"]);
        assert!(s.verify(&["PUT", "a/b", "10"], &sig));
        assert!(!s.verify(&["PUT", "a/b", "11"], &sig));
        assert!(!s.verify(&["PUT", "a/b1", "0"], &sig), "fields cannot be shifted into one another");
        assert!(!s.verify(&["PUT", "a/b", "10"], "zz"));
        assert!(!UrlSigner::derive(b"secret", "ids").verify(&["PUT", "a/b", "10"], &sig));
        assert!(!UrlSigner::derive(b"other", "urls").verify(&["PUT", "a/b", "10"], &sig));
    }
}
