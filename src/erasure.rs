//! `tideline customers erase`: remove a person, keep only keyed hashes.
//!
//! The hashes are HMAC-SHA256 under the deployment's erasure key, so the tombstones do not
//! reveal who was erased to someone holding the database alone (a plain hash of an email
//! is one dictionary lookup away from the email). Imports drop any record that carries a
//! tombstoned identity, and quarantined rows that name one, so a later sync that still sees
//! the person brings nothing of them back.

use crate::config::Config;
use crate::model::Interaction;
use crate::outputs::timeline;
use crate::pipeline::identify::normalize_email;
use crate::store::{Erasure, ErasureOutcome, Store, StoreError};
use sha2::{Digest, Sha256};
use std::collections::HashSet;
use std::path::{Path, PathBuf};

#[derive(Debug, thiserror::Error)]
pub enum ErasureError {
    #[error(
        "the erasure key `{path}` is not usable: {message}; fix: restore the file (64 hex characters, mode 600) or point identity.erasure_key_file at it"
    )]
    Key { path: PathBuf, message: String },
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Timeline(#[from] timeline::TimelineError),
}

/// The key of the tombstone hashes. Never printed.
#[derive(Clone)]
pub struct ErasureKey([u8; 32]);

impl std::fmt::Debug for ErasureKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("ErasureKey(***)")
    }
}

impl ErasureKey {
    pub fn from_bytes(b: [u8; 32]) -> Self {
        Self(b)
    }

    /// HMAC-SHA256 of `message`, hex.
    pub fn hash(&self, message: &str) -> String {
        let mut block = [0u8; 64];
        block[..32].copy_from_slice(&self.0);
        let pad = |byte: u8| block.map(|b| b ^ byte);
        let inner = Sha256::new()
            .chain_update(pad(0x36))
            .chain_update(message.as_bytes())
            .finalize();
        let outer = Sha256::new()
            .chain_update(pad(0x5c))
            .chain_update(inner)
            .finalize();
        hex::encode(outer)
    }
}

fn key_path(config: &Config) -> PathBuf {
    config
        .identity
        .erasure_key_file
        .clone()
        .unwrap_or_else(|| config.storage.data_dir.join("erasure.key"))
}

fn read_key(path: &Path) -> Result<ErasureKey, ErasureError> {
    let err = |message: String| ErasureError::Key {
        path: path.into(),
        message,
    };
    let text = crate::config::Secret::from_file(path).map_err(err)?;
    let bytes = hex::decode(text.expose().trim()).map_err(|e| err(e.to_string()))?;
    let arr: [u8; 32] = bytes
        .try_into()
        .map_err(|_| err("expected 32 bytes as 64 hex characters".into()))?;
    Ok(ErasureKey(arr))
}

/// The deployment's key: the configured file, or `erasure.key` in the data directory,
/// created (mode 600, 32 random bytes) the first time an erasure needs it.
pub fn load_or_create_key(config: &Config) -> Result<ErasureKey, ErasureError> {
    let path = key_path(config);
    if path.exists() || config.identity.erasure_key_file.is_some() {
        return read_key(&path);
    }
    let err = |e: std::io::Error| ErasureError::Key {
        path: path.clone(),
        message: e.to_string(),
    };
    let mut bytes = [0u8; 32];
    use std::io::Read;
    std::fs::File::open("/dev/urandom")
        .and_then(|mut f| f.read_exact(&mut bytes))
        .map_err(err)?;
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir).map_err(err)?;
    }
    let mut opts = std::fs::OpenOptions::new();
    opts.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        opts.mode(0o600);
    }
    use std::io::Write;
    opts.open(&path)
        .and_then(|mut f| writeln!(f, "{}", hex::encode(bytes)))
        .map_err(err)?;
    Ok(ErasureKey(bytes))
}

/// The key, if erasures have happened (tombstones exist); imports call this once.
pub async fn filter_for(
    store: &dyn Store,
    config: &Config,
) -> Result<Option<Tombstones>, ErasureError> {
    let hashes = store.tombstones().await?;
    if hashes.is_empty() {
        return Ok(None);
    }
    Ok(Some(Tombstones {
        key: read_key(&key_path(config))?,
        hashes,
    }))
}

