//! The Spin interfaces the host gives components beside WASI: `spin:key-value/key-value@3.0.0` and
//! `spin:variables/variables@3.0.0` (the versions `spin-sdk` 6.0.0 imports; their WIT is in
//! `host/wit/`).
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
            default: store | trappable,
        },
        require_store_data_send: true,
        with: {
            "spin:key-value/key-value.store": super::KvStore,
        },
    });
}

use bindings::spin::key_value::key_value::{self as kv, Error as KvError};
use bindings::spin::variables::variables::{self, Error as VariableError};

/// An open key-value store, as the guest's `store` resource.
pub struct KvStore {
    label: String,
    backend: Arc<Backend>,
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
    Ok(())
}

fn other(error: impl std::fmt::Display) -> KvError {
    KvError::Other(error.to_string())
}

/// The most bytes Spin's host hands a guest in one key-value answer (`MAX_HOST_BUFFERED_BYTES` of
/// Spin's `world` crate, 128 MiB). Writes have no limit in Spin 4.0.2.
const MAX_HOST_BUFFERED_BYTES: usize = 128 << 20;

/// Refuses a value as Spin's SQLite and Redis backends do when it is over the host buffer.
fn within_host_buffer(value: Option<Vec<u8>>) -> Result<Option<Vec<u8>>, KvError> {
    let size = std::mem::size_of::<Option<Vec<u8>>>() + value.as_ref().map_or(0, Vec::len);
    if size > MAX_HOST_BUFFERED_BYTES {
        return Err(KvError::Other(format!(
            "query result exceeds limit of {MAX_HOST_BUFFERED_BYTES} bytes"
        )));
    }
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
