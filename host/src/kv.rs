//! Key-value backends behind Spin's `spin:key-value` interface, and the runtime-config file that
//! chooses them.
//!
//! - SQLite (Spin's default, `type = "spin"`): one table `spin_key_value (store, key, value)` keyed by
//!   store label and key, the schema `spin up` uses, so both can share `.spin/sqlite_key_value.db`. The
//!   database runs in WAL mode with `synchronous = NORMAL`: a committed value survives the host being
//!   killed (only a power loss can take the last commits). A SQLite call blocks for tens of
//!   microseconds: it runs on the calling worker thread, which hands its other tasks to the rest
//!   of the runtime meanwhile (`block_in_place`), instead of a round trip through the blocking pool.
//! - Redis (`type = "redis"`, `url = "redis://…"`): keys are stored as they are, like Spin's Redis
//!   backend; one multiplexed connection that reconnects by itself.
//!
//! Runtime config (Spin's format; other sections are refused so nothing is silently ignored):
//! ```toml
//! [key_value_store.default]
//! type = "redis"
//! url = "redis://127.0.0.1:6379"
//! ```

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use redis::AsyncCommands as _;
use serde::Deserialize;

/// The default store label every Spin application has.
pub const DEFAULT_STORE: &str = "default";

/// The SQLite file of the default store, inside the state folder.
pub const DEFAULT_SQLITE_FILE: &str = "sqlite_key_value.db";

