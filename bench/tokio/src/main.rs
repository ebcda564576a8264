//! tokio-peer - urt's benchmark workloads written the way Tokio users write
//! them, on Tokio's single-threaded (`current_thread`) runtime.
//!
//! Run as `tokio-peer WORKLOAD ARGS...`; bench/README.md defines the
//! workloads, the `RESULT name value` lines on stdout and the exit codes
//! (3 with `UNSUPPORTED x` for a workload not implemented here, 0 with
//! `SKIP x reason` for one that cannot run on this machine).
//!
//! It must build with Debian bookworm's rustc 1.63 as well as a current one,
//! and against bookworm's tokio 1.24.

use std::io::{self, Write};
use std::os::unix::fs::{FileExt, OpenOptionsExt};
use std::process::exit;
use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::signal::unix::{signal, SignalKind};
use tokio::task::JoinHandle;

/// Exit status of a workload this program does not implement.
const UNSUPPORTED: i32 = 3;
/// Exit status of a malformed command line.
const USAGE: i32 = 2;

const BLOCK: usize = 4096;

fn result(name: &str, value: f64) {
    let mut out = io::stdout().lock();
    // A closed stdout is the runner's problem, not a reason to panic.
    let _ = writeln!(out, "RESULT {} {:.3}", name, value);
    let _ = out.flush();
}

fn fail(msg: &str) -> ! {
    eprintln!("tokio-peer: {}", msg);
    exit(1);
}

fn usage() -> ! {
    eprintln!(
        "usage: tokio-peer spawn N | switch N | sleepers N MS | timer N MS |\n\
         \x20      echo-server HOST:PORT | file PATH TASKS SECONDS DIRECT"
    );
    exit(USAGE);
}

/// ru_maxrss: the peak resident set so far, in KiB.
fn maxrss_kib() -> i64 {
    // SAFETY: getrusage only writes the struct it is given.
    unsafe {
        let mut ru: libc::rusage = std::mem::zeroed();
        libc::getrusage(libc::RUSAGE_SELF, &mut ru);
        ru.ru_maxrss as i64
    }
}

/// A count argument: decimal, and at least 1 (bench/common.h's bench_count).
fn count(arg: Option<&String>) -> usize {
    match arg.and_then(|s| s.parse::<usize>().ok()) {
        Some(n) if n > 0 => n,
        _ => usage(),
    }
}

fn ns(d: Duration) -> f64 {
    d.as_nanos() as f64
}

/// The p-th percentile (0 < p <= 100) of sorted samples, with the rank rule
/// of bench/hist.h (nearest rank, at least 1), but exact: no bucketing.
fn percentile(sorted: &[u64], p: f64) -> u64 {
    if sorted.is_empty() {
        return 0;
    }
    let rank = ((sorted.len() as f64 * p / 100.0 + 0.5) as usize).clamp(1, sorted.len());
    sorted[rank - 1]
}

// ---------------------------------------------------------------- spawn

async fn spawn_pass(n: usize) {
    let mut handles: Vec<JoinHandle<usize>> = Vec::with_capacity(n);
    for i in 0..n {
        handles.push(tokio::spawn(async move { i }));
    }
    for (i, handle) in handles.into_iter().enumerate() {
        let v = handle.await.unwrap_or_else(|e| fail(&format!("task {}: {}", i, e)));
        if v != i {
            fail(&format!("task {} returned {}", i, v));
        }
    }
}

async fn spawn_bench(n: usize) {
    spawn_pass(n).await; // warm-up, untimed
    let t0 = Instant::now();
    spawn_pass(n).await;
    let elapsed = t0.elapsed();
    result("spawn_ns_per_task", ns(elapsed) / n as f64);
    result("peak_rss_kib", maxrss_kib() as f64);
}

// ---------------------------------------------------------------- switch

async fn switch_bench(n: usize) {
    let half = n / 2;
    let t0 = Instant::now();
    let a = tokio::spawn(async move {
        for _ in 0..half {
            tokio::task::yield_now().await;
        }
    });
    let b = tokio::spawn(async move {
        for _ in 0..half {
            tokio::task::yield_now().await;
        }
    });
    a.await.unwrap();
    b.await.unwrap();
    let elapsed = t0.elapsed();
    result("switch_ns", ns(elapsed) / n as f64);
}

