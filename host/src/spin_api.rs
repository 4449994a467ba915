//! The Spin interfaces the host gives components beside WASI: `spin:key-value/key-value@3.0.0`,
//! `spin:variables/variables@3.0.0` (the versions `spin-sdk` 6.0.0 imports) and
//! `wasi:keyvalue@0.2.0-draft2` (`store`, `batch`, `atomics`: what Spin 4.0.2 links, which
//! `spin-sdk` 6.0.0 binds under `spin_sdk::experimental`); their WIT is in `host/wit/`.
//!
//! Both key-value interfaces open the same stores (a `bucket` is a store by another name) and
//! answer as Spin 4.0.2's `factor-key-value` does: `list-keys` with a cursor is `other`
//! ("list_keys: cursor not supported"); an empty batch is answered without touching the backend;
//! `get-many` lists only the keys that exist; a compare-and-swap compares the value its `current`
//! read (nothing, if `current` was not called) and, when another write came first, fails with a
//! fresh `cas` whose `current` has already been read.
//!
//! Key-value answers as Spin does: opening a label the component's `key_value_stores` does not list is
//! `access-denied`; a listed label the application has no store for is `no-such-store`; backend
//! failures are `other` with the backend's message, and a `get` or `get-keys` whose answer would be
//! over Spin's 128 MiB host buffer is `other` with Spin's text. A variable the component does not
//! declare is `undefined` (Spin's words); a name Spin would refuse is `invalid-name`.

use std::sync::Arc;

use wasmtime::component::{Accessor, FutureReader, HasData, Linker, Resource, StreamReader};

use crate::kv::Backend;
use crate::runtime::State;

mod bindings {
    wasmtime::component::bindgen!({
        path: "wit",
        world: "rcs:edge-host/spin-imports",
        imports: {
            "spin:key-value/key-value.[drop]store": trappable,
            "wasi:keyvalue/store": async | trappable,
            "wasi:keyvalue/batch": async | trappable,
            "wasi:keyvalue/atomics": async | trappable,
            default: store | trappable,
        },
        require_store_data_send: true,
        with: {
            "spin:key-value/key-value.store": super::KvStore,
            "wasi:keyvalue/store.bucket": super::KvStore,
            "wasi:keyvalue/atomics.cas": super::KvCas,
        },
    });
}

use bindings::spin::key_value::key_value::{self as kv, Error as KvError};
use bindings::spin::variables::variables::{self, Error as VariableError};
use bindings::wasi::keyvalue::atomics::{self, CasError};
use bindings::wasi::keyvalue::batch;
use bindings::wasi::keyvalue::store::{self as bucket, Error as BucketError, KeyResponse};

/// An open key-value store, as the guest's `store` (or `bucket`) resource.
pub struct KvStore {
    label: String,
    backend: Arc<Backend>,
}

/// A compare-and-swap on one key, as the guest's `cas` resource.
pub struct KvCas {
    label: String,
    backend: Arc<Backend>,
    key: String,
    /// What `current` read; `None` until it is called, or if the key was absent.
    current: Option<Vec<u8>>,
}

/// The projection of `State` these interfaces are implemented on.
pub struct SpinApi;

impl HasData for SpinApi {
    type Data<'a> = &'a mut State;
}

/// Adds both interfaces to `linker`.
pub fn add_to_linker(linker: &mut Linker<State>) -> wasmtime::Result<()> {
    kv::add_to_linker::<State, SpinApi>(linker, |state| state)?;
    variables::add_to_linker::<State, SpinApi>(linker, |state| state)?;
    bucket::add_to_linker::<State, SpinApi>(linker, |state| state)?;
    batch::add_to_linker::<State, SpinApi>(linker, |state| state)?;
    atomics::add_to_linker::<State, SpinApi>(linker, |state| state)?;
    Ok(())
}

fn other(error: impl std::fmt::Display) -> KvError {
    KvError::Other(error.to_string())
}

