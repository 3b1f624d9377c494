//! The hashing workers: one thread per hashing slot, each owning one argon2 memory block
//! that it reuses for every hash and verification.
//!
//! argon2id at the default parameters needs 19 MiB per run. Run on tokio's blocking pool,
//! each run allocated that on whichever pool thread picked it up, and the allocator kept the
//! freed buffers per thread: a login flood grew the process by hundreds of MiB. Here the
//! memory is allocated once per worker, so the hasher holds at most `concurrency` blocks of
//! the configured size, however many logins pass.

use std::sync::mpsc;
use std::sync::{Arc, Mutex};

use argon2::password_hash::phc::{Output, ParamsString, PasswordHash, Salt};
use argon2::{Algorithm, Argon2, Block, Params, Version};

/// A job for a worker: runs with the worker's memory.
pub(super) type Job = Box<dyn FnOnce(&mut Memory) + Send>;

/// A worker's argon2 memory: sized to the configured parameters on first use and kept.
#[derive(Default)]
pub(crate) struct Memory {
    blocks: Vec<Block>,
}

impl Memory {
    /// Memory for `params`: the kept block when it is large enough (grown to the configured
    /// size at most), else a block for this run only (a stored hash with costlier
    /// parameters than the configured ones, which an upgrade then replaces).
    fn run<T>(
        &mut self,
        params: &Params,
        configured: &Params,
        f: impl FnOnce(&mut [Block]) -> T,
    ) -> T {
        let needed = params.block_count();
        if needed <= configured.block_count().max(self.blocks.len()) {
            if self.blocks.len() < needed {
                self.blocks.resize(needed, Block::default());
            }
            f(&mut self.blocks[..needed])
        } else {
            let mut once = vec![Block::default(); needed];
            f(&mut once)
        }
    }
}

/// Lowers the calling thread's priority by `niceness` (Linux: nice(2) applies to the calling
/// thread only). A refusal is logged; the worker runs at normal priority then.
fn yield_priority(niceness: u8) {
    if niceness == 0 {
        return;
    }
    #[cfg(target_os = "linux")]
    if let Err(e) = rustix::process::nice(i32::from(niceness.min(19))) {
        tracing::warn!(error = %e, "could not lower a hashing worker's priority");
    }
}

/// Starts `count` workers taking jobs from one queue, each at `niceness`; they end when every
/// sender is gone.
pub(super) fn start(count: usize, niceness: u8) -> mpsc::Sender<Job> {
    let (tx, rx) = mpsc::channel::<Job>();
    let rx = Arc::new(Mutex::new(rx));
    for i in 0..count {
        let rx = rx.clone();
        let spawned = std::thread::Builder::new()
            .name(format!("crudauth-argon2-{i}"))
            .spawn(move || {
                yield_priority(niceness);
                let mut memory = Memory::default();
                loop {
                    let job = match rx.lock() {
                        Ok(rx) => rx.recv(),
                        Err(_) => return,
                    };
                    let Ok(job) = job else {
                        return; // the hasher is gone
                    };
                    // A job that panics (an app's verifier on a malformed row, say) costs its
                    // own request, never the worker: the thread and its slot live on.
                    let run = std::panic::AssertUnwindSafe(|| job(&mut memory));
                    if std::panic::catch_unwind(run).is_err() {
                        tracing::error!("a password hashing job panicked; the worker goes on");
                        memory = Memory::default();
                    }
                }
            });
        if let Err(e) = spawned {
            tracing::error!(error = %e, "could not start a password hashing worker");
        }
    }
    tx
}

fn argon(algorithm: Algorithm, version: Version, params: &Params) -> Argon2<'static> {
    Argon2::new(algorithm, version, params.clone())
}

/// An argon2id PHC string of `password` with a fresh random salt, in `memory`.
pub(crate) fn hash(memory: &mut Memory, params: &Params, password: &str) -> Option<String> {
    let mut salt = [0u8; 16];
    getrandom::fill(&mut salt).ok()?;
    let mut out = [0u8; Params::DEFAULT_OUTPUT_LEN];
    let hasher = argon(Algorithm::Argon2id, Version::V0x13, params);
    memory
        .run(params, params, |blocks| {
            hasher.hash_password_into_with_memory(password.as_bytes(), &salt, &mut out, blocks)
        })
        .ok()?;
    let phc = PasswordHash {
        algorithm: Algorithm::Argon2id.ident(),
        version: Some(Version::V0x13.into()),
        params: ParamsString::try_from(params).ok()?,
        salt: Some(Salt::new(&salt).ok()?),
        hash: Some(Output::new(&out).ok()?),
    };
    Some(phc.to_string())
}

/// `Some(matched)` for an argon2 (i, d or id) PHC string of any parameters, computed in
/// `memory`; `None` when `stored` is not one. The comparison is the constant-time one of
/// `password_hash::Output`.
pub(crate) fn verify(
    memory: &mut Memory,
    configured: &Params,
    stored: &str,
    password: &str,
) -> Option<bool> {
    let parsed = PasswordHash::new(stored).ok()?;
    let params = Params::try_from(&parsed).ok()?;
    // A stored hash names its own cost: one that asks for far more than the configured cost
    // (an import gone wrong, a planted row) is refused, not computed.
    let most_memory = configured.m_cost().max(256 * 1024);
    let most_passes = configured.t_cost().saturating_mul(10).max(10);
    if params.m_cost() > most_memory || params.t_cost() > most_passes || params.p_cost() > 16 {
        tracing::warn!("a stored argon2 hash asks for more than crudauth computes; refused");
        return None;
    }
    let algorithm = Algorithm::try_from(parsed.algorithm.as_str()).ok()?;
    let version = parsed
        .version
        .map_or(Some(Version::V0x13), |v| Version::try_from(v).ok())?;
    let (salt, expected) = (parsed.salt.as_ref()?, parsed.hash.as_ref()?);
    let mut out = vec![0u8; expected.len()];
    let hasher = argon(algorithm, version, &params);
    memory
        .run(&params, configured, |blocks| {
            hasher.hash_password_into_with_memory(password.as_bytes(), salt, &mut out, blocks)
        })
        .ok()?;
    Some(Output::new(&out).ok()? == *expected)
}