// ---------------------------------------------------------------- sleepers

async fn sleepers_bench(n: usize, ms: u64) {
    let period = Duration::from_millis(ms);
    let rss_before = maxrss_kib();
    let t0 = Instant::now();
    let handles: Vec<JoinHandle<()>> = (0..n)
        .map(|_| tokio::spawn(async move { tokio::time::sleep(period).await }))
        .collect();
    for handle in handles {
        handle.await.unwrap();
    }
    let elapsed = t0.elapsed();
    let rss_after = maxrss_kib();
    result("sleepers_overshoot_ms", ns(elapsed) / 1e6 - ms as f64);
    result(
        "sleepers_rss_per_task_bytes",
        (rss_after - rss_before) as f64 * 1024.0 / n as f64,
    );
}

// ---------------------------------------------------------------- timer

async fn timer_bench(n: usize, ms: u64) {
    let period = Duration::from_millis(ms);
    let mut overshoot_ns: Vec<u64> = Vec::with_capacity(n);
    for _ in 0..n {
        let t0 = Instant::now();
        tokio::time::sleep(period).await;
        let slept = t0.elapsed();
        overshoot_ns.push(slept.saturating_sub(period).as_nanos() as u64);
    }
    overshoot_ns.sort_unstable();
    result("timer_p50_us", percentile(&overshoot_ns, 50.0) as f64 / 1e3);
    result("timer_p99_us", percentile(&overshoot_ns, 99.0) as f64 / 1e3);
    result("timer_p999_us", percentile(&overshoot_ns, 99.9) as f64 / 1e3);
}

// ---------------------------------------------------------------- echo-server

async fn echo(mut socket: TcpStream) {
    let mut buf = vec![0u8; 64 * 1024];
    loop {
        let n = match socket.read(&mut buf).await {
            Ok(0) | Err(_) => return,
            Ok(n) => n,
        };
        if socket.write_all(&buf[..n]).await.is_err() {
            return;
        }
    }
}

async fn echo_server(addr: &str) -> io::Result<()> {
    // SIGTERM or SIGINT ends the server, exit status 0.  The handlers are in
    // place before the "listening" line, so a signal sent as soon as the
    // line is read is not lost.
    for kind in [SignalKind::terminate(), SignalKind::interrupt()] {
        let mut sig = signal(kind)?;
        tokio::spawn(async move {
            sig.recv().await;
            exit(0);
        });
    }

    let listener = TcpListener::bind(addr).await?;
    {
        let mut out = io::stdout().lock();
        writeln!(out, "listening on {}", listener.local_addr()?)?;
        out.flush()?;
    }

    loop {
        match listener.accept().await {
            Ok((socket, _)) => {
                let _ = socket.set_nodelay(true);
                tokio::spawn(echo(socket));
            }
            // Out of descriptors, a connection reset before it was accepted:
            // the server carries on with the others.
            Err(e) => eprintln!("tokio-peer: accept: {}", e),
        }
    }
}

// ---------------------------------------------------------------- file

/// One 4 KiB block, aligned as O_DIRECT wants its buffers.
#[repr(C, align(4096))]
struct Block([u8; BLOCK]);

/// xorshift64: each task's own stream of offsets.
fn xorshift(state: &mut u64) -> u64 {
    let mut x = *state;
    x ^= x << 13;
    x ^= x >> 7;
    x ^= x << 17;
    *state = x;
    x
}

fn skip_no_direct() -> ! {
    println!("SKIP file O_DIRECT not supported here");
    let _ = io::stdout().flush();
    exit(0);
}

