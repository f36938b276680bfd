//! Read tokens (DESIGN §6): signed with `auth.secret` (HMAC-SHA256), scoped
//! to one client, one webinar, or everything (admin), with an expiry; and
//! ingest keys, the same signed form scoped to sending one webinar's,
//! campaign's or client's browser events (`auth.ingest = "signed"`), which
//! read nothing.
//!
//! A token is `base64url(claims JSON) "." base64url(HMAC(claims))`. It is
//! checked in constant time; a token for one tenant never reads another's
//! data.

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64;
use hmac::{Hmac, Mac};
use serde::{Deserialize, Serialize};
use sha2::Sha256;

type HmacSha256 = Hmac<Sha256>;

/// What a token may read.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "scope", content = "id", rename_all = "lowercase")]
pub enum Scope {
    Admin,
    Client(String),
    Webinar(String),
    /// Sends presence of this webinar (browser endpoints).
    #[serde(rename = "ingest-webinar")]
    IngestWebinar(String),
    /// Sends visits and conversions of this campaign.
    #[serde(rename = "ingest-campaign")]
    IngestCampaign(String),
    /// Sends page views naming this client.
    #[serde(rename = "ingest-client")]
    IngestClient(String),
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Claims {
    #[serde(flatten)]
    pub scope: Scope,
    /// Expiry, milliseconds since the epoch.
    pub exp: i64,
}

impl Claims {
    pub fn can_read_webinar(&self, webinar_id: &str) -> bool {
        match &self.scope {
            Scope::Admin => true,
            Scope::Webinar(w) => w == webinar_id,
            _ => false,
        }
    }

    pub fn can_read_client(&self, client_id: &str) -> bool {
        match &self.scope {
            Scope::Admin => true,
            Scope::Client(c) => c == client_id,
            _ => false,
        }
    }

    /// Whether these claims may send a browser event of `kind` for `id` (the
    /// webinar of presence, the campaign of a visit or conversion, the
    /// client a page view names). An admin token may send anything.
    pub fn can_ingest(&self, kind: IngestFor, id: &str) -> bool {
        match (&self.scope, kind) {
            (Scope::Admin, _) => true,
            (Scope::IngestWebinar(w), IngestFor::Webinar) => w == id,
            (Scope::IngestCampaign(c), IngestFor::Campaign) => c == id,
            (Scope::IngestClient(c), IngestFor::Client) => c == id,
            _ => false,
        }
    }

    pub fn is_admin(&self) -> bool {
        self.scope == Scope::Admin
    }
}

/// What a browser event is sent for, as an ingest key names it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum IngestFor {
    Webinar,
    Campaign,
    Client,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AuthError {
    #[error("a token is required (Authorization: Bearer <token>)")]
    Missing,
    #[error("an ingest key is required (X-EventFlow-Key header or ?key=)")]
    MissingIngestKey,
    #[error("the token is malformed or its signature does not match")]
    Invalid,
    #[error("the token has expired")]
    Expired,
    #[error("the token does not grant access to this resource")]
    Forbidden,
}

/// Mints and verifies tokens.
#[derive(Clone)]
pub struct Signer {
    key: Vec<u8>,
}

impl Signer {
    pub fn new(secret: &[u8]) -> Signer {
        Signer {
            key: secret.to_vec(),
        }
    }

    /// A signer with a random key (no `auth.secret`): tokens last one run.
    pub fn random() -> Signer {
        let mut key = [0u8; 32];
        getrandom::fill(&mut key).expect("the OS provides randomness");
        Signer { key: key.to_vec() }
    }

    fn mac(&self) -> HmacSha256 {
        HmacSha256::new_from_slice(&self.key).expect("HMAC takes any key length")
    }

    pub fn mint(&self, scope: Scope, exp_ms: i64) -> String {
        let claims = serde_json::to_vec(&Claims { scope, exp: exp_ms }).expect("claims serialize");
        let mut mac = self.mac();
        mac.update(&claims);
        format!(
            "{}.{}",
            B64.encode(&claims),
            B64.encode(mac.finalize().into_bytes())
        )
    }