/// The most bytes Spin's host hands a guest in one key-value answer (`MAX_HOST_BUFFERED_BYTES` of
/// Spin's `world` crate, 128 MiB). Writes have no limit in Spin 4.0.2.
const MAX_HOST_BUFFERED_BYTES: usize = 128 << 20;

/// Refuses an answer of `size` bytes as Spin's SQLite and Redis backends do when it is over the
/// host buffer, with their words.
fn check_host_buffer(size: usize) -> Result<(), String> {
    if size > MAX_HOST_BUFFERED_BYTES {
        return Err(format!(
            "query result exceeds limit of {MAX_HOST_BUFFERED_BYTES} bytes"
        ));
    }
    Ok(())
}

/// The size Spin counts for one value read.
fn value_size(value: &Option<Vec<u8>>) -> usize {
    std::mem::size_of::<Option<Vec<u8>>>() + value.as_ref().map_or(0, Vec::len)
}

/// Refuses a value as Spin's SQLite and Redis backends do when it is over the host buffer.
fn within_host_buffer(value: Option<Vec<u8>>) -> Result<Option<Vec<u8>>, KvError> {
    check_host_buffer(value_size(&value)).map_err(KvError::Other)?;
    Ok(value)
}

/// The label and backend of an open store, copied out of the store's table.
fn open_store<T>(
    accessor: &Accessor<T, SpinApi>,
    store: &Resource<KvStore>,
) -> Result<(String, Arc<Backend>), KvError> {
    accessor.with(|mut access| {
        let state = access.get();
        let store = state.table().get(store).map_err(other)?;
        Ok((store.label.clone(), Arc::clone(&store.backend)))
    })
}

impl kv::HostStoreWithStore for SpinApi {
    async fn open<T>(
        accessor: &Accessor<T, Self>,
        label: String,
    ) -> wasmtime::Result<Result<Resource<KvStore>, KvError>> {
        accessor.with(|mut access| {
            let state = access.get();
            if !state.component().config.key_value_stores.contains(&label) {
                return Ok(Err(KvError::AccessDenied));
            }
            let Some(backend) = state.stores().get(&label).cloned() else {
                return Ok(Err(KvError::NoSuchStore));
            };
            let store = state.table().push(KvStore { label, backend })?;
            Ok(Ok(store))
        })
    }

    async fn get<T>(
        accessor: &Accessor<T, Self>,
        store: Resource<KvStore>,
        key: String,
    ) -> wasmtime::Result<Result<Option<Vec<u8>>, KvError>> {
        let (label, backend) = match open_store(accessor, &store) {
            Ok(open) => open,
            Err(error) => return Ok(Err(error)),
        };
        Ok(backend
            .get(&label, &key)
            .await
            .map_err(other)
            .and_then(within_host_buffer))
    }

    async fn set<T>(
        accessor: &Accessor<T, Self>,
        store: Resource<KvStore>,
        key: String,
        value: Vec<u8>,
    ) -> wasmtime::Result<Result<(), KvError>> {
        let (label, backend) = match open_store(accessor, &store) {
            Ok(open) => open,
            Err(error) => return Ok(Err(error)),
        };
        Ok(backend.set(&label, &key, value).await.map_err(other))
    }

    async fn delete<T>(
        accessor: &Accessor<T, Self>,
        store: Resource<KvStore>,
        key: String,
    ) -> wasmtime::Result<Result<(), KvError>> {
        let (label, backend) = match open_store(accessor, &store) {
            Ok(open) => open,
            Err(error) => return Ok(Err(error)),
        };
        Ok(backend.delete(&label, &key).await.map_err(other))
    }

    async fn exists<T>(
        accessor: &Accessor<T, Self>,
        store: Resource<KvStore>,
        key: String,
    ) -> wasmtime::Result<Result<bool, KvError>> {
        let (label, backend) = match open_store(accessor, &store) {
            Ok(open) => open,
            Err(error) => return Ok(Err(error)),
        };
        Ok(backend.exists(&label, &key).await.map_err(other))
    }