/// Errors setting up or using a key-value backend.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum BackendError {
    /// The runtime config cannot be read or is not understood.
    #[error("runtime config {path}: {reason}")]
    Config { path: PathBuf, reason: String },
    /// SQLite failed.
    #[error("sqlite: {0}")]
    Sqlite(#[from] rusqlite::Error),
    /// Redis failed.
    #[error("redis: {0}")]
    Redis(#[from] redis::RedisError),
    /// The state folder cannot be created.
    #[error("cannot create {path}: {source}")]
    StateDir {
        path: PathBuf,
        source: std::io::Error,
    },
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RuntimeConfig {
    #[serde(default)]
    key_value_store: BTreeMap<String, StoreConfig>,
}

#[derive(Deserialize)]
#[serde(tag = "type", rename_all = "lowercase", deny_unknown_fields)]
enum StoreConfig {
    Spin { path: Option<PathBuf> },
    Redis { url: String },
}

/// The key-value stores of an application, by label.
#[derive(Clone, Default)]
pub struct Stores {
    by_label: HashMap<String, Arc<Backend>>,
}

impl Stores {
    /// Opens the stores: the default one is SQLite in `state_dir` unless `runtime_config` (a Spin
    /// runtime-config file) says otherwise.
    pub async fn open(
        state_dir: &Path,
        runtime_config: Option<&Path>,
    ) -> Result<Self, BackendError> {
        let mut configs = BTreeMap::new();
        if let Some(path) = runtime_config {
            let config_error = |reason: String| BackendError::Config {
                path: path.to_owned(),
                reason,
            };
            let text = std::fs::read_to_string(path).map_err(|e| config_error(e.to_string()))?;
            let config: RuntimeConfig =
                toml::from_str(&text).map_err(|e| config_error(e.to_string()))?;
            let base = path.parent().unwrap_or(Path::new("."));
            for (label, store) in config.key_value_store {
                let store = match store {
                    StoreConfig::Spin { path: Some(file) } => StoreConfig::Spin {
                        path: Some(base.join(file)),
                    },
                    other => other,
                };
                configs.insert(label, store);
            }
        }
        configs
            .entry(DEFAULT_STORE.to_owned())
            .or_insert(StoreConfig::Spin { path: None });
        let mut by_label = HashMap::with_capacity(configs.len());
        let mut sqlite_files: HashMap<PathBuf, Arc<Backend>> = HashMap::new();
        for (label, config) in configs {
            let backend = match config {
                StoreConfig::Spin { path } => {
                    let file = match path {
                        Some(file) => file,
                        None => {
                            std::fs::create_dir_all(state_dir).map_err(|source| {
                                BackendError::StateDir {
                                    path: state_dir.to_owned(),
                                    source,
                                }
                            })?;
                            state_dir.join(DEFAULT_SQLITE_FILE)
                        }
                    };
                    match sqlite_files.get(&file) {
                        Some(backend) => Arc::clone(backend),
                        None => {
                            let backend = Arc::new(Backend::sqlite(&file)?);
                            sqlite_files.insert(file, Arc::clone(&backend));
                            backend
                        }
                    }
                }
                StoreConfig::Redis { url } => Arc::new(Backend::redis(&url).await?),
            };
            by_label.insert(label, backend);
        }
        Ok(Self { by_label })
    }

    /// The backend of a store label, if the application has that store.
    pub fn get(&self, label: &str) -> Option<&Arc<Backend>> {
        self.by_label.get(label)
    }
}

/// One key-value backend.
pub enum Backend {
    /// A SQLite database file.
    Sqlite(Arc<Mutex<rusqlite::Connection>>),
    /// A Redis server.
    Redis(redis::aio::ConnectionManager),
}

impl Backend {
    fn sqlite(file: &Path) -> Result<Self, BackendError> {
        let connection = rusqlite::Connection::open(file)?;
        connection.pragma_update(None, "journal_mode", "WAL")?;
        connection.pragma_update(None, "synchronous", "NORMAL")?;
        connection.busy_timeout(std::time::Duration::from_secs(5))?;
        connection.execute(
            "CREATE TABLE IF NOT EXISTS spin_key_value (
                store TEXT NOT NULL,
                key TEXT NOT NULL,
                value BLOB NOT NULL,
                PRIMARY KEY (store, key)
            )",
            [],
        )?;
        Ok(Self::Sqlite(Arc::new(Mutex::new(connection))))
    }

    async fn redis(url: &str) -> Result<Self, BackendError> {
        let client = redis::Client::open(url)?;
        Ok(Self::Redis(
            redis::aio::ConnectionManager::new(client).await?,
        ))
    }

    /// Runs `work` on the SQLite connection, on this thread (see the module doc).
    fn with_sqlite<R>(
        connection: &Arc<Mutex<rusqlite::Connection>>,
        work: impl FnOnce(&rusqlite::Connection) -> rusqlite::Result<R>,
    ) -> Result<R, BackendError> {
        let run = || {
            // A panic while holding the lock cannot leave SQLite half-written: every statement is
            // its own transaction, so a poisoned lock is still safe to use.
            let connection = connection
                .lock()
                .unwrap_or_else(|poisoned| poisoned.into_inner());
            work(&connection)
        };
        // `block_in_place` needs the multi-threaded runtime; a single-threaded one just blocks.
        let result = match tokio::runtime::Handle::current().runtime_flavor() {
            tokio::runtime::RuntimeFlavor::MultiThread => tokio::task::block_in_place(run),
            _ => run(),
        };
        Ok(result?)
    }

    /// The value of `key` in `store`.
    pub async fn get(&self, store: &str, key: &str) -> Result<Option<Vec<u8>>, BackendError> {
        match self {
            Self::Sqlite(connection) => {
                let (store, key) = (store.to_owned(), key.to_owned());
                Self::with_sqlite(connection, move |c| {
                    use rusqlite::OptionalExtension as _;
                    c.prepare_cached(
                        "SELECT value FROM spin_key_value WHERE store = ?1 AND key = ?2",
                    )?
                    .query_row([&store, &key], |row| row.get(0))
                    .optional()
                })
            }
            Self::Redis(connection) => Ok(connection.clone().get(key).await?),
        }
    }

    /// Sets `key` in `store` to `value`.
    pub async fn set(&self, store: &str, key: &str, value: Vec<u8>) -> Result<(), BackendError> {
        match self {
            Self::Sqlite(connection) => {
                let (store, key) = (store.to_owned(), key.to_owned());
                Self::with_sqlite(connection, move |c| {
                    c.prepare_cached(
                        "INSERT INTO spin_key_value (store, key, value) VALUES (?1, ?2, ?3)
                         ON CONFLICT (store, key) DO UPDATE SET value = excluded.value",
                    )?
                    .execute(rusqlite::params![store, key, value])
                    .map(drop)
                })
            }
            Self::Redis(connection) => Ok(connection.clone().set(key, value).await?),
        }
    }

    /// Deletes `key` from `store`; deleting a missing key is not an error.
    pub async fn delete(&self, store: &str, key: &str) -> Result<(), BackendError> {
        match self {
            Self::Sqlite(connection) => {
                let (store, key) = (store.to_owned(), key.to_owned());
                Self::with_sqlite(connection, move |c| {
                    c.prepare_cached("DELETE FROM spin_key_value WHERE store = ?1 AND key = ?2")?
                        .execute([&store, &key])
                        .map(drop)
                })
            }
            Self::Redis(connection) => Ok(connection.clone().del(key).await?),
        }
    }

    /// Whether `key` exists in `store`.
    pub async fn exists(&self, store: &str, key: &str) -> Result<bool, BackendError> {
        match self {
            Self::Sqlite(connection) => {
                let (store, key) = (store.to_owned(), key.to_owned());
                Self::with_sqlite(connection, move |c| {
                    c.prepare_cached("SELECT 1 FROM spin_key_value WHERE store = ?1 AND key = ?2")?
                        .exists([&store, &key])
                })
            }
            Self::Redis(connection) => Ok(connection.clone().exists(key).await?),
        }
    }

    /// Every key of `store`.
    pub async fn keys(&self, store: &str) -> Result<Vec<String>, BackendError> {
        match self {
            Self::Sqlite(connection) => {
                let store = store.to_owned();
                Self::with_sqlite(connection, move |c| {
                    c.prepare_cached("SELECT key FROM spin_key_value WHERE store = ?1")?
                        .query_map([&store], |row| row.get(0))?
                        .collect()
                })
            }
            Self::Redis(connection) => Ok(connection.clone().keys("*").await?),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(flavor = "multi_thread")]
    async fn sqlite_store_round_trips_and_separates_labels() {
        let dir = tempfile::tempdir().unwrap();
        let config = dir.path().join("runtime-config.toml");
        std::fs::write(&config, "[key_value_store.other]\ntype = \"spin\"\n").unwrap();
        let stores = Stores::open(&dir.path().join("state"), Some(&config))
            .await
            .unwrap();
        let default = stores.get(DEFAULT_STORE).unwrap();
        let other = stores.get("other").unwrap();
        assert!(stores.get("missing").is_none());
        default.set("default", "k", b"v1".to_vec()).await.unwrap();
        default.set("default", "k", b"v2".to_vec()).await.unwrap();
        other.set("other", "k", b"o".to_vec()).await.unwrap();
        assert_eq!(
            default.get("default", "k").await.unwrap(),
            Some(b"v2".to_vec())
        );
        assert_eq!(other.get("other", "k").await.unwrap(), Some(b"o".to_vec()));
        assert!(default.exists("default", "k").await.unwrap());
        assert_eq!(default.keys("default").await.unwrap(), ["k"]);
        default.delete("default", "k").await.unwrap();
        default.delete("default", "k").await.unwrap();
        assert_eq!(default.get("default", "k").await.unwrap(), None);
        assert!(!default.exists("default", "k").await.unwrap());
        assert!(dir.path().join("state").join(DEFAULT_SQLITE_FILE).exists());
    }

    #[tokio::test]
    async fn unknown_runtime_config_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let config = dir.path().join("rc.toml");
        for text in [
            "[key_value_store.default]\ntype = \"dynamodb\"\n",
            "[sqlite_database.default]\ntype = \"spin\"\n",
            "not toml",
        ] {
            std::fs::write(&config, text).unwrap();
            let error = Stores::open(dir.path(), Some(&config)).await.err().unwrap();
            assert!(
                matches!(error, BackendError::Config { .. }),
                "{text}: {error}"
            );
        }
    }
}