    pub fn verify(&self, token: &str, now_ms: i64) -> Result<Claims, AuthError> {
        let (claims, sig) = token.split_once('.').ok_or(AuthError::Invalid)?;
        let claims = B64.decode(claims).map_err(|_| AuthError::Invalid)?;
        let sig = B64.decode(sig).map_err(|_| AuthError::Invalid)?;
        let mut mac = self.mac();
        mac.update(&claims);
        mac.verify_slice(&sig).map_err(|_| AuthError::Invalid)?;
        let claims: Claims = serde_json::from_slice(&claims).map_err(|_| AuthError::Invalid)?;
        if claims.exp <= now_ms {
            return Err(AuthError::Expired);
        }
        Ok(claims)
    }
}

/// Parses a duration like `90s`, `30m`, `1h`, `7d` into milliseconds.
pub fn parse_ttl(s: &str) -> Result<i64, String> {
    let s = s.trim();
    let split = s.find(|c: char| !c.is_ascii_digit()).unwrap_or(s.len());
    let (n, unit) = s.split_at(split);
    let n: i64 = n
        .parse()
        .map_err(|_| format!("{s:?}: expected a number and a unit, like 1h"))?;
    let unit_ms = match unit {
        "ms" => 1,
        "s" => 1_000,
        "m" => 60_000,
        "h" => 3_600_000,
        "d" => 86_400_000,
        _ => return Err(format!("{s:?}: the unit must be one of ms, s, m, h, d")),
    };
    let ms = n
        .checked_mul(unit_ms)
        .filter(|ms| *ms > 0)
        .ok_or_else(|| format!("{s:?}: must be positive"))?;
    if ms > MAX_TTL_MS {
        return Err(format!(
            "{s:?}: a token lives at most 30d; mint a new one when it runs out"
        ));
    }
    Ok(ms)
}

/// The longest life of a minted token: 30 days.
pub const MAX_TTL_MS: i64 = 30 * 86_400_000;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_verify_and_carry_their_scope() {
        let s = Signer::new(b"secret");
        let t = s.mint(Scope::Webinar("w-17".into()), 2_000);
        let c = s.verify(&t, 1_000).unwrap();
        assert!(c.can_read_webinar("w-17"));
        assert!(!c.can_read_webinar("w-18"));
        assert!(!c.can_read_client("c-1"));
        let admin = s.verify(&s.mint(Scope::Admin, 2_000), 0).unwrap();
        assert!(admin.can_read_webinar("any") && admin.can_read_client("any"));
        let client = s
            .verify(&s.mint(Scope::Client("c-1".into()), 2_000), 0)
            .unwrap();
        assert!(client.can_read_client("c-1") && !client.can_read_client("c-2"));
    }

    #[test]
    fn forged_expired_and_foreign_tokens_are_refused() {
        let s = Signer::new(b"secret");
        let t = s.mint(Scope::Webinar("w".into()), 2_000);
        assert_eq!(s.verify(&t, 2_000), Err(AuthError::Expired));
        assert_eq!(Signer::new(b"other").verify(&t, 0), Err(AuthError::Invalid));
        let (claims, sig) = t.split_once('.').unwrap();
        let forged = B64.encode(br#"{"scope":"admin","exp":9999999999999}"#);
        assert_eq!(
            s.verify(&format!("{forged}.{sig}"), 0),
            Err(AuthError::Invalid)
        );
        assert_eq!(s.verify(claims, 0), Err(AuthError::Invalid));
        assert_eq!(s.verify("", 0), Err(AuthError::Invalid));
    }

    #[test]
    fn ttls_parse_with_units() {
        assert_eq!(parse_ttl("1h"), Ok(3_600_000));
        assert_eq!(parse_ttl("30m"), Ok(1_800_000));
        assert_eq!(parse_ttl("7d"), Ok(604_800_000));
        assert!(parse_ttl("1y").is_err());
        assert!(parse_ttl("h").is_err());
        assert!(parse_ttl("0s").is_err());
        assert_eq!(parse_ttl("30d"), Ok(MAX_TTL_MS));
        assert!(parse_ttl("31d").unwrap_err().contains("at most 30d"));
        assert!(parse_ttl("99999999999999999d").is_err());
    }
}
