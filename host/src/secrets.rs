//! The secrets of a state folder. `rcs-edge up` never serves a manifest's well-known secret
//! defaults: every variable declared `secret = true` with a `default` gets a random value, made
//! once per state folder and kept in `<state-dir>/secrets.toml` (readable by its owner only), unless
//! `SPIN_VARIABLE_<NAME>` sets it. A fresh `.spin/` therefore signs URLs, seals the servers' MESSAGE,
//! signs `Grip-Sig` and guards the admin routes with keys nobody else has, and keeps them across
//! restarts, so signed URLs stay valid. To the components these are variable values like any other.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use rand::RngCore;

/// The file the secrets are kept in, in the state folder.
pub const SECRETS_FILE: &str = "secrets.toml";

/// Random bytes per generated secret (written as hex, twice as many characters).
const SECRET_BYTES: usize = 32;

/// The kept value of each of `names`, generating (and keeping) the missing ones; returns them with
/// the file's path.
pub fn kept(state_dir: &Path, names: &[String]) -> Result<(BTreeMap<String, String>, PathBuf)> {
    let path = state_dir.join(SECRETS_FILE);
    let mut secrets: BTreeMap<String, String> = match std::fs::read_to_string(&path) {
        Ok(text) => toml::from_str(&text).with_context(|| format!("reading {}", path.display()))?,
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => BTreeMap::new(),
        Err(error) => return Err(error).with_context(|| format!("reading {}", path.display())),
    };
    #[cfg(unix)]
    if path.exists() {
        // A file made another way (copied, restored) is made private too.
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600))
            .with_context(|| format!("making {} private", path.display()))?;
    }
    let missing: Vec<&String> = names.iter().filter(|n| !secrets.contains_key(*n)).collect();
    if !missing.is_empty() {
        let mut random = rand::rng();
        for name in missing {
            let mut bytes = [0u8; SECRET_BYTES];
            random.fill_bytes(&mut bytes);
            secrets.insert(name.clone(), hex::encode(bytes));
        }
        write_private(&path, &secrets)?;
    }
    Ok((secrets, path))
}

/// Writes the secrets where only the owner can read them.
fn write_private(path: &Path, secrets: &BTreeMap<String, String>) -> Result<()> {
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    }
    let text = format!(
        "# Secrets of this state folder, made by rcs-edge up; SPIN_VARIABLE_<NAME> overrides them.\n{}",
        toml::to_string(secrets).context("writing the secrets")?
    );
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create(true).truncate(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    let mut file = options
        .open(path)
        .with_context(|| format!("writing {}", path.display()))?;
    std::io::Write::write_all(&mut file, text.as_bytes())
        .with_context(|| format!("writing {}", path.display()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secrets_are_made_once_kept_and_private() {
        let dir = tempfile::tempdir().unwrap();
        let names = vec!["admin_token".to_owned(), "signing_secret".to_owned()];
        let (first, path) = kept(dir.path(), &names).unwrap();
        assert_eq!(first.len(), 2);
        assert!(first.values().all(|v| v.len() == 2 * SECRET_BYTES));
        assert_ne!(first["admin_token"], first["signing_secret"]);
        let (again, _) = kept(dir.path(), &names).unwrap();
        assert_eq!(first, again, "kept across restarts");
        let more = vec!["grip_sig_key".to_owned()];
        let (grown, _) = kept(dir.path(), &more).unwrap();
        assert_eq!(grown.len(), 3);
        assert_eq!(grown["admin_token"], first["admin_token"]);
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(path).unwrap().permissions().mode();
            assert_eq!(mode & 0o077, 0, "readable by its owner only: {mode:o}");
        }
    }
}
