//! The server-wide sandbox limits, as flags.

use std::net::SocketAddr;

use clap::Args;

/// Sandbox limits of rules, server-wide (defaults in `rules::Limits`).
#[derive(Args, Debug)]
pub(super) struct RuleLimitArgs {
    /// Instructions (fuel) per rule execution.
    #[arg(long, global = true, env = "WARDSTONE_RULE_FUEL", value_parser = clap::value_parser!(u64).range(10_000..=10_000_000_000))]
    rule_fuel: Option<u64>,
    /// Wall-clock deadline per rule, milliseconds.
    #[arg(long, global = true, env = "WARDSTONE_RULE_TIMEOUT_MS", value_parser = clap::value_parser!(u64).range(1..=10_000))]
    rule_timeout_ms: Option<u64>,
    /// Wall-clock deadline per pipeline, milliseconds.
    #[arg(long, global = true, env = "WARDSTONE_PIPELINE_TIMEOUT_MS", value_parser = clap::value_parser!(u64).range(1..=60_000))]
    pipeline_timeout_ms: Option<u64>,
    /// Linear memory per rule instance, MiB.
    #[arg(long, global = true, env = "WARDSTONE_RULE_MEMORY_MIB", value_parser = clap::value_parser!(u64).range(1..=1024))]
    rule_memory_mib: Option<u64>,
    /// Wasm stack per rule execution, KiB.
    #[arg(long, global = true, env = "WARDSTONE_RULE_STACK_KIB", value_parser = clap::value_parser!(u64).range(64..=8192))]
    rule_stack_kib: Option<u64>,
    /// Largest rule output, KiB.
    #[arg(long, global = true, env = "WARDSTONE_RULE_OUTPUT_KIB", value_parser = clap::value_parser!(u64).range(1..=65536))]
    rule_output_kib: Option<u64>,
    /// Largest rule module accepted at upload, KiB.
    #[arg(long, global = true, env = "WARDSTONE_RULE_MODULE_KIB", value_parser = clap::value_parser!(u64).range(1..=65536))]
    rule_module_kib: Option<u64>,
    /// Memory for compiled rule modules on this node, MiB (least recently used out first).
    #[arg(long, global = true, env = "WARDSTONE_RULE_CACHE_MIB", value_parser = clap::value_parser!(u64).range(8..=65536))]
    rule_cache_mib: Option<u64>,
    /// Threads that run rule pipelines (default: 2 × cores).
    #[arg(long, global = true, env = "WARDSTONE_RULE_THREADS", value_parser = clap::value_parser!(u64).range(1..=1024))]
    rule_threads: Option<u64>,
    /// Rule pipelines that may run at once on the request's own thread, skipping the hand-off
    /// to the rule threads (each bounded to a few milliseconds, then run again on a rule
    /// thread); 0 turns this off (default: cores).
    #[arg(long, global = true, env = "WARDSTONE_RULE_INLINE_RUNS", value_parser = clap::value_parser!(u64).range(0..=1024))]
    rule_inline_runs: Option<u64>,
    /// Rules one tenant may have.
    #[arg(long, global = true, env = "WARDSTONE_RULE_MAX_PER_TENANT", value_parser = clap::value_parser!(i64).range(1..=10_000))]
    rule_max_per_tenant: Option<i64>,
    /// Rule settings one tenant may have.
    #[arg(long, global = true, env = "WARDSTONE_RULE_SETTINGS_MAX", value_parser = clap::value_parser!(i64).range(1..=10_000))]
    rule_settings_max: Option<i64>,
    /// Bytes all of one tenant's rule setting values may take together, KiB.
    #[arg(long, global = true, env = "WARDSTONE_RULE_SETTINGS_MAX_KIB", value_parser = clap::value_parser!(u64).range(1..=65536))]
    rule_settings_max_kib: Option<u64>,
    /// Versions kept per rule (older ones are pruned; never the current).
    #[arg(long, global = true, env = "WARDSTONE_RULE_VERSIONS_KEPT", value_parser = clap::value_parser!(i64).range(1..=1000))]
    rule_versions_kept: Option<i64>,
    /// Deadline of a rule that imports wardstone.http_fetch, milliseconds (within the pipeline's).
    #[arg(long, global = true, env = "WARDSTONE_RULE_HTTP_TIMEOUT_MS", value_parser = clap::value_parser!(u64).range(1..=60_000))]
    rule_http_timeout_ms: Option<u64>,
    /// Largest response body wardstone.http_fetch hands a rule, KiB.
    #[arg(long, global = true, env = "WARDSTONE_RULE_HTTP_BODY_KIB", value_parser = clap::value_parser!(u64).range(1..=65536))]
    rule_http_body_kib: Option<u64>,
    /// A non-public range (CIDR) rules may reach over HTTP, e.g. a trusted upstream inside the
    /// network (repeatable; env: comma-separated). Without it, tenants can list and reach only
    /// public addresses.
    #[arg(long = "rule-http-allow-private", global = true, env = "WARDSTONE_RULE_HTTP_ALLOW_PRIVATE", value_delimiter = ',', value_name = "CIDR", value_parser = parse_cidr)]
    rule_http_allow_private: Vec<ipnet::IpNet>,
    /// DNS server (IP:PORT) that resolves names for rules' HTTP requests (repeatable; env:
    /// comma-separated); default: the system's (/etc/resolv.conf).
    #[arg(
        long = "rule-http-dns",
        global = true,
        env = "WARDSTONE_RULE_HTTP_DNS",
        value_delimiter = ',',
        value_name = "IP:PORT"
    )]
    rule_http_dns: Vec<SocketAddr>,
}

