//! Sandbox limits. Every limit has a safe default and can be changed server-wide.

use std::time::Duration;

/// Limits applied to every rule module and execution.
#[derive(Debug, Clone)]
pub struct Limits {
    /// Instructions (fuel) one execution may use. Deterministic: the same rule on the same
    /// input always uses the same fuel.
    pub fuel: u64,
    /// Wall-clock deadline of one rule execution.
    pub rule_timeout: Duration,
    /// Wall-clock deadline of a whole pipeline.
    pub pipeline_timeout: Duration,
    /// Linear memory cap per instance, bytes.
    pub memory_bytes: usize,
    /// Wasm stack cap, bytes (deep recursion traps instead of exhausting the host stack).
    pub stack_bytes: usize,
    /// Largest output a rule may return, bytes.
    pub output_bytes: usize,
    /// Largest module accepted at upload, bytes (binary, or WAT text before assembly).
    pub module_bytes: usize,
    /// Largest single function body accepted, bytes (compile time grows with it).
    pub function_body_bytes: usize,
    /// Compilation deadline at upload; a module that takes longer is refused.
    pub compile_timeout: Duration,
    /// Log lines kept per execution.
    pub log_lines: usize,
    /// Bytes kept per log line.
    pub log_line_bytes: usize,
    /// Threads that run rule pipelines, all tenants together. One tenant may use all but one
    /// of them; a free thread serves the waiting tenant with the fewest running (see
    /// `rules::executor`).
    pub max_concurrent: usize,
    /// Pipelines that may run at once on the requests' own threads instead of the executor's
    /// (0: never). A run there that lasts beyond a few milliseconds is abandoned and run again
    /// on the executor (`rules::Rules::execute`).
    pub inline_runs: usize,
    /// How long a run may take on a request's own thread before it is abandoned and run again on
    /// the executor (a typical pipeline takes well under a millisecond).
    pub inline_budget: Duration,
    /// Memory the compiled modules of one node may hold, bytes (least recently used out).
    pub module_cache_bytes: usize,
    /// Compiled modules one node may hold. Each holds a file descriptor (its copy-on-write
    /// memory image), so the default is half the process's open-file limit.
    pub module_cache_count: usize,
    /// Uploads compiling at once on one node.
    pub compile_slots: usize,
    /// Uploads compiling at once for one tenant.
    pub compiles_per_tenant: usize,
    /// How long an upload (or a login that must recompile) waits for a compile slot.
    pub compile_wait: Duration,
    /// Execution-log records that may wait for the log writer; beyond, they are dropped
    /// and counted.
    pub journal_queue: usize,
    /// How long a starting node may spend filling its module cache with the most recently
    /// used modules before it reports ready (zero: no warm-up).
    pub warm_up: Duration,
    /// Custom claims per token, bytes of JSON.
    pub claims_bytes: usize,
    /// `app_metadata` and `user_metadata` after the rules, bytes of JSON each.
    pub metadata_bytes: usize,
    /// Rules one tenant may have.
    pub rules_per_tenant: i64,
    /// Rule settings one tenant may have.
    pub configs_per_tenant: i64,
    /// Bytes all of one tenant's rule setting values may take together (every login sends them
    /// to every rule).
    pub config_bytes_per_tenant: usize,
    /// Versions kept per rule or action (the oldest are pruned; never the current one).
    pub versions_kept: i64,
    /// Actions one tenant may have (Auth0: 100).
    pub actions_per_tenant: i64,
    /// Deadline of a rule that imports `wardstone.http_fetch` (its calls count against it);
    /// still within the pipeline's deadline.
    pub http_rule_timeout: Duration,
    /// Largest response body `wardstone.http_fetch` hands to a rule.
    pub http_body_bytes: usize,
    /// Non-public ranges the operator opened to rules' outbound requests (trusted upstreams
    /// inside the network); none by default (SPEC §17).
    pub http_allow_private: crate::domain::PrivateRanges,
    /// DNS servers that resolve names for rules' outbound requests (the system's when empty).
    pub dns_servers: Vec<std::net::SocketAddr>,
    /// DNS lookups in flight at once on one node; beyond, a lookup is refused at once.
    pub dns_lookups: usize,
}

impl Default for Limits {
    fn default() -> Self {
        let cores = std::thread::available_parallelism()
            .map(|n| n.get())
            .unwrap_or(2);
        Limits {
            fuel: 10_000_000,
            rule_timeout: Duration::from_millis(50),
            pipeline_timeout: Duration::from_secs(1),
            memory_bytes: 16 << 20,
            stack_bytes: 512 << 10,
            output_bytes: 1 << 20,
            module_bytes: 4 << 20,
            function_body_bytes: 1 << 20,
            compile_timeout: Duration::from_secs(10),
            log_lines: 100,
            log_line_bytes: 1024,
            max_concurrent: (2 * cores).max(2),
            inline_runs: cores,
            inline_budget: Duration::from_millis(5),
            module_cache_bytes: 512 << 20,
            module_cache_count: (open_file_limit() / 2).clamp(256, 100_000),
            compile_slots: (cores / 2).max(1),
            compiles_per_tenant: 1,
            compile_wait: Duration::from_secs(5),
            journal_queue: 10_000,
            warm_up: Duration::from_millis(1500),
            claims_bytes: 100 << 10,
            metadata_bytes: 16 << 10,
            rules_per_tenant: 100,
            configs_per_tenant: 100,
            config_bytes_per_tenant: 64 << 10,
            versions_kept: 10,
            actions_per_tenant: 100,
            http_rule_timeout: Duration::from_secs(1),
            http_body_bytes: 256 << 10,
            http_allow_private: crate::domain::PrivateRanges::default(),
            dns_servers: Vec::new(),
            dns_lookups: 32,
        }
    }
}

/// The soft limit on open files of this process (Linux: `/proc/self/limits`), or a
/// conservative guess elsewhere.
fn open_file_limit() -> usize {
    std::fs::read_to_string("/proc/self/limits")
        .ok()
        .and_then(|text| {
            text.lines()
                .find(|l| l.starts_with("Max open files"))
                .and_then(|l| l.split_whitespace().nth(3))
                .and_then(|soft| soft.parse().ok())
        })
        .unwrap_or(1024)
}
