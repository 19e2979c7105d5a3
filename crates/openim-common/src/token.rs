//! Tokens: HS256 JWTs carrying OpenIM's claims (`UserID`, `PlatformID`, `exp`, `nbf`, `iat`), which
//! real clients read back (the Python SDK's CLI takes the user and platform from them). Whether a
//! token is still current (not kicked, not logged out) is the token store's business, not the JWT's.

use std::time::{SystemTime, UNIX_EPOCH};

use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation, errors::ErrorKind};
use serde::{Deserialize, Serialize};

use crate::error::{ErrCode, ImError};

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Claims {
    #[serde(rename = "UserID")]
    pub user_id: String,
    #[serde(rename = "PlatformID")]
    pub platform_id: i32,
    pub exp: i64,
    pub nbf: i64,
    pub iat: i64,
}

/// Signs and verifies tokens with the shared secret.
#[derive(Clone)]
pub struct TokenSigner {
    encoding: EncodingKey,
    decoding: DecodingKey,
    validation: Validation,
}

impl std::fmt::Debug for TokenSigner {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("TokenSigner(..)")
    }
}

pub fn now_secs() -> i64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_secs() as i64).unwrap_or(0)
}

pub fn now_millis() -> i64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_millis() as i64).unwrap_or(0)
}

impl TokenSigner {
    pub fn new(secret: &str) -> Self {
        let mut validation = Validation::new(Algorithm::HS256);
        validation.leeway = 0;
        validation.validate_nbf = true;
        validation.set_required_spec_claims(&["exp"]);
        Self {
            encoding: EncodingKey::from_secret(secret.as_bytes()),
            decoding: DecodingKey::from_secret(secret.as_bytes()),
            validation,
        }
    }

    /// A token for `user_id` on `platform_id`, valid for `ttl_secs` from now.
    pub fn issue(&self, user_id: &str, platform_id: i32, ttl_secs: i64) -> Result<(String, Claims), ImError> {
        let now = now_secs();
        let claims = Claims {
            user_id: user_id.to_owned(),
            platform_id,
            exp: now + ttl_secs,
            // A little slack so a token used at once on another host with a clock a second behind works.
            nbf: now - 300,
            iat: now,
        };
        let token = jsonwebtoken::encode(&Header::new(Algorithm::HS256), &claims, &self.encoding)
            .map_err(|e| ImError::internal(format!("sign token: {e}")))?;
        Ok((token, claims))
    }

    /// Verifies signature and time claims, mapping failures to OpenIM's token error codes.
    pub fn verify(&self, token: &str) -> Result<Claims, ImError> {
        match jsonwebtoken::decode::<Claims>(token, &self.decoding, &self.validation) {
            Ok(data) => Ok(data.claims),
            Err(e) => {
                let code = match e.kind() {
                    ErrorKind::ExpiredSignature => ErrCode::TOKEN_EXPIRED,
                    ErrorKind::ImmatureSignature => ErrCode::TOKEN_NOT_VALID_YET,
                    ErrorKind::InvalidToken | ErrorKind::Base64(_) | ErrorKind::Json(_) | ErrorKind::Utf8(_) => {
                        ErrCode::TOKEN_MALFORMED
                    }
                    ErrorKind::InvalidSignature | ErrorKind::InvalidAlgorithm => ErrCode::TOKEN_INVALID,
                    _ => ErrCode::TOKEN_UNKNOWN,
                };
                Err(ImError::new(code, e.to_string()))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn issued_tokens_verify_and_carry_claims() {
        let s = TokenSigner::new("openIM123");
        let (t, c) = s.issue("u1", 5, 3600).unwrap();
        let back = s.verify(&t).unwrap();
        assert_eq!(back, c);
        assert_eq!(back.user_id, "u1");
        assert_eq!(back.platform_id, 5);
    }

    #[test]
    fn bad_tokens_get_openim_codes() {
        let s = TokenSigner::new("openIM123");
        let (t, _) = s.issue("u1", 1, 3600).unwrap();
        let other = TokenSigner::new("another secret");
        assert_eq!(other.verify(&t).unwrap_err().code, ErrCode::TOKEN_INVALID);
        assert_eq!(s.verify("garbage").unwrap_err().code, ErrCode::TOKEN_MALFORMED);
        let (expired, _) = s.issue("u1", 1, -10).unwrap();
        assert_eq!(s.verify(&expired).unwrap_err().code, ErrCode::TOKEN_EXPIRED);
    }
}
