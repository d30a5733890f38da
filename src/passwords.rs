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

    /// Checks a password against a stored hash of any kind Wardstone keeps (its own argon2id,
    /// or one imported from Auth0: bcrypt, argon2 with other parameters, PBKDF2), on the same
    /// bounded threads. A right password on anything but the current argon2id parameters comes
    /// back with its replacement, hashed in the same job, for the caller to store.
    pub async fn check(&self, password: String, stored: String) -> Result<Checked, Busy> {
        self.run(move |memory| check_now(&password, &stored, memory))
            .await
    }
}

/// What checking a password against a stored hash found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Checked {
    /// The password is right.
    pub ok: bool,
    /// The argon2id hash to store instead of an imported one (only when `ok`).
    pub upgraded: Option<String>,
}

/// The prefix of every hash [`Passwords::hash`] makes: a stored hash with it needs no upgrade.
const CURRENT_PREFIX: &str = "$argon2id$v=19$m=19456,t=2,p=1$";

/// Largest bcrypt cost accepted (cost 12 is ≈ 250 ms of a core; each step doubles it).
pub const MAX_BCRYPT_COST: u32 = 12;
/// Largest argon2 memory accepted, KiB: the hashing threads' memory stays bounded.
const MAX_ARGON2_KIB: u32 = 64 * 1024;
/// Largest argon2 time cost and parallelism accepted.
const MAX_ARGON2_T: u32 = 10;
const MAX_ARGON2_P: u32 = 8;
/// Largest PBKDF2 iteration count accepted (OWASP asks 600,000 for SHA-256).
const MAX_PBKDF2_ROUNDS: u32 = 1_000_000;

/// The kinds of password hash Wardstone verifies.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HashKind {
    /// `$2a$`, `$2b$`, `$2y$` (and `$2x$`) bcrypt strings.
    Bcrypt,
    /// A PHC string of argon2id, argon2i or argon2d.
    Argon2,
    /// A PHC string of `pbkdf2-sha256` or `pbkdf2-sha512`.
    Pbkdf2,
}

/// Checks a hash given for import and returns it as it will be stored, or why it is refused:
/// a malformed string, or costs above what the hashing threads accept (a bcrypt cost of 31
/// would hold a core for days at one login).
pub fn check_imported_hash(kind: HashKind, hash: &str) -> Result<String, String> {
    let hash = hash.trim();
    match kind {
        HashKind::Bcrypt => {
            let parts: bcrypt::HashParts = hash
                .parse()
                .map_err(|e| format!("not a bcrypt hash ({e})"))?;
            if !["$2a$", "$2b$", "$2y$", "$2x$"]
                .iter()
                .any(|p| hash.starts_with(p))
            {
                return Err("not a bcrypt hash ($2a$, $2b$ or $2y$)".into());
            }
            if parts.get_cost() > MAX_BCRYPT_COST {
                return Err(format!(
                    "bcrypt cost {} is above the {MAX_BCRYPT_COST} Wardstone verifies",
                    parts.get_cost()
                ));
            }
        }
        HashKind::Argon2 => {
            let parsed = PasswordHash::new(hash).map_err(|e| format!("not a PHC string ({e})"))?;
            Algorithm::try_from(parsed.algorithm)
                .map_err(|_| format!("{} is not an argon2 algorithm", parsed.algorithm))?;
            let params = Params::try_from(&parsed)
                .map_err(|e| format!("argon2 parameters are invalid ({e})"))?;
            if params.m_cost() > MAX_ARGON2_KIB
                || params.t_cost() > MAX_ARGON2_T
                || params.p_cost() > MAX_ARGON2_P
            {
                return Err(format!(
                    "argon2 parameters m={},t={},p={} are above what Wardstone verifies (m ≤ {MAX_ARGON2_KIB}, t ≤ {MAX_ARGON2_T}, p ≤ {MAX_ARGON2_P})",
                    params.m_cost(),
                    params.t_cost(),
                    params.p_cost()
                ));
            }
            if parsed.salt.is_none() || parsed.hash.is_none() {
                return Err("the PHC string has no salt or no hash".into());
            }
        }
        HashKind::Pbkdf2 => {
            let parsed = PasswordHash::new(hash).map_err(|e| format!("not a PHC string ({e})"))?;
            if !matches!(parsed.algorithm.as_str(), "pbkdf2-sha256" | "pbkdf2-sha512") {
                return Err(format!(
                    "{} is not pbkdf2-sha256 or pbkdf2-sha512",
                    parsed.algorithm
                ));
            }
            let params = pbkdf2::Params::try_from(&parsed)
                .map_err(|e| format!("PBKDF2 parameters are invalid ({e})"))?;
            if params.rounds > MAX_PBKDF2_ROUNDS {
                return Err(format!(
                    "{} PBKDF2 rounds are above the {MAX_PBKDF2_ROUNDS} Wardstone verifies",
                    params.rounds
                ));
            }
            if parsed.salt.is_none() || parsed.hash.is_none() {
                return Err("the PHC string has no salt or no hash".into());
            }
        }
    }
    Ok(hash.to_string())
}

