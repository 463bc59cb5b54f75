//! Bearer tokens. The configured tokens are kept as SHA-256 digests; a presented token is
//! hashed and compared with every digest in constant time, so neither the comparison nor
//! the order of the tokens tells an attacker how close a guess was.

use super::error::ApiError;
use crate::config::{ApiToken, Scope};
use axum::http::{HeaderMap, header};
use sha2::{Digest, Sha256};

/// The tokens a server accepts.
#[derive(Debug, Clone, Default)]
pub struct Tokens {
    tokens: Vec<ApiToken>,
}

/// Who made a request: the token's name and scope (put in the request's extensions).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Caller {
    pub name: String,
    pub scope: Scope,
}

impl Tokens {
    pub fn new(tokens: Vec<ApiToken>) -> Self {
        Self { tokens }
    }

    pub fn is_empty(&self) -> bool {
        self.tokens.is_empty()
    }

    pub fn len(&self) -> usize {
        self.tokens.len()
    }

    /// The caller a token value belongs to. Every digest is compared, whatever matched.
    pub fn verify(&self, presented: &str) -> Option<Caller> {
        let digest: [u8; 32] = Sha256::digest(presented.as_bytes()).into();
        let mut found = None;
        for t in &self.tokens {
            if constant_time_eq(&t.sha256, &digest) {
                found = Some(Caller {
                    name: t.name.clone(),
                    scope: t.scope,
                });
            }
        }
        found
    }

    /// Checks a request's `Authorization: Bearer` header against the tokens and the scope
    /// a route needs.
    pub fn authorize(&self, headers: &HeaderMap, needs: Scope) -> Result<Caller, ApiError> {
        let Some(value) = headers.get(header::AUTHORIZATION) else {
            return Err(ApiError::Unauthorized { invalid: false });
        };
        let value = value
            .to_str()
            .map_err(|_| ApiError::Unauthorized { invalid: true })?;
        let (scheme, token) = value
            .split_once(' ')
            .ok_or(ApiError::Unauthorized { invalid: true })?;
        if !scheme.eq_ignore_ascii_case("bearer") {
            return Err(ApiError::Unauthorized { invalid: true });
        }
        let caller = self
            .verify(token.trim())
            .ok_or(ApiError::Unauthorized { invalid: true })?;
        if caller.scope < needs {
            return Err(ApiError::Forbidden(needs));
        }
        Ok(caller)
    }
}

fn constant_time_eq(a: &[u8; 32], b: &[u8; 32]) -> bool {
    let mut diff = 0u8;
    for (x, y) in a.iter().zip(b) {
        diff |= x ^ y;
    }
    std::hint::black_box(diff) == 0
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Secret;
    use axum::http::HeaderValue;

    fn tokens() -> Tokens {
        Tokens::new(vec![
            ApiToken::new("r", Scope::Read, &Secret::new("read-token-0123456789")),
            ApiToken::new("a", Scope::Admin, &Secret::new("admin-token-0123456789")),
        ])
    }

    fn headers(v: &str) -> HeaderMap {
        let mut h = HeaderMap::new();
        h.insert(header::AUTHORIZATION, HeaderValue::from_str(v).unwrap());
        h
    }

    #[test]
    fn scopes_and_schemes() {
        let t = tokens();
        let read = headers("Bearer read-token-0123456789");
        assert_eq!(t.authorize(&read, Scope::Read).unwrap().name, "r");
        assert!(matches!(
            t.authorize(&read, Scope::Admin),
            Err(ApiError::Forbidden(Scope::Admin))
        ));
        let admin = headers("bearer admin-token-0123456789");
        assert_eq!(
            t.authorize(&admin, Scope::Read).unwrap().scope,
            Scope::Admin
        );
        for bad in [
            "Bearer read-token-012345678",
            "Basic read-token-0123456789",
            "read-token-0123456789",
            "Bearer ",
        ] {
            assert!(
                matches!(
                    t.authorize(&headers(bad), Scope::Read),
                    Err(ApiError::Unauthorized { invalid: true })
                ),
                "{bad}"
            );
        }
        assert!(matches!(
            t.authorize(&HeaderMap::new(), Scope::Read),
            Err(ApiError::Unauthorized { invalid: false })
        ));
        assert!(Tokens::default().verify("").is_none());
    }
}
