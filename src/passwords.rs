//! Password hashing (argon2id) on a fixed set of threads with a short, bounded queue.
//!
//! Each hash needs 19 MiB and tens of milliseconds of a core. Run on an unbounded pool, a flood
//! of bogus logins became gigabytes of memory and seconds of queueing for everyone. Here one
//! thread per core owns one reusable argon2 memory block, so memory is bounded by the thread
//! count; when the queue is full the caller hears [`Busy`] at once and can answer 429.

use std::sync::mpsc::{Receiver, SyncSender, TrySendError, sync_channel};
use std::sync::{Arc, Mutex, OnceLock};

use argon2::password_hash::{Ident, Output, ParamsString, PasswordHash, SaltString};
use argon2::{Algorithm, Argon2, Block, Params, Version};

use crate::crypto::{ct_eq, random_bytes};

/// Every hashing thread is busy and the queue is full: try again in a moment.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("too many password checks are in progress")]
pub struct Busy;

type Job = Box<dyn FnOnce(&mut Vec<Block>) + Send>;

/// Jobs that may wait per hashing thread.
const QUEUE_PER_THREAD: usize = 16;

/// The hashing threads and their queue. Cheap to clone; the threads end with the last clone.
#[derive(Clone)]
pub struct Passwords {
    jobs: SyncSender<Job>,
}

impl Default for Passwords {
    fn default() -> Self {
        Passwords::new(
            std::thread::available_parallelism()
                .map(|n| n.get())
                .unwrap_or(2),
        )
    }
}

impl Passwords {
    /// `threads` hashing threads (one 19 MiB block each) and a queue of 16 jobs per thread.
    pub fn new(threads: usize) -> Self {
        let threads = threads.max(1);
        let (jobs, rx) = sync_channel::<Job>(threads * QUEUE_PER_THREAD);
        let rx: Arc<Mutex<Receiver<Job>>> = Arc::new(Mutex::new(rx));
        for i in 0..threads {
            let rx = rx.clone();
            let spawned = std::thread::Builder::new()
                .name(format!("wardstone-argon2-{i}"))
                .spawn(move || {
                    crate::cpu::run_in_background();
                    let mut memory: Vec<Block> = Vec::new();
                    loop {
                        let job = match rx.lock() {
                            Ok(rx) => rx.recv(),
                            Err(p) => p.into_inner().recv(),
                        };
                        match job {
                            Ok(job) => job(&mut memory),
                            // Every sender is gone: the server is shutting down.
                            Err(_) => return,
                        }
                    }
                });
            if let Err(e) = spawned {
                tracing::error!(error = %e, "cannot start a password hashing thread");
            }
        }
        Passwords { jobs }
    }

    async fn run<T: Send + 'static>(
        &self,
        f: impl FnOnce(&mut Vec<Block>) -> T + Send + 'static,
    ) -> Result<T, Busy> {
        let (tx, rx) = tokio::sync::oneshot::channel();
        let job: Job = Box::new(move |memory| {
            // A caller that gave up (the request was dropped) costs no hash.
            if !tx.is_closed() {
                let _ = tx.send(f(memory));
            }
        });
        match self.jobs.try_send(job) {
            Ok(()) => {}
            Err(TrySendError::Full(_)) | Err(TrySendError::Disconnected(_)) => return Err(Busy),
        }
        rx.await.map_err(|_| Busy)
    }

    /// Hashes a new password into a PHC string.
    pub async fn hash(&self, password: String) -> Result<String, Busy> {
        self.run(move |memory| hash_now(&password, memory)).await
    }

    /// Checks a password against a PHC string; a malformed hash never verifies.
    pub async fn verify(&self, password: String, phc: String) -> Result<bool, Busy> {
        self.run(move |memory| verify_now(&password, &phc, memory))
            .await
    }
}

/// The parameters of new hashes: OWASP's argon2id recommendation, m=19 MiB, t=2, p=1.
fn params() -> Params {
    Params::new(19 * 1024, 2, 1, Some(32)).expect("valid argon2 parameters")
}

fn hash_with(
    argon: &Argon2<'_>,
    password: &[u8],
    salt: &[u8],
    out: &mut [u8],
    memory: &mut Vec<Block>,
) -> bool {
    let blocks = argon.params().block_count();
    if memory.len() < blocks {
        memory.resize(blocks, Block::default());
    }
    argon
        .hash_password_into_with_memory(password, salt, out, &mut memory[..blocks])
        .is_ok()
}

fn hash_now(password: &str, memory: &mut Vec<Block>) -> String {
    let params = params();
    let salt_bytes = random_bytes(16);
    let salt = SaltString::encode_b64(&salt_bytes).expect("16-byte salt encodes");
    let argon = Argon2::new(Algorithm::Argon2id, Version::V0x13, params.clone());
    let mut out = [0u8; 32];
    assert!(
        hash_with(&argon, password.as_bytes(), &salt_bytes, &mut out, memory),
        "argon2 with valid parameters cannot fail"
    );
    PasswordHash {
        algorithm: Ident::new_unwrap("argon2id"),
        version: Some(Version::V0x13.into()),
        params: ParamsString::try_from(&params).expect("parameters encode"),
        salt: Some(salt.as_salt()),
        hash: Some(Output::new(&out).expect("32-byte output")),
    }
    .to_string()
}

fn verify_now(password: &str, phc: &str, memory: &mut Vec<Block>) -> bool {
    let Ok(parsed) = PasswordHash::new(phc) else {
        return false;
    };
    let (Ok(algorithm), Ok(params), Some(salt), Some(expected)) = (
        Algorithm::try_from(parsed.algorithm),
        Params::try_from(&parsed),
        parsed.salt,
        parsed.hash,
    ) else {
        return false;
    };
    let version = parsed
        .version
        .and_then(|v| Version::try_from(v).ok())
        .unwrap_or(Version::V0x13);
    let mut salt_buf = [0u8; 64];
    let Ok(salt) = salt.decode_b64(&mut salt_buf) else {
        return false;
    };
    let argon = Argon2::new(algorithm, version, params);
    let mut out = vec![0u8; expected.len()];
    hash_with(&argon, password.as_bytes(), salt, &mut out, memory)
        && ct_eq(&out, expected.as_bytes())
}

/// A hash to verify against when the user does not exist, so that unknown users and wrong
/// passwords take the same time.
pub fn dummy_hash() -> &'static str {
    static DUMMY: OnceLock<String> = OnceLock::new();
    DUMMY.get_or_init(|| hash_now("wardstone-dummy-password", &mut Vec::new()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hashes_verify_and_agree_with_the_argon2_crate() {
        let mut memory = Vec::new();
        let phc = hash_now("correct horse", &mut memory);
        assert!(phc.starts_with("$argon2id$v=19$m=19456,t=2,p=1$"));
        assert!(verify_now("correct horse", &phc, &mut memory));
        assert!(!verify_now("wrong horse", &phc, &mut memory));
        // Hashes made by the crate's own API (older rows) verify too, and ours verify there.
        use argon2::{PasswordHasher, PasswordVerifier};
        let salt = SaltString::encode_b64(&random_bytes(16)).unwrap();
        let theirs = Argon2::default()
            .hash_password(b"correct horse", &salt)
            .unwrap()
            .to_string();
        assert!(verify_now("correct horse", &theirs, &mut memory));
        let parsed = PasswordHash::new(&phc).unwrap();
        assert!(
            Argon2::default()
                .verify_password(b"correct horse", &parsed)
                .is_ok()
        );
        assert!(!verify_now("x", "not a hash", &mut memory));
    }
}
