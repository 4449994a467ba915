//! MSRP throughput: parsing and encoding a 64 KiB SEND chunk, and reassembling a 10 MiB message
//! from 64 KiB chunks (in order, shuffled, every chunk twice). Run with
//! `cargo bench -p rcs-core --bench msrp -- --warm-up-time 1 --measurement-time 3`.

use std::hint::black_box;

use bytes::Bytes;
use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use rcs_core::msrp::{
    Chunker, Continuation, Limits, MsrpUri, Reassembly, Request, Status, parse, parse_message,
};
use rcs_core::ranges::RangeSet;

const CHUNK: u64 = 64 * 1024;
const MESSAGE: u64 = 10 * 1024 * 1024;

fn chunker(total: u64) -> Chunker {
    let to: MsrpUri = "msrps://df7jal23ls0d.invalid:2855/98cjs;ws"
        .parse()
        .unwrap();
    let from: MsrpUri = "msrps://as.example.com:443/k2n8s1xq;ws".parse().unwrap();
    Chunker::new(
        "f81d4fae7dec11d0a765",
        "application/octet-stream",
        Some(total),
        CHUNK,
        vec![to],
        vec![from],
    )
    .unwrap()
    .with_header("Success-Report", "yes")
    .unwrap()
}

/// Deterministic, cheap pseudo-random bytes (so the body is not all one value).
fn payload(len: usize) -> Bytes {
    rcs_testkit::file_bytes(len, 0x9e37_79b9_7f4a_7c15)
}

fn one_chunk() -> Request {
    let data = payload(3 * CHUNK as usize);
    chunker(3 * CHUNK)
        .request(
            "b7e1f0a9c3d24e6f",
            CHUNK..2 * CHUNK,
            Continuation::More,
            data.slice(CHUNK as usize..2 * CHUNK as usize),
        )
        .unwrap()
}

fn bench_parse(c: &mut Criterion) {
    let mut wire = Vec::new();
    one_chunk().encode(&mut wire);
    let wire = Bytes::from(wire);
    let limits = Limits::default();
    let mut group = c.benchmark_group("msrp_parse");
    group.throughput(Throughput::Bytes(wire.len() as u64));
    group.bench_function("send_64k_stream", |b| {
        b.iter(|| match parse(black_box(&wire), &limits) {
            Ok(Status::Complete { frame, consumed }) => (frame, consumed),
            other => panic!("{other:?}"),
        })
    });
    group.bench_function("send_64k_ws_message", |b| {
        b.iter(|| parse_message(black_box(&wire), &limits).unwrap())
    });
    group.finish();
}

fn bench_encode(c: &mut Criterion) {
    let request = one_chunk();
    let len = request.encoded_len();
    let mut out = Vec::with_capacity(len);
    let mut group = c.benchmark_group("msrp_encode");
    group.throughput(Throughput::Bytes(len as u64));
    group.bench_function("send_64k_whole", |b| {
        b.iter(|| {
            out.clear();
            black_box(&request).encode(&mut out);
            black_box(out.len())
        })
    });
    // The zero-copy path: head and tail into the buffer, the body sent from its own Bytes.
    group.bench_function("send_64k_head_and_tail", |b| {
        b.iter(|| {
            out.clear();
            let request = black_box(&request);
            request.encode_head(&mut out);
            request.encode_tail(&mut out);
            black_box((out.len(), request.body.as_ref().map(Bytes::len)))
        })
    });
    group.finish();
}

fn bench_reassembly(c: &mut Criterion) {
    let data = payload(MESSAGE as usize);
    let chunker = chunker(MESSAGE);
    let chunks: Vec<Request> = chunker
        .ranges()
        .enumerate()
        .map(|(i, (range, flag))| {
            let body = data.slice(range.start as usize..range.end as usize);
            chunker
                .request(&format!("tid{i:08}"), range, flag, body)
                .unwrap()
        })
        .collect();
    let mut shuffled: Vec<&Request> = chunks.iter().collect();
    let mut state = 0x2545_f491_4f6c_dd1d_u64;
    for i in (1..shuffled.len()).rev() {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        shuffled.swap(i, (state % (i as u64 + 1)) as usize);
    }
    let in_order: Vec<&Request> = chunks.iter().collect();
    let doubled: Vec<&Request> = shuffled.iter().flat_map(|r| [*r, *r]).collect();

    let mut group = c.benchmark_group("msrp_reassembly_10MiB");
    group.throughput(Throughput::Bytes(MESSAGE));
    for (name, order) in [
        ("in_order", &in_order),
        ("shuffled", &shuffled),
        ("duplicates", &doubled),
    ] {
        group.bench_function(name, |b| {
            b.iter(|| {
                let mut r = Reassembly::new("f81d4fae7dec11d0a765", MESSAGE);
                for chunk in order.iter() {
                    black_box(r.on_chunk(chunk).unwrap());
                }
                assert!(r.is_complete());
            })
        });
    }
    let ranges: Vec<(u64, u64)> = shuffled
        .iter()
        .map(|r| (r.body_offsets().start, r.body_offsets().end))
        .collect();
    group.bench_function("byte_range_set_shuffled", |b| {
        b.iter(|| {
            let mut set = RangeSet::new();
            for &(start, end) in &ranges {
                black_box(set.insert(start..end).unwrap());
            }
            assert!(set.is_complete(MESSAGE));
        })
    });
    group.finish();
}

criterion_group!(benches, bench_parse, bench_encode, bench_reassembly);
criterion_main!(benches);
