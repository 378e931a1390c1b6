//! Hostile-names mode ([`super::SimConfig::hostile_names`]): the organisation's human-facing
//! strings, and a few ids, carry attacks on every layer the data crosses: path traversal (`/`,
//! `..`, `\`) for the lake's file names, markup for the HTML reports, formulas for the CSV
//! reports, quotes, newlines, tabs and NUL for every parser and writer, and bidirectional-text
//! overrides (U+202E, U+200F) for whoever reads the result.
//!
//! It rewrites the generated structure once, deterministically, before the organisation is
//! indexed, so the routes serve the same strings the ground truth holds and every cost (a pure
//! function of seed, resource id and day) still adds up. Names become `<payload> <original
//! name>`, with the payloads taken in turn from [`HOSTILE_PAYLOADS`], so names stay unique
//! wherever the originals were. Ids keep their original id as a prefix, so they stay unique:
//!
//! - the second account's id gains `/../"q"` and a newline, and the third account's id is the
//!   second's original id plus `_.._"q"_`: the two map to the same file name under a lossy
//!   `[^A-Za-z0-9_-]` → `_` encoding;
//! - the first Elastigroup of every account gains `/../`, a NUL, quotes and `<b>`;
//! - the first Ocean cluster of every account gains quotes, `<i>` and `/..`.
//!
//! The first accounts are named [`HOSTILE_ACCOUNT_NAMES`]; audit events are generated per day,
//! and their user names come from [`HOSTILE_AUDIT_USERS`].

use super::org::{Account, Tag};

/// Every payload the names carry, each at the start of a name (so the CSV formula triggers
/// `=`, `+`, `-`, `@`, tab and carriage return are each a cell's first character).
pub const HOSTILE_PAYLOADS: &[&str] = &[
    "<script>alert(1)</script>",
    "<img src=x onerror=alert(1)>",
    "=cmd|' /C calc'!A0",
    "+SUM(1)",
    "@x",
    "-2+3",
    "invoice\u{202E}fdp.exe",
    "\u{200F}rtl-mark",
    "../../etc/passwd",
    "O'Brien \"the quote\", comma",
    "line one\nline two",
    "nul\0byte",
    "\ttab",
    "\rreturn",
    "back\\slash'; DROP TABLE accounts;--",
];

/// The first accounts' names: whole payloads, some with whitespace at either end (which a
/// trimming parser would lose).
pub const HOSTILE_ACCOUNT_NAMES: &[&str] = &[
    "=cmd|' /C calc'!A0",
    "<img src=x onerror=alert(1)>",
    "\t<script>alert(1)</script>\n",
    "@x invoice\u{202E}fdp.exe ",
];

/// Audit-event user names in hostile mode.
pub const HOSTILE_AUDIT_USERS: &[&str] = &[
    "<img src=x onerror=alert(1)>@example.com",
    "=cmd|' /C calc'!A0",
    "+SUM(1)@example.com",
    "@x",
    "-2+3@example.com",
    "\u{202E}moc.elpmaxe@eve",
    "mallory\u{200F}@example.com",
    "o'brien \"ops\"\n@example.com",
    "<script>alert(1)</script>",
];

/// Hands out the payloads in turn.
struct Payloads {
    next: usize,
}

impl Payloads {
    fn take(&mut self) -> &'static str {
        let payload = HOSTILE_PAYLOADS[self.next % HOSTILE_PAYLOADS.len()];
        self.next += 1;
        payload
    }

    fn name(&mut self, original: &str) -> String {
        format!("{} {original}", self.take())
    }

    fn rename(&mut self, name: &mut String) {
        *name = self.name(name);
    }

    fn tag_values(&mut self, tags: &mut [Tag]) {
        for tag in tags {
            if tag.key == "team" || tag.key == "cost-center" {
                self.rename(&mut tag.value);
            }
        }
    }
}