/// A CIDR range, or one address (a /32 or /128).
fn parse_cidr(text: &str) -> Result<ipnet::IpNet, String> {
    let text = text.trim();
    text.parse::<ipnet::IpNet>()
        .or_else(|_| text.parse::<std::net::IpAddr>().map(ipnet::IpNet::from))
        .map_err(|_| format!("{text:?} is not a CIDR range (e.g. 10.0.0.0/8) or an IP address"))
}

impl RuleLimitArgs {
    pub(super) fn limits(&self) -> crate::rules::Limits {
        use std::time::Duration;
        let mut l = crate::rules::Limits::default();
        if let Some(v) = self.rule_fuel {
            l.fuel = v;
        }
        if let Some(v) = self.rule_timeout_ms {
            l.rule_timeout = Duration::from_millis(v);
        }
        if let Some(v) = self.pipeline_timeout_ms {
            l.pipeline_timeout = Duration::from_millis(v);
        }
        if let Some(v) = self.rule_memory_mib {
            l.memory_bytes = (v as usize) << 20;
        }
        if let Some(v) = self.rule_stack_kib {
            l.stack_bytes = (v as usize) << 10;
        }
        if let Some(v) = self.rule_output_kib {
            l.output_bytes = (v as usize) << 10;
        }
        if let Some(v) = self.rule_module_kib {
            l.module_bytes = (v as usize) << 10;
        }
        if let Some(v) = self.rule_cache_mib {
            l.module_cache_bytes = (v as usize) << 20;
        }
        if let Some(v) = self.rule_threads {
            l.max_concurrent = v as usize;
        }
        if let Some(v) = self.rule_inline_runs {
            l.inline_runs = v as usize;
        }
        if let Some(v) = self.rule_max_per_tenant {
            l.rules_per_tenant = v;
        }
        if let Some(v) = self.rule_settings_max {
            l.configs_per_tenant = v;
        }
        if let Some(v) = self.rule_settings_max_kib {
            l.config_bytes_per_tenant = (v as usize) << 10;
        }
        if let Some(v) = self.rule_versions_kept {
            l.versions_kept = v;
        }
        if let Some(v) = self.rule_http_timeout_ms {
            l.http_rule_timeout = Duration::from_millis(v);
        }
        if let Some(v) = self.rule_http_body_kib {
            l.http_body_bytes = (v as usize) << 10;
        }
        l.http_allow_private =
            crate::domain::PrivateRanges::new(self.rule_http_allow_private.clone());
        l.dns_servers = self.rule_http_dns.clone();
        l
    }
}
