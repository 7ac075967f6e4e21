//! Log ingest: raw bytes to a sanitised line in the bounded buffer, for a
//! realistic mix (plain, JSON, coloured, a few hostile). Target: ≥ 1,000,000
//! lines/s.

use cockpit::domain::Timestamp;
use cockpit::domain::logs::{LogBuffer, LogLine, Track};
use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use std::sync::Arc;

fn corpus() -> Vec<Vec<u8>> {
    (0..10_000)
        .map(|k| match k % 20 {
            0..=11 => format!("INFO GET /api/cart/items/{k} 200 {}ms", k % 300).into_bytes(),
            12..=16 => format!(
                r#"{{"level":"info","msg":"request served","path":"/api/orders","status":200,"latency_ms":{}}}"#,
                k % 300
            )
            .into_bytes(),
            17 => format!("WARN slow request /api/checkout took {} ms", 300 + k % 500).into_bytes(),
            18 => b"\x1b[32mINFO\x1b[0m connection pool warmed up in \x1b[1m41 ms\x1b[0m".to_vec(),
            _ => b"ERROR upstream timeout \xff\xfe calling payments after 2000 ms".to_vec(),
        })
        .collect()
}

fn ingest(c: &mut Criterion) {
    let lines = corpus();
    let pod: Arc<str> = Arc::from("checkout-7d9f8c6b5-abcde");
    let mut group = c.benchmark_group("ingest");
    group.throughput(Throughput::Elements(lines.len() as u64));
    group.bench_function("sanitise + buffer, mixed lines", |b| {
        let mut buffer = LogBuffer::new(10_000);
        b.iter(|| {
            for raw in &lines {
                buffer.push(LogLine::from_raw(Timestamp(0), pod.clone(), Track::Primary, raw, 4096));
            }
        })
    });
    let plain: Vec<Vec<u8>> = lines.iter().filter(|l| l.starts_with(b"INFO")).cloned().collect();
    group.throughput(Throughput::Elements(plain.len() as u64));
    group.bench_function("sanitise + buffer, plain lines", |b| {
        let mut buffer = LogBuffer::new(10_000);
        b.iter(|| {
            for raw in &plain {
                buffer.push(LogLine::from_raw(Timestamp(0), pod.clone(), Track::Primary, raw, 4096));
            }
        })
    });
    group.finish();
}

criterion_group!(benches, ingest);
criterion_main!(benches);
