//! The compiled-component cache: a component is compiled by Cranelift once per content and engine
//! configuration, and later starts load the machine code from a file, as Spin does with wasmtime's
//! own cache.
//!
//! The cache lives in a folder of the user's (`$XDG_CACHE_HOME/rcs-edge`, else `~/.cache/rcs-edge`).
//! A file's name is the SHA-256 of the component's bytes and of the engine's compatibility hash, so a
//! changed component, a changed engine setting or another wasmtime version never reads a stale
//! entry. Entries are written to a temporary file and renamed into place, so a crash leaves no
//! half-written entry, and an entry that does not load is compiled again and replaced. Writing an
//! entry keeps the [`KEPT_ENTRIES`] newest and removes the rest, so rebuilds do not fill the disk.

use std::hash::{Hash, Hasher};
use std::path::{Path, PathBuf};

use sha2::{Digest, Sha256};
use wasmtime::component::Component;
use wasmtime::error::Context as _;
use wasmtime::{Engine, Result};

/// How many compiled components the cache keeps (a few builds of every component of an app).
pub const KEPT_ENTRIES: usize = 32;

/// The default cache folder, if the environment names a home or cache folder.
pub fn default_dir() -> Option<PathBuf> {
    let base = std::env::var_os("XDG_CACHE_HOME")
        .filter(|dir| !dir.is_empty())
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|home| PathBuf::from(home).join(".cache")))?;
    Some(base.join("rcs-edge"))
}

/// Loads the component at `source`: from `cache` when it holds this exact compilation, else
/// compiled, and then stored in `cache` (a cache that cannot be written is only reported).
pub fn load(engine: &Engine, source: &Path, cache: Option<&Path>) -> Result<Component> {
    let bytes = std::fs::read(source).with_context(|| format!("reading {}", source.display()))?;
    let Some(cache) = cache else {
        return Component::new(engine, &bytes);
    };
    let entry = cache.join(format!("{}.cwasm", entry_name(engine, &bytes)));
    if entry.is_file() {
        // SAFETY: the entry was written by `Component::serialize` of this very engine configuration
        // (its name covers the engine's compatibility hash) into the user's own cache folder, which
        // is trusted as much as the binary; wasmtime still checks the header before loading it.
        match unsafe { Component::deserialize_file(engine, &entry) } {
            Ok(component) => return Ok(component),
            Err(error) => eprintln!(
                "compiling {} again: the cached {} does not load ({error})",
                source.display(),
                entry.display()
            ),
        }
    }
    let component = Component::new(engine, &bytes)?;
    if let Err(error) = store(&component, &entry) {
        eprintln!("not caching {}: {error:#}", source.display());
    }
    Ok(component)
}

/// The entry's name: SHA-256 over the engine's compatibility hash and the component's bytes.
fn entry_name(engine: &Engine, bytes: &[u8]) -> String {
    let mut compatibility = std::hash::DefaultHasher::new();
    engine
        .precompile_compatibility_hash()
        .hash(&mut compatibility);
    let mut digest = Sha256::new();
    digest.update(compatibility.finish().to_le_bytes());
    digest.update(bytes);
    hex::encode(digest.finalize())
}

fn store(component: &Component, entry: &Path) -> Result<()> {
    let folder = entry.parent().context("the entry has a folder")?;
    std::fs::create_dir_all(folder).with_context(|| format!("creating {}", folder.display()))?;
    let compiled = component.serialize()?;
    let partial = tempfile_in(folder);
    std::fs::write(&partial, compiled).with_context(|| format!("writing {}", partial.display()))?;
    std::fs::rename(&partial, entry).with_context(|| format!("renaming to {}", entry.display()))?;
    prune(folder, KEPT_ENTRIES);
    Ok(())
}