/// Rewrites names and some ids of generated accounts; see the module documentation.
pub(crate) fn make_hostile(accounts: &mut [Account]) {
    let mut payloads = Payloads { next: 0 };
    if accounts.len() > 2 {
        let original = accounts[1].id.clone();
        accounts[1].id = format!("{original}/../\"q\"\n");
        accounts[2].id = format!("{original}_.._\"q\"_");
    }
    for (position, account) in accounts.iter_mut().enumerate() {
        account.name = match HOSTILE_ACCOUNT_NAMES.get(position) {
            Some(name) => (*name).to_string(),
            None => payloads.name(&account.name),
        };
    }
    for account in accounts.iter_mut() {
        for (position, group) in account.groups.iter_mut().enumerate() {
            if position == 0 {
                group.id = format!("{}/../\0\"'<b>", group.id);
            }
            payloads.rename(&mut group.name);
            payloads.rename(&mut group.description);
            payloads.rename(&mut group.use_case);
            payloads.tag_values(&mut group.tags);
        }
        for scaler in &mut account.emr_scalers {
            payloads.rename(&mut scaler.name);
            payloads.rename(&mut scaler.description);
        }
        for managed in &mut account.managed_instances {
            payloads.rename(&mut managed.name);
            payloads.tag_values(&mut managed.tags);
        }
        for unmanaged in &mut account.unmanaged_resources {
            payloads.rename(&mut unmanaged.name);
        }
        for (position, cluster) in account.clusters.iter_mut().enumerate() {
            if position == 0 {
                cluster.id = format!("{}'\"<i>/..", cluster.id);
            }
            payloads.rename(&mut cluster.name);
            for node_group in &mut cluster.virtual_node_groups {
                payloads.rename(&mut node_group.name);
            }
            for namespace in &mut cluster.namespaces {
                payloads.rename(&mut namespace.name);
                for key in ["team", "cost-center"] {
                    if let Some(value) = namespace.labels.get_mut(key) {
                        payloads.rename(value);
                    }
                }
                for workload in &mut namespace.workloads {
                    payloads.rename(&mut workload.name);
                    for container in &mut workload.containers {
                        payloads.rename(&mut container.name);
                    }
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::super::org::Organisation;
    use super::super::Scale;
    use super::*;
    use std::collections::HashSet;

    #[test]
    fn hostile_mode_is_deterministic_keeps_ids_unique_and_carries_every_payload() {
        let organisation = Organisation::generate_with(42, Scale::Small, true);
        assert_eq!(
            organisation,
            Organisation::generate_with(42, Scale::Small, true)
        );
        assert!(organisation.hostile_names());
        let plain = Organisation::generate(42, Scale::Small);
        assert!(!plain.hostile_names());
        assert_eq!(organisation.accounts.len(), plain.accounts.len());

        let mut ids = HashSet::new();
        let mut strings = Vec::new();
        for account in &organisation.accounts {
            assert!(ids.insert(account.id.clone()), "{:?} twice", account.id);
            strings.push(account.name.clone());
            for group in &account.groups {
                assert!(ids.insert(group.id.clone()));
                strings.extend([group.name.clone(), group.description.clone()]);
            }
            for cluster in &account.clusters {
                assert!(ids.insert(cluster.id.clone()));
                strings.push(cluster.name.clone());
                let mut namespaces = HashSet::new();
                for namespace in &cluster.namespaces {
                    assert!(namespaces.insert(namespace.name.clone()));
                    strings.push(namespace.name.clone());
                    strings.extend(namespace.labels.values().cloned());
                    let mut workloads = HashSet::new();
                    for workload in &namespace.workloads {
                        assert!(workloads.insert(workload.name.clone()));
                        strings.push(workload.name.clone());
                    }
                }
            }
        }
        for payload in HOSTILE_PAYLOADS {
            assert!(
                strings.iter().any(|text| text.starts_with(payload)),
                "{payload:?} is carried by no name"
            );
        }
        let account_ids: Vec<&str> = organisation
            .accounts
            .iter()
            .map(|account| account.id.as_str())
            .collect();
        assert!(account_ids[1].contains("/../") && account_ids[1].contains('\n'));
        assert!(account_ids[2].contains(".."));
        let group = &organisation.accounts[0].groups[0];
        assert!(group.id.contains('\0') && group.id.contains('/'));
        // The indexes follow the rewritten ids, so the ground truth answers for them.
        assert_eq!(
            organisation
                .find_group(&group.id)
                .map(|(_, found)| &found.name),
            Some(&group.name)
        );
        assert!(organisation.account(account_ids[1]).is_some());
        let cluster = &organisation.accounts[0].clusters[0];
        assert!(organisation.find_cluster(&cluster.id).is_some());
        // The money is the same kind of figure: non-zero, and a pure function of the ids.
        let day = chrono::NaiveDate::from_ymd_opt(2026, 11, 1).unwrap();
        assert!(
            organisation
                .account_day(account_ids[1], day)
                .actual
                .micros()
                > 0
        );

        let users: HashSet<String> = (0..10)
            .flat_map(|offset| organisation.audit_events(day + chrono::Duration::days(offset)))
            .map(|event| event.user)
            .collect();
        assert!(users
            .iter()
            .all(|user| HOSTILE_AUDIT_USERS.contains(&user.as_str())));
        assert!(users.len() >= 5, "{users:?}");
    }
}
