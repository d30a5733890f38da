//! Where rules may send requests: which addresses count as public, which private ranges the
//! operator opened, and the entries of a tenant's allow-list (SPEC §12, §17).
//!
//! A tenant admin is not trusted (SPEC §17): nothing a tenant configures may reach the host,
//! its network or a cloud's metadata service. So an address is judged by what it *is* — the
//! IPv4 address hidden in a mapped, compatible, NAT64 or 6to4 form included — and only public
//! unicast space passes, unless the operator opened a range (`--rule-http-allow-private`).

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use ipnet::IpNet;

use super::{Invalid, invalid};

/// Why an address is not public (`None`: it is public).
pub fn non_public_reason(ip: IpAddr) -> Option<&'static str> {
    match ip {
        IpAddr::V4(v4) => v4_reason(v4),
        IpAddr::V6(v6) => v6_reason(v6),
    }
}

/// Whether an address is on the public internet.
pub fn is_public(ip: IpAddr) -> bool {
    non_public_reason(ip).is_none()
}

fn v4_reason(v4: Ipv4Addr) -> Option<&'static str> {
    let o = v4.octets();
    Some(match o {
        [0, ..] => "unspecified (0.0.0.0/8)",
        [127, ..] => "loopback (127.0.0.0/8)",
        [10, ..] => "private (10.0.0.0/8)",
        [172, b, ..] if b & 0xf0 == 16 => "private (172.16.0.0/12)",
        [192, 168, ..] => "private (192.168.0.0/16)",
        [169, 254, ..] => "link-local, where cloud metadata services live (169.254.0.0/16)",
        [100, b, ..] if b & 0xc0 == 64 => "carrier-grade NAT (100.64.0.0/10)",
        [192, 0, 0, _] => "IETF protocol assignments (192.0.0.0/24)",
        [192, 0, 2, _] | [198, 51, 100, _] | [203, 0, 113, _] => "documentation",
        [192, 88, 99, _] => "6to4 relay anycast (192.88.99.0/24)",
        [198, b, ..] if b & 0xfe == 18 => "benchmarking (198.18.0.0/15)",
        [a, ..] if a & 0xf0 == 224 => "multicast (224.0.0.0/4)",
        [a, ..] if a >= 240 => "reserved (240.0.0.0/4)",
        _ => return None,
    })
}

fn v6_reason(v6: Ipv6Addr) -> Option<&'static str> {
    let s = v6.segments();
    let embedded = |hi: u16, lo: u16| {
        let [a, b] = hi.to_be_bytes();
        let [c, d] = lo.to_be_bytes();
        Ipv4Addr::new(a, b, c, d)
    };
    // Forms that carry an IPv4 address reach that address: judge it.
    if s[..5] == [0; 5] && s[5] == 0xffff {
        return v4_reason(embedded(s[6], s[7]))
            .map(|_| "an IPv4-mapped form of a non-public address");
    }
    if s[..6] == [0; 6] {
        return match (s[6], s[7]) {
            (0, 0) => Some("unspecified (::)"),
            (0, 1) => Some("loopback (::1)"),
            (hi, lo) => v4_reason(embedded(hi, lo))
                .map(|_| "an IPv4-compatible form of a non-public address")
                .or(Some("IPv4-compatible (deprecated, ::/96)")),
        };
    }
    if s[0] == 0x64 && s[1] == 0xff9b {
        if s[2..6] == [0; 4] {
            return v4_reason(embedded(s[6], s[7])).map(|_| "a NAT64 form of a non-public address");
        }
        // 64:ff9b:1::/48 is for local translators (RFC 8215): never public.
        if s[2] == 1 {
            return Some("local-use NAT64 (64:ff9b:1::/48)");
        }
    }
    if s[0] == 0x2002 {
        return v4_reason(embedded(s[1], s[2])).map(|_| "a 6to4 form of a non-public address");
    }
    // Only global unicast space (2000::/3) is public, less what is set aside inside it.
    Some(match s[0] {
        0xfc00..=0xfdff => "unique-local (fc00::/7)",
        0xfe80..=0xfebf => "link-local (fe80::/10)",
        0xfec0..=0xfeff => "site-local (fec0::/10)",
        0xff00..=0xffff => "multicast (ff00::/8)",
        0x2001 if s[1] < 0x0200 => "IETF protocol assignments, Teredo included (2001::/23)",
        0x2001 if s[1] == 0x0db8 => "documentation (2001:db8::/32)",
        0x3fff if s[1] < 0x1000 => "documentation (3fff::/20)",
        0x2000..=0x3fff => return None,
        _ => "reserved or not global unicast",
    })
}

