//! Login throttling that stops guessing without letting a stranger lock an owner out
//! (SPEC §17).
//!
//! Every attempt is counted under three keys before its password is hashed — the account and
//! the client's address together (the *pair*), the account, and the address (IPv6 per /64, so
//! one host cannot rotate through its own prefix) — as *pending*, in one statement per key,
//! so concurrent guesses cannot slip past a limit. When the check ends the attempt stops being
//! pending and, if the password was wrong, becomes a *failure*. Failures over a key's limit
//! answer "too many failed attempts"; attempts in flight over it answer "busy" (a burst of
//! correct logins is never called a failure).
//!
//! The account's own limit is what a stranger can trip for anyone whose email they know. So
//! where the owner signed in before — a browser holding a signed device cookie for the account,
//! or the same address (or /64) that succeeded for it — the account's limit does not apply,
//! while the pair's and the address's still do: the attacker's own pair and address stay
//! throttled, the owner's password is still checked. Unknown and known accounts are counted
//! and answered alike; the device cookie names accounts only by an HMAC.

use std::net::IpAddr;

use super::{Browser, LoginProblem};
use crate::oauth::{Provider, Tenant};

/// How long a device cookie vouches for the accounts it names.
pub const DEVICE_COOKIE_SECONDS: i64 = 365 * 24 * 3600;
/// How long an address that signed in to an account is remembered.
const PLACE_SECONDS: i64 = 180 * 24 * 3600;
/// Accounts one device cookie remembers (the most recent).
const DEVICE_ACCOUNTS: usize = 5;
/// Seconds a login waits before trying again when too many attempts are in flight or every
/// password check is busy.
pub(super) const BUSY_RETRY_AFTER: i64 = 2;

/// An attempt counted as pending under its keys, to be closed with how it ended.
#[derive(Debug)]
pub(super) struct Attempt {
    keys: [String; 3],
    place: String,
    device_tag: String,
}

/// How a counted attempt ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Ended {
    /// The password was wrong (or the account unknown or blocked).
    Failed,
    /// The password was right.
    Succeeded,
    /// The password was not checked (every hashing slot was busy).
    Unchecked,
}

/// The address part of the throttle keys: an IPv4 address, or the /64 of an IPv6 one.
pub fn address_key(ip: &str) -> String {
    match ip.parse::<IpAddr>() {
        Ok(IpAddr::V6(v6)) => match v6.to_ipv4_mapped() {
            Some(v4) => v4.to_string(),
            None => {
                let s = v6.segments();
                format!("{:x}:{:x}:{:x}:{:x}::/64", s[0], s[1], s[2], s[3])
            }
        },
        Ok(IpAddr::V4(v4)) => v4.to_string(),
        Err(_) => ip.to_string(),
    }
}

impl Provider {
    /// The tag that stands for `username` of `tenant` in a device cookie.
    fn device_tag(&self, tenant: &Tenant, username: &str) -> String {
        self.mac("device-account", &format!("{}\0{username}", tenant.id))[..16].to_string()
    }

    /// The accounts a device cookie vouches for (none when it is forged or too old).
    fn device_tags(&self, cookie: Option<&str>) -> Vec<String> {
        let Some(cookie) = cookie.filter(|c| c.len() <= 512) else {
            return Vec::new();
        };
        let Some((body, signature)) = cookie.rsplit_once('.') else {
            return Vec::new();
        };
        let expected = self.mac("device", body);
        if !crate::crypto::ct_eq(expected.as_bytes(), signature.as_bytes()) {
            return Vec::new();
        }
        let Some((issued, tags)) = body.split_once('.') else {
            return Vec::new();
        };
        match issued.parse::<i64>() {
            Ok(at) if self.now() - at < DEVICE_COOKIE_SECONDS => {
                tags.split('~').map(String::from).collect()
            }
            _ => Vec::new(),
        }
    }

    /// The device cookie after a successful login: this account first, then the others it
    /// already named.
    pub(super) fn device_cookie_after(&self, attempt: &Attempt, previous: Option<&str>) -> String {
        let mut tags = vec![attempt.device_tag.clone()];
        for tag in self.device_tags(previous) {
            if !tags.contains(&tag) && tags.len() < DEVICE_ACCOUNTS {
                tags.push(tag);
            }
        }
        let body = format!("{}.{}", self.now(), tags.join("~"));
        let signature = self.mac("device", &body);
        format!("{body}.{signature}")
    }

