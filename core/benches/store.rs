//! Throughput of the store layout: an upload written through `UploadWriter` into the in-memory store
//! (chunking, running SHA-256, manifest), beside plain SHA-256 of the same bytes and beside the
//! system's `sha256sum` reading them from a file, all measured in the same run.

use std::hint::black_box;
use std::io::Write;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use bytes::Bytes;
use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use rcs_core::store::{
    FileDescription, LayoutConfig, MemoryStore, StoreOp, UploadState, UploadWriter, apply,
};
use rcs_core::time::Timestamp;
use sha2::{Digest, Sha256};

const FILE_SIZE: usize = 64 << 20;
const PIECE: usize = 64 << 10;

fn file_bytes() -> Bytes {
    (0..FILE_SIZE)
        .map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8)
        .collect::<Vec<u8>>()
        .into()
}

fn upload(data: &Bytes, chunk_size: u32) -> MemoryStore {
    let config = LayoutConfig {
        chunk_size,
        max_file_size: 1 << 40,
        ..LayoutConfig::default()
    };
    let now = Timestamp::from_unix_secs(1_800_000_000);
    let file = FileDescription {
        size: data.len() as u64,
        name: None,
        content_type: "application/octet-stream".into(),
        sha256: None,
    };
    let mut store = MemoryStore::with_value_limit(1 << 20);
    let state = UploadState::new(
        "bench".into(),
        "bench-chunks".into(),
        file,
        &config,
        1 << 20,
        now,
    )
    .expect("valid upload");
    let mut writer = UploadWriter::new(state, config, now);
    for offset in (0..data.len()).step_by(PIECE) {
        writer
            .write(
                offset as u64,
                data.slice(offset..(offset + PIECE).min(data.len())),
            )
            .expect("in bounds");
        while let Some(op) = writer.poll_op() {
            let key = match &op {
                StoreOp::Get { key } => Some(key.clone()),
                _ => None,
            };
            let value = apply(&mut store, op).expect("memory store");
            if let Some(key) = key {
                writer.on_value(&key, value).expect("asked for");
            }
        }
    }
    assert!(writer.poll_event().is_some(), "upload completes");
    store
}

fn sha256sum(path: &std::path::Path) -> Duration {
    let start = Instant::now();
    let status = Command::new("sha256sum")
        .arg(path)
        .stdout(Stdio::null())
        .status()
        .expect("sha256sum runs");
    assert!(status.success());
    start.elapsed()
}

fn bench(c: &mut Criterion) {
    let data = file_bytes();
    let mut file = tempfile();
    file.1.write_all(&data).expect("temp file written");
    file.1.flush().expect("temp file flushed");

    let mut group = c.benchmark_group("sha256 of 64 MiB");
    group.throughput(Throughput::Bytes(FILE_SIZE as u64));
    group.sample_size(10);
    group.bench_function("sha2 crate", |b| {
        b.iter(|| black_box(Sha256::digest(&data)))
    });
    group.bench_function("sha256sum (coreutils, from page cache)", |b| {
        b.iter_custom(|iters| (0..iters).map(|_| sha256sum(&file.0)).sum())
    });
    group.bench_function("store layout upload, 64 KiB chunks", |b| {
        b.iter(|| black_box(upload(&data, 64 << 10)))
    });
    group.bench_function(
        "store layout upload, 256 KiB chunks (read-modify-write)",
        |b| b.iter(|| black_box(upload(&data, 256 << 10))),
    );
    group.finish();
    let _ = std::fs::remove_file(&file.0);
}

fn tempfile() -> (std::path::PathBuf, std::fs::File) {
    let path = std::env::temp_dir().join(format!("rcs-core-bench-{}.bin", std::process::id()));
    let file = std::fs::File::create(&path).expect("temp file created");
    (path, file)
}

criterion_group!(benches, bench);
criterion_main!(benches);