/// Tokio has no asynchronous file I/O: tokio::fs runs each call on the
/// blocking thread pool.  Tokio users who care about speed do the same by
/// hand with a shared std::fs::File and positioned reads, as here, which
/// spares tokio::fs::File's seek and buffer copy.
async fn file_bench(path: &str, tasks: usize, seconds: f64, direct: bool) {
    let mut options = std::fs::OpenOptions::new();
    options.read(true);
    if direct {
        options.custom_flags(libc::O_DIRECT);
    }
    let file = match options.open(path) {
        Ok(f) => f,
        Err(e) if direct && e.raw_os_error() == Some(libc::EINVAL) => skip_no_direct(),
        Err(e) => fail(&format!("{}: {}", path, e)),
    };
    let size = file
        .metadata()
        .unwrap_or_else(|e| fail(&format!("{}: {}", path, e)))
        .len();
    let blocks = size / BLOCK as u64;
    if blocks == 0 {
        fail(&format!("{}: smaller than {} bytes", path, BLOCK));
    }
    let file = Arc::new(file);

    let t0 = Instant::now();
    let deadline = t0 + Duration::from_secs_f64(seconds);
    let handles: Vec<JoinHandle<Vec<u64>>> = (0..tasks)
        .map(|i| {
            let file = Arc::clone(&file);
            tokio::spawn(async move {
                // Seeded as urt.c and go/file.go seed theirs: 0x5eed + index.
                let mut rng = 0x5eed + i as u64;
                let mut block = Box::new(Block([0; BLOCK]));
                let mut latencies_ns = Vec::new();
                while Instant::now() < deadline {
                    let offset = (xorshift(&mut rng) % blocks) * BLOCK as u64;
                    let file = Arc::clone(&file);
                    let start = Instant::now();
                    let (read, back) = tokio::task::spawn_blocking(move || {
                        let read = file.read_at(&mut block.0, offset);
                        (read, block)
                    })
                    .await
                    .unwrap();
                    latencies_ns.push(start.elapsed().as_nanos() as u64);
                    block = back;
                    match read {
                        Ok(BLOCK) => {}
                        Ok(n) => fail(&format!("read of {} at {}: {} bytes", BLOCK, offset, n)),
                        Err(e) if direct && e.raw_os_error() == Some(libc::EINVAL) => {
                            skip_no_direct()
                        }
                        Err(e) => fail(&format!("read at {}: {}", offset, e)),
                    }
                }
                latencies_ns
            })
        })
        .collect();
    let mut all_ns: Vec<u64> = Vec::new();
    for handle in handles {
        all_ns.extend(handle.await.unwrap());
    }
    let elapsed = t0.elapsed();
    all_ns.sort_unstable();
    result("file_reads_per_s", all_ns.len() as f64 / elapsed.as_secs_f64());
    result("file_p99_us", percentile(&all_ns, 99.0) as f64 / 1e3);
}

// ---------------------------------------------------------------- main

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let workload = match args.get(1) {
        Some(w) => w.as_str(),
        None => usage(),
    };
    let arg = |i: usize| args.get(i + 1);

    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap_or_else(|e| fail(&format!("runtime: {}", e)));

    match workload {
        "spawn" => {
            let n = count(arg(1));
            runtime.block_on(spawn_bench(n));
        }
        "switch" => {
            let n = count(arg(1));
            runtime.block_on(switch_bench(n));
        }
        "sleepers" => {
            let (n, ms) = (count(arg(1)), count(arg(2)) as u64);
            runtime.block_on(sleepers_bench(n, ms));
        }
        "timer" => {
            let (n, ms) = (count(arg(1)), count(arg(2)) as u64);
            runtime.block_on(timer_bench(n, ms));
        }
        "echo-server" => {
            let addr = arg(1).unwrap_or_else(|| usage());
            if let Err(e) = runtime.block_on(echo_server(addr)) {
                fail(&format!("echo-server {}: {}", addr, e));
            }
        }
        "file" => {
            let path = arg(1).unwrap_or_else(|| usage());
            let tasks = count(arg(2));
            let seconds = match arg(3).and_then(|s| s.parse::<f64>().ok()) {
                Some(s) if s > 0.0 && s.is_finite() => s,
                _ => usage(),
            };
            let direct = match arg(4).map(|s| s.as_str()) {
                Some("0") => false,
                Some("1") => true,
                _ => usage(),
            };
            runtime.block_on(file_bench(path, tasks, seconds, direct));
        }
        other => {
            println!("UNSUPPORTED {}", other);
            let _ = io::stdout().flush();
            exit(UNSUPPORTED);
        }
    }
}