/// The address an IPv4-mapped IPv6 address stands for, so `::ffff:127.0.0.1` matches an
/// operator's `127.0.0.1/32`.
fn canonical(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map(IpAddr::V4).unwrap_or(ip),
        v4 => v4,
    }
}

/// The non-public ranges the operator opened for rules (`--rule-http-allow-private`): trusted
/// upstreams inside the network. Empty by default: rules reach public addresses only.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PrivateRanges(Vec<IpNet>);

impl PrivateRanges {
    /// The ranges given.
    pub fn new(ranges: Vec<IpNet>) -> Self {
        PrivateRanges(ranges.into_iter().map(|r| r.trunc()).collect())
    }

    /// The ranges, as given (truncated to their network).
    pub fn ranges(&self) -> &[IpNet] {
        &self.0
    }

    fn opened(&self, ip: IpAddr) -> bool {
        let ip = canonical(ip);
        self.0.iter().any(|r| r.contains(&ip))
    }

    /// Why a rule may not reach `ip` (`None`: it may): public, or inside an opened range.
    pub fn refusal(&self, ip: IpAddr) -> Option<&'static str> {
        match non_public_reason(ip) {
            Some(_) if self.opened(ip) => None,
            other => other,
        }
    }

    /// Whether a rule may reach `ip`.
    pub fn permits(&self, ip: IpAddr) -> bool {
        self.refusal(ip).is_none()
    }
}

/// One entry of a tenant's outbound allow-list: `host` (the scheme's default port only) or
/// `host:port`. The host is normalised as a URL's host is (so `127.1`, `2130706433` and
/// `0x7f.0.0.1` all read `127.0.0.1`, IPv6 is compressed), compared without case.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct AllowedHost {
    host: String,
    port: Option<u16>,
    /// As the tenant wrote it, for messages.
    written: String,
}

impl PartialEq for AllowedHost {
    fn eq(&self, other: &Self) -> bool {
        self.host == other.host && self.port == other.port
    }
}

impl Eq for AllowedHost {}

impl AllowedHost {
    /// Parses `host` or `host:port` (shape only; see [`AllowedHost::check_reach`]).
    pub fn parse(s: &str) -> Result<Self, Invalid> {
        let bad = || {
            invalid(format!(
                "invalid allowed host {s:?}: use host or host:port (no scheme or path), e.g. api.example.com or api.example.com:8443"
            ))
        };
        if s.is_empty() || s.len() > 260 || s.contains(['/', '@', '?', '#', ' ', '\\']) {
            return Err(bad());
        }
        let url = url::Url::parse(&format!("http://{s}/")).map_err(|_| bad())?;
        let host = url.host_str().ok_or_else(bad)?.to_ascii_lowercase();
        // `url` drops port 80 for http: keep what was written.
        let port = match s.rsplit_once(':') {
            Some((_, p)) if !s.ends_with(']') => Some(p.parse::<u16>().map_err(|_| bad())?),
            _ => None,
        };
        Ok(AllowedHost {
            host,
            port,
            written: s.to_string(),
        })
    }

    /// The host as an IP address, when it is a literal.
    pub fn literal(&self) -> Option<IpAddr> {
        self.host
            .trim_start_matches('[')
            .trim_end_matches(']')
            .parse()
            .ok()
    }

    /// Refuses an entry that names a non-public address the operator did not open, or a name
    /// that is loopback by definition (`localhost`, RFC 6761). Names are judged again, by
    /// their addresses, at every connection.
    pub fn check_reach(&self, opened: &PrivateRanges) -> Result<(), Invalid> {
        let written = match self.to_string() {
            normal if normal == self.written => normal,
            normal => format!("{} (read as {normal})", self.written),
        };
        if let Some(ip) = self.literal()
            && let Some(why) = opened.refusal(ip)
        {
            return Err(invalid(format!(
                "allowed host {written} is refused: {ip} is {why}, not a public address; only the \
                 server's operator can open such ranges (--rule-http-allow-private)"
            )));
        }
        let name = self.host.trim_end_matches('.');
        if name == "localhost" || name.ends_with(".localhost") {
            return Err(invalid(format!(
                "allowed host {written} is refused: localhost is always the server itself"
            )));
        }
        Ok(())
    }

