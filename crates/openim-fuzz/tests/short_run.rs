//! A short fuzzing run of every target, on stable, in the default test run: the committed corpus
//! (`corpus/<target>/`: seeds and every input that once failed) is replayed, then mutated
//! (bit flips, byte changes, insertions, deletions, truncations, splices of two inputs) for a
//! few seconds. Longer runs, with coverage guidance: `cargo +nightly fuzz run <target>` (see
//! README, "Fuzzing"). A failing input is written to `target/fuzz-failures/` to be committed
//! under `corpus/<target>/` as a regression case.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use openim_fuzz::TARGETS;

/// Time each target is mutated for (`OPENIM_FUZZ_SECS` overrides).
const DEFAULT_SECS: u64 = 3;

fn corpus_dir(target: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("corpus").join(target)
}

fn corpus(target: &str) -> Vec<Vec<u8>> {
    let mut files: Vec<_> = std::fs::read_dir(corpus_dir(target))
        .unwrap_or_else(|e| panic!("{}: {e}", corpus_dir(target).display()))
        .map(|e| e.unwrap().path())
        .collect();
    files.sort();
    files.iter().map(|p| std::fs::read(p).unwrap()).collect()
}

/// xorshift64*: deterministic per target, so a failure reproduces.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n.max(1) as u64) as usize
    }
}

fn mutate(rng: &mut Rng, input: &[u8], other: &[u8]) -> Vec<u8> {
    let mut v = input.to_vec();
    for _ in 0..=rng.below(4) {
        let at = rng.below(v.len() + 1);
        let last = v.len().saturating_sub(1);
        match rng.below(7) {
            0 if !v.is_empty() => v[at.min(last)] ^= 1 << rng.below(8),
            1 if !v.is_empty() => v[at.min(last)] = rng.next() as u8,
            2 => v.insert(at, rng.next() as u8),
            3 if at < v.len() => {
                v.remove(at);
            }
            4 => v.truncate(at),
            5 => {
                let from = rng.below(other.len() + 1);
                v.splice(at..at, other[from..].iter().take(rng.below(64)).copied());
            }
            _ if !v.is_empty() => {
                // An "interesting" value: lengths and counts at their edges.
                let edge = [0u8, 1, 0x7f, 0x80, 0xff, 0xfe][rng.below(6)];
                v[at.min(last)] = edge;
            }
            _ => v.push(rng.next() as u8),
        }
    }
    v
}

/// How many inputs ran, or the failure.
fn run(name: &str, target: fn(&[u8]), secs: u64) -> Result<usize, String> {
    let seeds = corpus(name);
    if seeds.is_empty() {
        return Err(format!("corpus/{name} is empty"));
    }
    let failing = |input: &[u8]| std::panic::catch_unwind(|| target(input)).is_err();
    for (i, s) in seeds.iter().enumerate() {
        if failing(s) {
            return Err(format!("{name}: corpus input {i} fails"));
        }
    }
    let mut rng = Rng(0x9E37_79B9_7F4A_7C15 ^ name.len() as u64 ^ (name.as_bytes()[0] as u64) << 32);
    let deadline = Instant::now() + Duration::from_secs(secs);
    let mut pool = seeds.clone();
    let mut runs = 0;
    while Instant::now() < deadline {
        for _ in 0..256 {
            let (a, b) = (rng.below(pool.len()), rng.below(pool.len()));
            let input = mutate(&mut rng, &pool[a], &pool[b]);
            if failing(&input) {
                let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../target/fuzz-failures").join(name);
                std::fs::create_dir_all(&dir).unwrap();
                let file = dir.join(format!("crash-{runs}"));
                std::fs::write(&file, &input).unwrap();
                return Err(format!("{name}: input {input:?} fails (written to {})", file.display()));
            }
            // Keep some mutants as parents, so mutations compound.
            if pool.len() < 512 && rng.below(16) == 0 {
                pool.push(input);
            }
            runs += 1;
        }
    }
    Ok(runs)
}

#[test]
fn every_target_survives_its_corpus_and_a_short_mutation_run() {
    let secs = std::env::var("OPENIM_FUZZ_SECS").ok().and_then(|s| s.parse().ok()).unwrap_or(DEFAULT_SECS);
    for (name, target) in TARGETS {
        // The targets report through panics: quiet while they run, the failure told after.
        let default = std::panic::take_hook();
        std::panic::set_hook(Box::new(|_| {}));
        let result = run(name, *target, secs);
        std::panic::set_hook(default);
        let runs = result.unwrap_or_else(|e| panic!("{e}"));
        eprintln!("fuzz {name}: {runs} inputs in {secs} s");
        assert!(runs > 1000, "{name}: only {runs} inputs");
    }
}

/// Writes each target's seeds into its corpus directory (run once when a target is added:
/// `cargo test -p openim-fuzz -- --ignored write_seeds`).
#[test]
#[ignore = "writes the seed corpus into the source tree"]
fn write_seeds() {
    for (name, _) in TARGETS {
        let dir = corpus_dir(name);
        std::fs::create_dir_all(&dir).unwrap();
        for (i, seed) in openim_fuzz::seeds(name).iter().enumerate() {
            std::fs::write(dir.join(format!("seed-{i:02}")), seed).unwrap();
        }
    }
}