    async fn get_keys<T>(
        accessor: &Accessor<T, Self>,
        store: Resource<KvStore>,
    ) -> wasmtime::Result<(StreamReader<String>, FutureReader<Result<(), KvError>>)> {
        let (keys, result) = match open_store(accessor, &store) {
            Ok((label, backend)) => match backend.keys(&label).await {
                Ok(keys) => (keys, Ok(())),
                Err(error) => (Vec::new(), Err(other(error))),
            },
            Err(error) => (Vec::new(), Err(error)),
        };
        accessor.with(|mut access| {
            let stream = StreamReader::new(&mut access, keys)?;
            let future =
                FutureReader::new(
                    &mut access,
                    async move { wasmtime::Result::<_>::Ok(result) },
                )?;
            Ok((stream, future))
        })
    }
}

impl kv::HostStore for &mut State {
    fn drop(&mut self, store: Resource<KvStore>) -> wasmtime::Result<()> {
        self.table().delete(store)?;
        Ok(())
    }
}

impl kv::Host for &mut State {}

fn bucket_other(error: impl std::fmt::Display) -> BucketError {
    BucketError::Other(error.to_string())
}

impl State {
    /// The label and backend of an open bucket; an unknown handle is `no-such-store`, as in Spin.
    fn bucket(
        &mut self,
        bucket: &Resource<KvStore>,
    ) -> Result<(String, Arc<Backend>), BucketError> {
        let store = self
            .table()
            .get(bucket)
            .map_err(|_| BucketError::NoSuchStore)?;
        Ok((store.label.clone(), Arc::clone(&store.backend)))
    }

    /// Starts a compare-and-swap on `key` of an open bucket.
    fn new_cas(
        &mut self,
        bucket: &Resource<KvStore>,
        key: String,
    ) -> wasmtime::Result<Result<Resource<KvCas>, BucketError>> {
        let (label, backend) = match self.bucket(bucket) {
            Ok(open) => open,
            Err(error) => return Ok(Err(error)),
        };
        let cas = KvCas {
            label,
            backend,
            key,
            current: None,
        };
        Ok(Ok(self.table().push(cas)?))
    }

    /// Reads a compare-and-swap's current value and keeps it for its swap.
    async fn read_cas(
        &mut self,
        cas: &Resource<KvCas>,
    ) -> wasmtime::Result<Result<Option<Vec<u8>>, BucketError>> {
        let (label, backend, key) = {
            let cas = self.table().get(cas)?;
            (cas.label.clone(), Arc::clone(&cas.backend), cas.key.clone())
        };
        let value = match backend.get(&label, &key).await {
            Ok(value) => value,
            Err(error) => return Ok(Err(bucket_other(error))),
        };
        self.table().get_mut(cas)?.current.clone_from(&value);
        if let Err(reason) = check_host_buffer(value_size(&value)) {
            return Ok(Err(BucketError::Other(reason)));
        }
        Ok(Ok(value))
    }
}

impl bucket::Host for &mut State {
    async fn open(
        &mut self,
        identifier: String,
    ) -> wasmtime::Result<Result<Resource<KvStore>, BucketError>> {
        if !self
            .component()
            .config
            .key_value_stores
            .contains(&identifier)
        {
            return Ok(Err(BucketError::AccessDenied));
        }
        let Some(backend) = self.stores().get(&identifier).cloned() else {
            return Ok(Err(BucketError::NoSuchStore));
        };
        let store = self.table().push(KvStore {
            label: identifier,
            backend,
        })?;
        Ok(Ok(store))
    }
}

impl bucket::HostBucket for &mut State {
    async fn get(
        &mut self,
        bucket: Resource<KvStore>,
        key: String,
    ) -> wasmtime::Result<Result<Option<Vec<u8>>, BucketError>> {
        let (label, backend) = match self.bucket(&bucket) {
            Ok(open) => open,
            Err(error) => return Ok(Err(error)),
        };
        Ok(match backend.get(&label, &key).await {
            Ok(value) => check_host_buffer(value_size(&value))
                .map(|()| value)
                .map_err(BucketError::Other),
            Err(error) => Err(bucket_other(error)),
        })
    }