/// Removes all but the `keep` most recently written entries of `folder`, and temporary files an
/// interrupted start left behind more than an hour ago.
fn prune(folder: &Path, keep: usize) {
    let Ok(listing) = std::fs::read_dir(folder) else {
        return;
    };
    let mut entries = Vec::new();
    for file in listing.flatten() {
        let path = file.path();
        let Some(written) = file.metadata().and_then(|m| m.modified()).ok() else {
            continue;
        };
        let name = file.file_name();
        if name.to_string_lossy().starts_with(".partial-") {
            if written.elapsed().is_ok_and(|age| age.as_secs() > 3600) {
                let _ = std::fs::remove_file(&path);
            }
        } else if path.extension().is_some_and(|ext| ext == "cwasm") {
            entries.push((written, path));
        }
    }
    entries.sort_by_key(|entry| std::cmp::Reverse(entry.0));
    for (_, stale) in entries.into_iter().skip(keep) {
        let _ = std::fs::remove_file(stale);
    }
}

/// A name for a temporary file in `folder`, unique to this process and call.
fn tempfile_in(folder: &Path) -> PathBuf {
    static NEXT: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
    let n = NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    folder.join(format!(".partial-{}-{n}", std::process::id()))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The smallest component: the preamble of the component binary format, nothing else.
    const EMPTY_COMPONENT: &[u8] = b"\0asm\x0d\x00\x01\x00";
    /// The same with a custom section named `x` (id 0, size 2, name length 1, `x`).
    const NAMED_COMPONENT: &[u8] = b"\0asm\x0d\x00\x01\x00\x00\x02\x01x";

    #[test]
    fn a_component_is_compiled_once_and_then_loaded_from_the_cache() {
        let dir = tempfile::tempdir().unwrap();
        let source = dir.path().join("c.wasm");
        std::fs::write(&source, EMPTY_COMPONENT).unwrap();
        let cache = dir.path().join("cache");
        let engine = Engine::default();
        load(&engine, &source, Some(&cache)).unwrap();
        let entries: Vec<_> = std::fs::read_dir(&cache).unwrap().flatten().collect();
        assert_eq!(entries.len(), 1, "one entry, no temporary file left");
        let entry = entries[0].path();
        assert_eq!(entry.extension().unwrap(), "cwasm");
        let written = std::fs::metadata(&entry).unwrap().modified().unwrap();
        load(&engine, &source, Some(&cache)).unwrap();
        assert_eq!(
            std::fs::metadata(&entry).unwrap().modified().unwrap(),
            written,
            "the second load reads the entry"
        );
    }

    #[test]
    fn a_broken_entry_is_compiled_again_and_replaced() {
        let dir = tempfile::tempdir().unwrap();
        let source = dir.path().join("c.wasm");
        let bytes = EMPTY_COMPONENT;
        std::fs::write(&source, bytes).unwrap();
        let cache = dir.path().join("cache");
        let engine = Engine::default();
        let entry = cache.join(format!("{}.cwasm", entry_name(&engine, bytes)));
        std::fs::create_dir_all(&cache).unwrap();
        std::fs::write(&entry, b"not machine code").unwrap();
        load(&engine, &source, Some(&cache)).unwrap();
        assert_ne!(std::fs::read(&entry).unwrap(), b"not machine code");
    }

    #[test]
    fn only_the_newest_entries_are_kept() {
        let dir = tempfile::tempdir().unwrap();
        for n in 0..5u64 {
            let path = dir.path().join(format!("{n}.cwasm"));
            std::fs::write(&path, b"x").unwrap();
            let written = std::time::SystemTime::UNIX_EPOCH + std::time::Duration::from_secs(n);
            std::fs::File::options()
                .write(true)
                .open(&path)
                .unwrap()
                .set_modified(written)
                .unwrap();
        }
        std::fs::write(dir.path().join("notes.txt"), b"kept").unwrap();
        prune(dir.path(), 2);
        let mut left: Vec<String> = std::fs::read_dir(dir.path())
            .unwrap()
            .flatten()
            .map(|f| f.file_name().to_string_lossy().into_owned())
            .collect();
        left.sort();
        assert_eq!(left, ["3.cwasm", "4.cwasm", "notes.txt"]);
    }

    #[test]
    fn another_component_gets_another_entry() {
        let engine = Engine::default();
        assert_ne!(
            entry_name(&engine, EMPTY_COMPONENT),
            entry_name(&engine, NAMED_COMPONENT)
        );
        assert_eq!(
            entry_name(&engine, EMPTY_COMPONENT),
            entry_name(&engine, EMPTY_COMPONENT)
        );
    }
}
