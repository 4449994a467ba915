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
    /// The backend cannot do what was asked, as Spin's cannot.
    #[error("{0}")]
    Unsupported(String),
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

/// Compare-and-swap on Redis, in one round trip: `SET` the key to `ARGV[3]` if it holds
/// `ARGV[2]` (`ARGV[1]` = "1") or is absent (`ARGV[1]` = "0"); 1 if it did.
const REDIS_SWAP: &str = "local current = redis.call('GET', KEYS[1])
if ARGV[1] == '1' then
  if current ~= ARGV[2] then return 0 end
elseif current then
  return 0
end
redis.call('SET', KEYS[1], ARGV[3])
return 1";

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
            // A panic while holding the lock cannot leave SQLite half-written: every statement or
            // transaction commits or rolls back whole, so a poisoned lock is still safe to use.
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

    /// The values of those of `keys` that exist, as `(key, Some(value))` in no particular order,
    /// as Spin's SQLite backend answers `get-many` (a missing key is left out). Spin 4.0.2's Redis
    /// backend cannot answer it (it sends `KEYS` with the keys as patterns), so neither does this
    /// one on Redis: it sends the same.
    pub async fn get_many(
        &self,
        store: &str,
        keys: Vec<String>,
    ) -> Result<Vec<(String, Option<Vec<u8>>)>, BackendError> {
        match self {
            Self::Sqlite(connection) => {
                let store = store.to_owned();
                Self::with_sqlite(connection, move |c| {
                    use rusqlite::OptionalExtension as _;
                    let mut select = c.prepare_cached(
                        "SELECT value FROM spin_key_value WHERE store = ?1 AND key = ?2",
                    )?;
                    let mut found = Vec::with_capacity(keys.len());
                    for key in keys {
                        let value: Option<Vec<u8>> = select
                            .query_row([&store, &key], |row| row.get(0))
                            .optional()?;
                        if value.is_some() && !found.iter().any(|(k, _)| *k == key) {
                            found.push((key, value));
                        }
                    }
                    Ok(found)
                })
            }
            // What Spin 4.0.2's Redis store sends: `KEYS` with the keys as patterns, which Redis
            // refuses for more than one key and answers with key names for one.
            Self::Redis(connection) => Ok(redis::cmd("KEYS")
                .arg(keys)
                .query_async(&mut connection.clone())
                .await?),
        }
    }

    /// Sets every pair, in order (a key given twice keeps its last value), all or none: one SQLite
    /// transaction, or one Redis `MSET`.
    pub async fn set_many(
        &self,
        store: &str,
        pairs: Vec<(String, Vec<u8>)>,
    ) -> Result<(), BackendError> {
        match self {
            Self::Sqlite(connection) => {
                let store = store.to_owned();
                Self::with_sqlite(connection, move |c| {
                    let transaction = c.unchecked_transaction()?;
                    {
                        let mut upsert = transaction.prepare_cached(
                            "INSERT INTO spin_key_value (store, key, value) VALUES (?1, ?2, ?3)
                             ON CONFLICT (store, key) DO UPDATE SET value = excluded.value",
                        )?;
                        for (key, value) in pairs {
                            upsert.execute(rusqlite::params![store, key, value])?;
                        }
                    }
                    transaction.commit()
                })
            }
            Self::Redis(connection) => Ok(connection.clone().mset(&pairs).await?),
        }
    }

    /// Deletes every key (missing keys are not an error), in one statement or one Redis `DEL`.
    pub async fn delete_many(&self, store: &str, keys: Vec<String>) -> Result<(), BackendError> {
        match self {
            Self::Sqlite(connection) => {
                let store = store.to_owned();
                Self::with_sqlite(connection, move |c| {
                    let transaction = c.unchecked_transaction()?;
                    {
                        let mut delete = transaction.prepare_cached(
                            "DELETE FROM spin_key_value WHERE store = ?1 AND key = ?2",
                        )?;
                        for key in keys {
                            delete.execute([&store, &key])?;
                        }
                    }
                    transaction.commit()
                })
            }
            Self::Redis(connection) => Ok(connection.clone().del(keys).await?),
        }
    }

    /// Adds `delta` to the counter under `key` (a missing key counts as 0) and returns the new
    /// value, atomically. As in Spin, SQLite keeps the counter as 8 little-endian bytes and Redis
    /// as `INCRBY` does (decimal text); a value of another shape is an error.
    pub async fn increment(&self, store: &str, key: &str, delta: i64) -> Result<i64, BackendError> {
        match self {
            Self::Sqlite(connection) => {
                let (store, key) = (store.to_owned(), key.to_owned());
                let counted = Self::with_sqlite(connection, move |c| {
                    use rusqlite::OptionalExtension as _;
                    let transaction = c.unchecked_transaction()?;
                    let value: Option<Vec<u8>> = transaction
                        .prepare_cached(
                            "SELECT value FROM spin_key_value WHERE store = ?1 AND key = ?2",
                        )?
                        .query_row([&store, &key], |row| row.get(0))
                        .optional()?;
                    let current = match value {
                        None => 0,
                        Some(bytes) => match <[u8; 8]>::try_from(bytes.as_slice()) {
                            Ok(bytes) => i64::from_le_bytes(bytes),
                            Err(_) => return Ok(Err("the value is not an 8-byte counter")),
                        },
                    };
                    let Some(next) = current.checked_add(delta) else {
                        return Ok(Err("the counter would overflow"));
                    };
                    transaction
                        .prepare_cached(
                            "INSERT INTO spin_key_value (store, key, value) VALUES (?1, ?2, ?3)
                             ON CONFLICT (store, key) DO UPDATE SET value = excluded.value",
                        )?
                        .execute(rusqlite::params![store, key, next.to_le_bytes()])?;
                    transaction.commit()?;
                    Ok(Ok(next))
                })?;
                counted.map_err(|reason| BackendError::Unsupported(format!("increment: {reason}")))
            }
            Self::Redis(connection) => Ok(connection.clone().incr(key, delta).await?),
        }
    }

    /// Writes `value` under `key` only if the key still holds `expected` (`None`: still absent),
    /// compared byte for byte; whether it says it did. Spin's compare-and-swap compares against
    /// the value its `current` read; this is that comparison and write, atomically. Where
    /// `expected` is `None`, Spin 4.0.2's SQLite backend writes whatever is there; this one does
    /// not, so a component tested here never counts on a creation racing unseen. On Redis the
    /// answer is always `false`, as from Spin 4.0.2's Redis store: after its transaction it sends
    /// `UNWATCH` with the key as an argument, which Redis refuses, and it reports that as a lost
    /// swap whether or not the value was written.
    pub async fn swap(
        &self,
        store: &str,
        key: &str,
        expected: Option<Vec<u8>>,
        value: Vec<u8>,
    ) -> Result<bool, BackendError> {
        match self {
            Self::Sqlite(connection) => {
                let (store, key) = (store.to_owned(), key.to_owned());
                Self::with_sqlite(connection, move |c| {
                    let changed = match expected {
                        Some(old) => c
                            .prepare_cached(
                                "UPDATE spin_key_value SET value = ?4
                                 WHERE store = ?1 AND key = ?2 AND value = ?3",
                            )?
                            .execute(rusqlite::params![store, key, old, value])?,
                        None => c
                            .prepare_cached(
                                "INSERT INTO spin_key_value (store, key, value) VALUES (?1, ?2, ?3)
                                 ON CONFLICT (store, key) DO NOTHING",
                            )?
                            .execute(rusqlite::params![store, key, value])?,
                    };
                    Ok(changed == 1)
                })
            }
            Self::Redis(connection) => {
                let (present, old) = match expected {
                    Some(old) => ("1", old),
                    None => ("0", Vec::new()),
                };
                let _swapped: i64 = redis::cmd("EVAL")
                    .arg(REDIS_SWAP)
                    .arg(1)
                    .arg(key)
                    .arg(present)
                    .arg(old)
                    .arg(value)
                    .query_async(&mut connection.clone())
                    .await?;
                Ok(false)
            }
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

    #[tokio::test(flavor = "multi_thread")]
    async fn sqlite_batches_counters_and_swaps_answer_as_spin() {
        let dir = tempfile::tempdir().unwrap();
        let stores = Stores::open(dir.path(), None).await.unwrap();
        let store = stores.get(DEFAULT_STORE).unwrap();
        let pairs = |list: &[(&str, &str)]| {
            list.iter()
                .map(|(k, v)| (k.to_string(), v.as_bytes().to_vec()))
                .collect::<Vec<_>>()
        };
        store
            .set_many("default", pairs(&[("a", "1"), ("b", "2"), ("a", "3")]))
            .await
            .unwrap();
        let mut found = store
            .get_many("default", vec!["a".into(), "missing".into(), "b".into()])
            .await
            .unwrap();
        found.sort();
        assert_eq!(
            found,
            vec![
                ("a".to_owned(), Some(b"3".to_vec())),
                ("b".to_owned(), Some(b"2".to_vec()))
            ],
            "the last value of a key given twice; a missing key left out"
        );
        store
            .delete_many("default", vec!["b".into(), "missing".into()])
            .await
            .unwrap();
        assert_eq!(store.get("default", "b").await.unwrap(), None);

        assert_eq!(store.increment("default", "n", 5).await.unwrap(), 5);
        assert_eq!(store.increment("default", "n", -7).await.unwrap(), -2);
        assert_eq!(
            store.get("default", "n").await.unwrap(),
            Some((-2i64).to_le_bytes().to_vec()),
            "Spin's SQLite store keeps a counter as 8 little-endian bytes"
        );
        let not_a_counter = store.increment("default", "a", 1).await.unwrap_err();
        assert!(not_a_counter.to_string().contains("8-byte counter"));
        store
            .set("default", "max", i64::MAX.to_le_bytes().to_vec())
            .await
            .unwrap();
        assert!(store.increment("default", "max", 1).await.is_err());

        let swap = |expected: Option<&str>, value: &str| {
            store.swap(
                "default",
                "a",
                expected.map(|e| e.as_bytes().to_vec()),
                value.as_bytes().to_vec(),
            )
        };
        assert!(swap(Some("3"), "4").await.unwrap());
        assert!(!swap(Some("3"), "5").await.unwrap(), "a is 4 now");
        assert!(!swap(None, "5").await.unwrap(), "a exists");
        assert_eq!(
            store.get("default", "a").await.unwrap(),
            Some(b"4".to_vec())
        );
        assert!(
            store
                .swap("default", "fresh", None, b"v".to_vec())
                .await
                .unwrap()
        );
        assert!(
            !store
                .swap("default", "fresh", None, b"w".to_vec())
                .await
                .unwrap(),
            "a creation that finds the key created meanwhile fails"
        );
    }

    #[tokio::test(flavor = "multi_thread")]
    async fn concurrent_swaps_lose_no_update() {
        let dir = tempfile::tempdir().unwrap();
        let stores = Stores::open(dir.path(), None).await.unwrap();
        let store = Arc::clone(stores.get(DEFAULT_STORE).unwrap());
        store.set("default", "count", b"0".to_vec()).await.unwrap();
        let tasks: Vec<_> = (0..8)
            .map(|_| {
                let store = Arc::clone(&store);
                tokio::spawn(async move {
                    for _ in 0..25 {
                        loop {
                            let current = store.get("default", "count").await.unwrap();
                            let n: u32 = String::from_utf8(current.clone().unwrap())
                                .unwrap()
                                .parse()
                                .unwrap();
                            let next = (n + 1).to_string().into_bytes();
                            if store.swap("default", "count", current, next).await.unwrap() {
                                break;
                            }
                        }
                    }
                })
            })
            .collect();
        for task in tasks {
            task.await.unwrap();
        }
        assert_eq!(
            store.get("default", "count").await.unwrap(),
            Some(b"200".to_vec())
        );
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