    /// Whether a URL's `host` and `port` are allowed (`default_port`: the URL gave none).
    pub fn allows(&self, host: &str, port: u16, default_port: bool) -> bool {
        self.host.eq_ignore_ascii_case(host)
            && match self.port {
                Some(p) => p == port,
                None => default_port,
            }
    }
}

impl std::fmt::Display for AllowedHost {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.port {
            Some(p) => write!(f, "{}:{p}", self.host),
            None => f.write_str(&self.host),
        }
    }
}

impl TryFrom<String> for AllowedHost {
    type Error = String;

    fn try_from(s: String) -> Result<Self, String> {
        AllowedHost::parse(&s).map_err(|e| e.0)
    }
}

impl From<AllowedHost> for String {
    fn from(v: AllowedHost) -> String {
        v.to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_public_unicast_is_public() {
        for ip in [
            "127.0.0.1",
            "10.1.2.3",
            "172.16.0.1",
            "192.168.1.1",
            "169.254.169.254",
            "100.64.0.1",
            "0.0.0.0",
            "255.255.255.255",
            "224.0.0.1",
            "::",
            "::1",
            "fd00::1",
            "fe80::1",
            "fec0::1",
            "ff02::1",
            "::ffff:127.0.0.1",
            "::ffff:169.254.169.254",
            "::10.0.0.1",
            "::8.8.8.8",
            "64:ff9b::a9fe:a9fe",
            "64:ff9b:1::808:808",
            "64:ff9b:1:ffff::1",
            "2002:7f00:1::",
            "2002:a9fe:a9fe::1",
            "2001:db8::1",
            "2001::1",
            "100::1",
            "192.0.0.8",
            "192.0.2.1",
            "198.18.0.1",
            "240.0.0.1",
        ] {
            assert!(!is_public(ip.parse().unwrap()), "{ip}");
        }
        for ip in [
            "93.184.216.34",
            "8.8.8.8",
            "2606:4700::1111",
            "2001:4860:4860::8888",
            "64:ff9b::808:808",
            "2002:808:808::1",
            "::ffff:8.8.8.8",
        ] {
            assert!(is_public(ip.parse().unwrap()), "{ip}");
        }
    }

    #[test]
    fn every_spelling_of_an_address_is_judged_as_that_address() {
        let none = PrivateRanges::default();
        for entry in [
            "127.0.0.1:8080",
            "127.1:8080",
            "2130706433:8080",
            "0x7f.0.0.1",
            "0177.0.0.1",
            "169.254.169.254",
            "10.0.0.5:6379",
            "192.168.1.1",
            "100.64.0.1",
            "[fd00::1]",
            "[::ffff:169.254.169.254]",
            "[::ffff:7f00:1]:80",
            "0.0.0.0",
            "0",
            "localhost:8080",
            "api.localhost",
        ] {
            let host = AllowedHost::parse(entry).unwrap();
            let err = host.check_reach(&none).unwrap_err();
            assert!(err.0.contains(entry), "{entry}: {err}");
        }
        assert_eq!(
            AllowedHost::parse("127.1:80").unwrap().to_string(),
            "127.0.0.1:80"
        );
        for entry in ["api.example.com", "8.8.8.8:53", "[2606:4700::1111]"] {
            AllowedHost::parse(entry)
                .unwrap()
                .check_reach(&none)
                .unwrap();
        }
    }

    #[test]
    fn the_operator_opens_ranges_and_nothing_else() {
        let opened = PrivateRanges::new(vec!["127.0.0.1/32".parse().unwrap()]);
        assert!(opened.permits("127.0.0.1".parse().unwrap()));
        assert!(opened.permits("::ffff:127.0.0.1".parse().unwrap()));
        assert!(!opened.permits("127.0.0.2".parse().unwrap()));
        assert!(!opened.permits("169.254.169.254".parse().unwrap()));
        AllowedHost::parse("127.1:9000")
            .unwrap()
            .check_reach(&opened)
            .unwrap();
    }
}