    /// Counts an attempt before its password is checked; `Err` is the answer when it must not
    /// be checked at all.
    pub(super) async fn open_attempt(
        &self,
        tenant: &Tenant,
        username: &str,
        browser: &Browser,
    ) -> anyhow::Result<Result<Attempt, LoginProblem>> {
        let now = self.now();
        let lt = self.lifetimes();
        let address = address_key(&browser.ip);
        let keys = [
            format!("pair:{username}|{address}"),
            format!("account:{username}"),
            format!("ip:{address}"),
        ];
        let limits = [
            lt.max_failed_logins,
            lt.max_failed_logins_per_account,
            lt.max_failed_logins_per_ip,
        ];
        let mut counts = Vec::with_capacity(3);
        for key in &keys {
            counts.push(
                self.store()
                    .begin_login_attempt(&tenant.id, key, now, now - lt.throttle_window)
                    .await?,
            );
        }
        let attempt = Attempt {
            place: crate::crypto::hex(&crate::crypto::hash_token(&format!("{username}|{address}"))),
            device_tag: self.device_tag(tenant, username),
            keys,
        };
        let account = counts[1];
        let account_over = account.failures + account.pending > limits[1];
        // Only asked when the account's limit is what stands in the way, so the extra read
        // tells nothing about which accounts exist.
        let owner_place = account_over && self.owner_place(tenant, &attempt, browser).await?;
        let (mut throttled, mut busy) = (false, false);
        for (i, (c, limit)) in counts.iter().zip(limits).enumerate() {
            if i == 1 && owner_place {
                continue;
            }
            throttled |= c.failures >= limit;
            busy |= c.failures + c.pending > limit;
        }
        if throttled || busy {
            self.close_attempt(tenant, &attempt, Ended::Unchecked)
                .await?;
            return Ok(Err(if throttled {
                LoginProblem::Throttled {
                    retry_after: lt.throttle_window,
                }
            } else {
                LoginProblem::Busy {
                    retry_after: BUSY_RETRY_AFTER,
                }
            }));
        }
        Ok(Ok(attempt))
    }

    /// Whether the attempt comes from where the account's owner signed in before.
    async fn owner_place(
        &self,
        tenant: &Tenant,
        attempt: &Attempt,
        browser: &Browser,
    ) -> anyhow::Result<bool> {
        if self
            .device_tags(browser.device.as_deref())
            .contains(&attempt.device_tag)
        {
            return Ok(true);
        }
        Ok(self
            .store()
            .login_place_known(&tenant.id, &attempt.place, self.now() - PLACE_SECONDS)
            .await?)
    }

    /// Stops counting the attempt as pending, with how it ended.
    pub(super) async fn close_attempt(
        &self,
        tenant: &Tenant,
        attempt: &Attempt,
        ended: Ended,
    ) -> anyhow::Result<()> {
        let store = self.store();
        let [pair, account, address] = &attempt.keys;
        let failed = ended == Ended::Failed;
        let succeeded = ended == Ended::Succeeded;
        // A success forgets the pair's failures only: the account's stay (a stranger's guesses
        // are not wiped by the owner signing in), and the address's too (or an attacker could
        // reset it with an account of their own).
        store
            .end_login_attempt(&tenant.id, pair, failed, succeeded)
            .await?;
        store
            .end_login_attempt(&tenant.id, account, failed, false)
            .await?;
        store
            .end_login_attempt(&tenant.id, address, failed, false)
            .await?;
        if succeeded {
            store
                .record_login_place(&tenant.id, &attempt.place, self.now())
                .await?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ipv6_clients_are_counted_per_64() {
        assert_eq!(address_key("2001:db8:1:2:3:4:5:6"), "2001:db8:1:2::/64");
        assert_eq!(
            address_key("2001:db8:1:2:ffff::1"),
            address_key("2001:db8:1:2::9")
        );
        assert_ne!(
            address_key("2001:db8:1:3::1"),
            address_key("2001:db8:1:2::1")
        );
        assert_eq!(address_key("::ffff:192.0.2.1"), "192.0.2.1");
        assert_eq!(address_key("192.0.2.1"), "192.0.2.1");
    }
}