    async fn set(
        &mut self,
        bucket: Resource<KvStore>,
        key: String,
        value: Vec<u8>,
    ) -> wasmtime::Result<Result<(), BucketError>> {
        let (label, backend) = match self.bucket(&bucket) {
            Ok(open) => open,
            Err(error) => return Ok(Err(error)),
        };
        Ok(backend.set(&label, &key, value).await.map_err(bucket_other))
    }

    async fn delete(
        &mut self,
        bucket: Resource<KvStore>,
        key: String,
    ) -> wasmtime::Result<Result<(), BucketError>> {
        let (label, backend) = match self.bucket(&bucket) {
            Ok(open) => open,
            Err(error) => return Ok(Err(error)),
        };
        Ok(backend.delete(&label, &key).await.map_err(bucket_other))
    }

    async fn exists(
        &mut self,
        bucket: Resource<KvStore>,
        key: String,
    ) -> wasmtime::Result<Result<bool, BucketError>> {
        let (label, backend) = match self.bucket(&bucket) {
            Ok(open) => open,
            Err(error) => return Ok(Err(error)),
        };
        Ok(backend.exists(&label, &key).await.map_err(bucket_other))
    }

    async fn list_keys(
        &mut self,
        bucket: Resource<KvStore>,
        cursor: Option<String>,
    ) -> wasmtime::Result<Result<KeyResponse, BucketError>> {
        if cursor.is_some() {
            return Ok(Err(BucketError::Other(
                "list_keys: cursor not supported".to_owned(),
            )));
        }
        let (label, backend) = match self.bucket(&bucket) {
            Ok(open) => open,
            Err(error) => return Ok(Err(error)),
        };
        let keys = match backend.keys(&label).await {
            Ok(keys) => keys,
            Err(error) => return Ok(Err(bucket_other(error))),
        };
        let size = std::mem::size_of::<Vec<String>>()
            + keys
                .iter()
                .map(|key| std::mem::size_of::<String>() + key.len())
                .sum::<usize>();
        Ok(check_host_buffer(size)
            .map(|()| KeyResponse { keys, cursor: None })
            .map_err(BucketError::Other))
    }

    async fn drop(&mut self, bucket: Resource<KvStore>) -> wasmtime::Result<()> {
        self.table().delete(bucket)?;
        Ok(())
    }
}

impl batch::Host for &mut State {
    async fn get_many(
        &mut self,
        bucket: Resource<KvStore>,
        keys: Vec<String>,
    ) -> wasmtime::Result<Result<Vec<(String, Option<Vec<u8>>)>, BucketError>> {
        let (label, backend) = match self.bucket(&bucket) {
            Ok(open) => open,
            Err(error) => return Ok(Err(error)),
        };
        if keys.is_empty() {
            return Ok(Ok(Vec::new()));
        }
        let found = match backend.get_many(&label, keys).await {
            Ok(found) => found,
            Err(error) => return Ok(Err(bucket_other(error))),
        };
        let size = std::mem::size_of::<Vec<String>>()
            + found
                .iter()
                .map(|(key, value)| {
                    std::mem::size_of::<(String, Option<Vec<u8>>)>()
                        + key.len()
                        + value.as_ref().map_or(0, Vec::len)
                })
                .sum::<usize>();
        Ok(check_host_buffer(size)
            .map(|()| found)
            .map_err(BucketError::Other))
    }

    async fn set_many(
        &mut self,
        bucket: Resource<KvStore>,
        key_values: Vec<(String, Vec<u8>)>,
    ) -> wasmtime::Result<Result<(), BucketError>> {
        let (label, backend) = match self.bucket(&bucket) {
            Ok(open) => open,
            Err(error) => return Ok(Err(error)),
        };
        if key_values.is_empty() {
            return Ok(Ok(()));
        }
        Ok(backend
            .set_many(&label, key_values)
            .await
            .map_err(bucket_other))
    }