fn kind_of(stored: &str) -> Option<HashKind> {
    if stored.starts_with("$2") {
        Some(HashKind::Bcrypt)
    } else if stored.starts_with("$argon2") {
        Some(HashKind::Argon2)
    } else if stored.starts_with("$pbkdf2-") {
        Some(HashKind::Pbkdf2)
    } else {
        None
    }
}

fn check_now(password: &str, stored: &str, memory: &mut Vec<Block>) -> Checked {
    let wrong = Checked {
        ok: false,
        upgraded: None,
    };
    if stored.starts_with(CURRENT_PREFIX) {
        return Checked {
            ok: verify_now(password, stored, memory),
            upgraded: None,
        };
    }
    // A hash outside the bounds (written to the row by hand, say) is refused like a wrong
    // password rather than run: the bounds are what keeps one login from holding a core.
    let ok = match kind_of(stored) {
        Some(kind) if check_imported_hash(kind, stored).is_ok() => match kind {
            HashKind::Argon2 => verify_now(password, stored, memory),
            HashKind::Bcrypt => bcrypt::verify(password, stored).unwrap_or(false),
            HashKind::Pbkdf2 => {
                use pbkdf2::password_hash::PasswordVerifier;
                PasswordHash::new(stored).is_ok_and(|parsed| {
                    pbkdf2::Pbkdf2
                        .verify_password(password.as_bytes(), &parsed)
                        .is_ok()
                })
            }
        },
        _ => {
            // No password here (an imported user without a hash) or an unknown form: the same
            // work as a wrong password, so the answer's timing says nothing.
            verify_now(password, dummy_hash(), memory);
            return wrong;
        }
    };
    if !ok {
        // A wrong password on a cheap imported hash still costs an argon2id, as it does for an
        // unknown user, so timing does not single out users not yet migrated.
        verify_now(password, dummy_hash(), memory);
        return wrong;
    }
    Checked {
        ok: true,
        upgraded: Some(hash_now(password, memory)),
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

    #[test]
    fn imported_hashes_verify_once_and_come_back_as_argon2id() {
        let mut memory = Vec::new();
        let bcrypt = bcrypt::hash_with_result("hunter2", 4)
            .unwrap()
            .format_for_version(bcrypt::Version::TwoB);
        let y = bcrypt.replacen("$2b$", "$2y$", 1);
        let a = bcrypt.replacen("$2b$", "$2a$", 1);
        let pbkdf2 = {
            use pbkdf2::password_hash::PasswordHasher;
            let salt = SaltString::encode_b64(&random_bytes(16)).unwrap();
            pbkdf2::Pbkdf2
                .hash_password_customized(
                    b"hunter2",
                    Some(pbkdf2::Algorithm::Pbkdf2Sha512.ident()),
                    None,
                    pbkdf2::Params {
                        rounds: 1000,
                        output_length: 64,
                    },
                    &salt,
                )
                .unwrap()
                .to_string()
        };
        let argon2i = {
            use argon2::PasswordHasher;
            let salt = SaltString::encode_b64(&random_bytes(16)).unwrap();
            Argon2::new(
                Algorithm::Argon2i,
                Version::V0x13,
                Params::new(4096, 3, 1, None).unwrap(),
            )
            .hash_password(b"hunter2", &salt)
            .unwrap()
            .to_string()
        };
        for (kind, stored) in [
            (HashKind::Bcrypt, &bcrypt),
            (HashKind::Bcrypt, &y),
            (HashKind::Bcrypt, &a),
            (HashKind::Pbkdf2, &pbkdf2),
            (HashKind::Argon2, &argon2i),
        ] {
            assert_eq!(
                check_imported_hash(kind, stored).as_deref(),
                Ok(stored.as_str())
            );
            let right = check_now("hunter2", stored, &mut memory);
            assert!(right.ok, "{stored}");
            let upgraded = right.upgraded.expect("an imported hash is replaced");
            assert!(upgraded.starts_with(CURRENT_PREFIX));
            assert_eq!(
                check_now("hunter2", &upgraded, &mut memory),
                Checked {
                    ok: true,
                    upgraded: None
                }
            );
            assert!(!check_now("hunter3", stored, &mut memory).ok);
        }
        // No hash at all never verifies, whatever is typed.
        assert!(!check_now("", "", &mut memory).ok);
        // Costs beyond the bounds are refused at import and never run at login.
        let costly = bcrypt.replacen("$04$", "$14$", 1);
        assert!(check_imported_hash(HashKind::Bcrypt, &costly).is_err());
        assert!(!check_now("hunter2", &costly, &mut memory).ok);
        assert!(check_imported_hash(HashKind::Bcrypt, "$2b$10$short").is_err());
        assert!(check_imported_hash(HashKind::Argon2, &pbkdf2).is_err());
        assert!(
            check_imported_hash(HashKind::Pbkdf2, "$pbkdf2-sha1$i=1000$c2FsdA$aGFzaA").is_err()
        );
        let huge = argon2i.replacen("m=4096", "m=1048576", 1);
        assert!(check_imported_hash(HashKind::Argon2, &huge).is_err());
    }
}