/// The tombstones with their key, to test records against.
#[derive(Debug, Clone)]
pub struct Tombstones {
    key: ErasureKey,
    hashes: HashSet<String>,
}

impl Tombstones {
    /// Whether an interaction is an erased person's: it carries an erased identity, it is
    /// one of their erased items (a review seen again under a display name only), or it
    /// answers one (an owner's reply, an agent's comment).
    pub fn erased(&self, i: &Interaction) -> bool {
        i.identities
            .iter()
            .any(|id| self.hashes.contains(&self.key.hash(&id.key())))
            || self
                .hashes
                .contains(&self.key.hash(&item_key(&i.source, &i.external_id)))
            || i.parent_external_id.as_deref().is_some_and(|p| {
                self.hashes
                    .contains(&self.key.hash(&item_key(&i.source, p)))
            })
    }

    /// Whether raw text (a quarantined row) names an erased email.
    pub fn names_erased(&self, raw: &str) -> bool {
        raw.split(|c: char| c.is_whitespace() || ",;\"'<>()[]{}|".contains(c))
            .filter(|w| w.contains('@'))
            .filter_map(|w| normalize_email(w.trim_start_matches("mailto:")))
            .any(|e| {
                let key = crate::model::Identity::new(crate::model::IdentityKind::Email, e).key();
                self.hashes.contains(&self.key.hash(&key))
            })
    }
}

fn item_key(source: &str, external_id: &str) -> String {
    crate::model::Identity::item(source, external_id).key()
}

/// Substrings that mark a raw row as this person's: emails as they are, phones in the
/// international form with and without `+`, and their last nine digits (the national
/// number, however it was written).
fn needles(ids: &[crate::model::Identity]) -> Vec<String> {
    let mut out = Vec::new();
    for id in ids {
        match id.kind {
            crate::model::IdentityKind::Email => out.push(id.value.to_lowercase()),
            crate::model::IdentityKind::Phone => {
                let digits: String = id.value.chars().filter(char::is_ascii_digit).collect();
                out.push(id.value.clone());
                out.push(digits.clone());
                if digits.len() > 9 {
                    out.push(digits[digits.len() - 9..].to_string());
                }
            }
            // A record's own anchor names no person in raw text.
            crate::model::IdentityKind::Item => {}
            _ => out.push(id.value.to_lowercase()),
        }
    }
    out.sort();
    out.dedup();
    out
}

/// Erases the person `arg` names (an email, phone, platform id or `cus_` id).
pub async fn erase(
    store: &dyn Store,
    config: &Config,
    arg: &str,
) -> Result<(String, ErasureOutcome), ErasureError> {
    let countries: Vec<String> = config.phone_countries();
    let customer_id = timeline::resolve(store, arg, &countries).await?;
    let customer = store
        .customer(&customer_id)
        .await?
        .ok_or_else(|| timeline::TimelineError::NotFound(arg.to_string()))?;
    let key = load_or_create_key(config)?;
    let items = store.erasable_items(&customer.id).await?;
    let erasure = Erasure {
        customer_id: customer.id.clone(),
        tombstones: customer
            .identities
            .iter()
            .map(|i| key.hash(&i.key()))
            .chain(items.iter().map(|(s, e)| key.hash(&item_key(s, e))))
            .collect(),
        subject: key.hash(&customer.id),
        quarantine_needles: needles(&customer.identities),
    };
    let outcome = store.erase(&erasure).await?;
    Ok((customer.id, outcome))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hmac_matches_the_rfc_4231_vector() {
        // RFC 4231 test case 2 uses a 4-byte key; ours are 32 bytes, zero-padded the same way.
        let mut k = [0u8; 32];
        k[..4].copy_from_slice(b"Jefe");
        assert_eq!(
            ErasureKey(k).hash("what do ya want for nothing?"),
            "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"
        );
        assert_eq!(format!("{:?}", ErasureKey(k)), "ErasureKey(***)");
    }
}