    async fn delete_many(
        &mut self,
        bucket: Resource<KvStore>,
        keys: Vec<String>,
    ) -> wasmtime::Result<Result<(), BucketError>> {
        let (label, backend) = match self.bucket(&bucket) {
            Ok(open) => open,
            Err(error) => return Ok(Err(error)),
        };
        if keys.is_empty() {
            return Ok(Ok(()));
        }
        Ok(backend
            .delete_many(&label, keys)
            .await
            .map_err(bucket_other))
    }
}

impl atomics::HostCas for &mut State {
    async fn new(
        &mut self,
        bucket: Resource<KvStore>,
        key: String,
    ) -> wasmtime::Result<Result<Resource<KvCas>, BucketError>> {
        self.new_cas(&bucket, key)
    }

    async fn current(
        &mut self,
        cas: Resource<KvCas>,
    ) -> wasmtime::Result<Result<Option<Vec<u8>>, BucketError>> {
        self.read_cas(&cas).await
    }

    async fn drop(&mut self, cas: Resource<KvCas>) -> wasmtime::Result<()> {
        self.table().delete(cas)?;
        Ok(())
    }
}

impl atomics::Host for &mut State {
    async fn increment(
        &mut self,
        bucket: Resource<KvStore>,
        key: String,
        delta: i64,
    ) -> wasmtime::Result<Result<i64, BucketError>> {
        let (label, backend) = match self.bucket(&bucket) {
            Ok(open) => open,
            Err(error) => return Ok(Err(error)),
        };
        Ok(backend
            .increment(&label, &key, delta)
            .await
            .map_err(bucket_other))
    }

    async fn swap(
        &mut self,
        cas: Resource<KvCas>,
        value: Vec<u8>,
    ) -> wasmtime::Result<Result<(), CasError>> {
        let KvCas {
            label,
            backend,
            key,
            current,
        } = self.table().delete(cas)?;
        match backend.swap(&label, &key, current, value).await {
            Ok(true) => Ok(Ok(())),
            Err(error) => Ok(Err(CasError::StoreError(bucket_other(error)))),
            Ok(false) => {
                let again = self.table().push(KvCas {
                    label,
                    backend,
                    key,
                    current: None,
                })?;
                match self.read_cas(&again).await? {
                    Ok(_) => Ok(Err(CasError::CasFailed(again))),
                    Err(error) => {
                        self.table().delete(again)?;
                        Ok(Err(CasError::StoreError(error)))
                    }
                }
            }
        }
    }
}

impl variables::HostWithStore for SpinApi {
    async fn get<T>(
        accessor: &Accessor<T, Self>,
        name: String,
    ) -> wasmtime::Result<Result<String, VariableError>> {
        if let Err(reason) = validate_variable_name(&name) {
            return Ok(Err(VariableError::InvalidName(reason)));
        }
        Ok(accessor.with(|mut access| {
            let component = access.get().component();
            match component.config.variables.get(&name) {
                Some(value) => Ok(value.clone()),
                None => Err(VariableError::Undefined(format!(
                    "no variable for {:?}.{name:?}",
                    component.id()
                ))),
            }
        }))
    }
}

/// Spin's rule for a variable name, with its words (`Key::validate` in Spin's `expressions` crate):
/// lowercase letters, digits and single underscores, starting with a letter and ending with a letter
/// or digit.
fn validate_variable_name(name: &str) -> Result<(), String> {
    let reason = if name.is_empty() {
        "must not be empty".to_owned()
    } else if let Some(invalid) = name
        .chars()
        .find(|c| !(c.is_ascii_lowercase() || c.is_ascii_digit() || *c == '_'))
    {
        format!(
            "invalid character {invalid:?}. Variable names may contain only lower-case letters, \
             numbers, and underscores."
        )
    } else if !name.as_bytes()[0].is_ascii_lowercase() {
        "must start with a lowercase ASCII letter".to_owned()
    } else if !name.as_bytes()[name.len() - 1].is_ascii_alphanumeric() {
        "must end with a lowercase ASCII letter or digit".to_owned()
    } else if name.contains("__") {
        "must not contain multiple consecutive underscores".to_owned()
    } else {
        return Ok(());
    };
    Err(format!("{name:?}: {reason}"))
}

impl variables::Host for &mut State {}
