//! Runtime feature flags: what an operator can switch without a redeploy.
//!
//! Flags start from the environment and the configuration file and then change at
//! runtime through `PUT /admin/flags`, a reload on SIGHUP, or the settlement breaker.
//! Every change is logged with old and new values. Flags are per instance (see
//! `docs/operations.md`).

use std::collections::BTreeMap;
use std::fmt;
use std::sync::RwLock;
use std::time::SystemTime;

use serde::{Deserialize, Serialize};
use serde_json::{json, Value};
use x402_protocol::networks;
use x402_protocol::{ChainId, X402Version};

/// Which protocol versions are served.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct VersionSupport {
    /// v1 requests accepted.
    pub v1: bool,
    /// v2 requests accepted.
    pub v2: bool,
}

impl VersionSupport {
    /// Parses `v1,v2`, `v1` or `v2` (spaces and case ignored).
    pub fn parse(text: &str) -> Result<Self, String> {
        let mut support = VersionSupport {
            v1: false,
            v2: false,
        };
        for part in text.split(',').map(|p| p.trim().to_ascii_lowercase()) {
            match part.as_str() {
                "v1" | "1" => support.v1 = true,
                "v2" | "2" => support.v2 = true,
                other => {
                    return Err(format!(
                        "unknown version {other:?}; expected v1, v2 or v1,v2"
                    ))
                }
            }
        }
        if !support.v1 && !support.v2 {
            return Err("at least one of v1, v2 must be enabled".into());
        }
        Ok(support)
    }

    /// Whether `version` is served.
    pub fn allows(&self, version: X402Version) -> bool {
        match version {
            X402Version::V1 => self.v1,
            X402Version::V2 => self.v2,
        }
    }
}

impl fmt::Display for VersionSupport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match (self.v1, self.v2) {
            (true, true) => f.write_str("v1,v2"),
            (true, false) => f.write_str("v1"),
            _ => f.write_str("v2"),
        }
    }
}

/// The table of on/off flags: one line a flag (its field, environment key, default and
/// meaning). The field of [`Flags`] and [`FlagUpdate`], the default, the `/flags` entry,
/// the admin update, the `x402_feature_flag_enabled` gauge and the configuration key (the
/// environment key, or the field's name in the file) all come from this line.
macro_rules! switches {
    ($( $(#[$doc:meta])* $name:ident = $env:literal, $default:literal; )*) => {
        /// One consistent view of all flags.
        #[derive(Debug, Clone, PartialEq, Eq)]
        pub struct Flags {
            /// `X402_VERSION_SUPPORT`: which protocol versions are answered at all.
            pub x402_version_support: VersionSupport,
            /// `V2_NETWORKS`: networks v2 may use; empty means every served network.
            pub v2_networks: Vec<ChainId>,
            $( $(#[$doc])* pub $name: bool, )*
        }

        impl Default for Flags {
            fn default() -> Self {
                Flags {
                    x402_version_support: VersionSupport { v1: true, v2: true },
                    v2_networks: Vec::new(),
                    $( $name: $default, )*
                }
            }
        }

        /// A partial change: the body of `PUT /admin/flags`, or a reloaded file.
        #[derive(Debug, Default, Clone, Deserialize, Serialize)]
        #[serde(deny_unknown_fields)]
        pub struct FlagUpdate {
            /// New `x402_version_support` (`v1,v2`, `v1` or `v2`).
            pub x402_version_support: Option<String>,
            /// New `v2_networks` (CAIP-2 ids or v1 names; empty: all).
            pub v2_networks: Option<Vec<String>>,
            $( $(#[$doc])* pub $name: Option<bool>, )*
        }

        impl Flags {
            /// Every on/off flag: (name, environment key, default).
            pub const SWITCHES: &'static [(&'static str, &'static str, bool)] =
                &[ $( (stringify!($name), $env, $default), )* ];

            /// Every on/off flag with its current value.
            pub fn switches(&self) -> Vec<(&'static str, bool)> {
                vec![ $( (stringify!($name), self.$name), )* ]
            }

            /// Sets the on/off flag `name`; `false` when there is none by that name.
            pub fn set_switch(&mut self, name: &str, on: bool) -> bool {
                match name {
                    $( stringify!($name) => self.$name = on, )*
                    _ => return false,
                }
                true
            }
        }

        impl FlagUpdate {
            /// The update that sets every flag to `flags`.
            pub fn from_flags(flags: &Flags) -> Self {
                FlagUpdate {
                    x402_version_support: Some(flags.x402_version_support.to_string()),
                    v2_networks: Some(flags.v2_networks.iter().map(ToString::to_string).collect()),
                    $( $name: Some(flags.$name), )*
                }
            }

            /// The on/off flags this update sets.
            fn switches(&self) -> Vec<(&'static str, bool)> {
                let mut set = Vec::new();
                $( if let Some(on) = self.$name { set.push((stringify!($name), on)); } )*
                set
            }
        }
    };
}

switches! {
    /// `V2_ENABLED`: the master switch of v2 traffic.
    v2_enabled = "V2_ENABLED", true;
    /// `V2_VERIFY_ENABLED`: v2 `/verify`.
    v2_verify_enabled = "V2_VERIFY_ENABLED", true;
    /// `V2_SETTLE_ENABLED`: v2 `/settle` (the breaker turns this one off).
    v2_settle_enabled = "V2_SETTLE_ENABLED", true;
    /// `SHADOW_V2_ENABLED`: v1 verifications are also checked by the v2 path.
    shadow_v2_enabled = "SHADOW_V2_ENABLED", false;
    /// `DISCOVERY_ENABLED`: the `bazaar` extension (settled payments list their resource;
    /// `GET /discovery/resources` answers).
    discovery_enabled = "DISCOVERY_ENABLED", true;
}

/// Why a request is refused by a flag, in words an operator recognises.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FlagRefusal {
    /// The version is not in `X402_VERSION_SUPPORT`.
    VersionOff(String),
    /// A v2 flag is off.
    V2Off(String),
}

impl Flags {
    /// Whether v2 may serve `endpoint` on `network`; `Err` names the flag that says no.
    pub fn admit(
        &self,
        version: X402Version,
        settle: bool,
        network: &ChainId,
    ) -> Result<(), FlagRefusal> {
        if !self.x402_version_support.allows(version) {
            return Err(FlagRefusal::VersionOff(format!(
                "x402 v{} is switched off on this facilitator (X402_VERSION_SUPPORT={})",
                version.number(),
                self.x402_version_support
            )));
        }
        if version != X402Version::V2 {
            return Ok(());
        }
        let off = |flag: &str| Err(FlagRefusal::V2Off(format!("v2 is switched off ({flag})")));
        if !self.v2_enabled {
            return off("v2_enabled=false");
        }
        if settle && !self.v2_settle_enabled {
            return off("v2_settle_enabled=false");
        }
        if !settle && !self.v2_verify_enabled {
            return off("v2_verify_enabled=false");
        }
        if !self.v2_networks.is_empty() && !self.v2_networks.contains(network) {
            return Err(FlagRefusal::V2Off(format!(
                "v2 is not enabled on {network} (v2_networks)"
            )));
        }
        Ok(())
    }

    /// Whether v2 kinds of `network` are advertised in `/supported`.
    pub fn v2_serves(&self, network: &ChainId) -> bool {
        self.x402_version_support.v2
            && self.v2_enabled
            && (self.v2_networks.is_empty() || self.v2_networks.contains(network))
    }

    fn as_map(&self) -> BTreeMap<&'static str, Value> {
        let mut map = BTreeMap::from([
            (
                "x402_version_support",
                json!(self.x402_version_support.to_string()),
            ),
            (
                "v2_networks",
                json!(self
                    .v2_networks
                    .iter()
                    .map(ToString::to_string)
                    .collect::<Vec<_>>()),
            ),
        ]);
        for (name, on) in self.switches() {
            map.insert(name, json!(on));
        }
        map
    }
}

/// Parses a list of CAIP-2 ids or v1 names (`V2_NETWORKS`).
pub fn parse_networks(items: &[String]) -> Result<Vec<ChainId>, String> {
    let mut out = Vec::new();
    for item in items.iter().map(|i| i.trim()).filter(|i| !i.is_empty()) {
        let id = networks::resolve_network(item).map_err(|e| e.to_string())?;
        if !out.contains(&id) {
            out.push(id);
        }
    }
    Ok(out)
}

impl FlagUpdate {
    /// `flags` with this update applied, or what is wrong with the update.
    fn applied_to(&self, flags: &Flags) -> Result<Flags, String> {
        let mut next = flags.clone();
        if let Some(text) = &self.x402_version_support {
            next.x402_version_support =
                VersionSupport::parse(text).map_err(|m| format!("x402_version_support: {m}"))?;
        }
        if let Some(list) = &self.v2_networks {
            // A JSON list names each network; a blank item is a mistake, not "every network"
            // (that is the empty list). `V2_NETWORKS` text may still end in a comma.
            if list.iter().any(|item| item.trim().is_empty()) {
                return Err("v2_networks: an empty network name".into());
            }
            next.v2_networks = parse_networks(list).map_err(|m| format!("v2_networks: {m}"))?;
        }
        for (name, on) in self.switches() {
            next.set_switch(name, on);
        }
        Ok(next)
    }
}

/// A flag the breaker turned off: why and when, until an operator turns it on again.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Trip {
    /// What the breaker saw.
    pub reason: String,
    /// When it tripped.
    pub at: SystemTime,
}

/// One flag change, for the log and the admin answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FlagChange {
    /// Flag name.
    pub flag: &'static str,
    /// Value before.
    pub old: Value,
    /// Value after.
    pub new: Value,
}

/// The live flags of this instance.
pub struct FlagStore {
    state: RwLock<(Flags, BTreeMap<&'static str, Trip>)>,
}

impl FlagStore {
    /// Starts from the configured flags.
    pub fn new(initial: Flags) -> Self {
        FlagStore {
            state: RwLock::new((initial, BTreeMap::new())),
        }
    }

    /// The state for reading; a panic elsewhere while it was held does not make the flags
    /// unreadable (they are plain values, always consistent).
    fn read(&self) -> std::sync::RwLockReadGuard<'_, (Flags, BTreeMap<&'static str, Trip>)> {
        self.state
            .read()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// The state for changing, with the same tolerance of poisoning as [`FlagStore::read`].
    fn write(&self) -> std::sync::RwLockWriteGuard<'_, (Flags, BTreeMap<&'static str, Trip>)> {
        self.state
            .write()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// The current flags (a cheap copy).
    pub fn snapshot(&self) -> Flags {
        self.read().0.clone()
    }

    /// Applies an update from `source` (`admin`, `sighup`, ...); logs and returns the
    /// changes. An operator turning a tripped flag back on clears the trip.
    pub fn apply(&self, update: &FlagUpdate, source: &str) -> Result<Vec<FlagChange>, String> {
        let mut guard = self.write();
        let next = update.applied_to(&guard.0)?;
        let changes = diff(&guard.0, &next);
        for change in &changes {
            tracing::warn!(
                flag = change.flag,
                old = %change.old,
                new = %change.new,
                source,
                "feature flag changed"
            );
            if change.new == json!(true) {
                guard.1.remove(change.flag);
            }
        }
        guard.0 = next;
        Ok(changes)
    }

    /// Turns `v2_settle_enabled` off on behalf of the breaker; false if it already was.
    pub fn trip_v2_settle(&self, reason: String) -> bool {
        let mut guard = self.write();
        if !guard.0.v2_settle_enabled {
            return false;
        }
        guard.0.v2_settle_enabled = false;
        tracing::error!(
            flag = "v2_settle_enabled",
            old = true,
            new = false,
            source = "breaker",
            reason = %reason,
            "feature flag changed"
        );
        guard.1.insert(
            "v2_settle_enabled",
            Trip {
                reason,
                at: SystemTime::now(),
            },
        );
        true
    }

    /// The whole state as one JSON document, as instances sharing a PostgreSQL ledger
    /// exchange it: every flag plus the breaker's trip of `v2_settle_enabled`, if any.
    pub fn to_shared(&self) -> Value {
        let (flags, trips) = self.read().clone();
        let trip = trips.get("v2_settle_enabled").map(|t| {
            json!({
                "reason": t.reason,
                "at": t.at.duration_since(std::time::UNIX_EPOCH).map(|d| d.as_secs()).unwrap_or(0),
            })
        });
        // Every flag, as the update that would set it; one place lists the flags.
        let mut document = serde_json::to_value(FlagUpdate::from_flags(&flags)).unwrap_or_default();
        if let Value::Object(fields) = &mut document {
            fields.insert("trip".into(), trip.unwrap_or(Value::Null));
        }
        document
    }

    /// Applies a document of [`FlagStore::to_shared`] written by another instance.
    pub fn apply_shared(&self, document: &Value) -> Result<Vec<FlagChange>, String> {
        let mut fields = document.clone();
        let trip = fields
            .as_object_mut()
            .and_then(|o| o.remove("trip"))
            .unwrap_or(Value::Null);
        let update: FlagUpdate =
            serde_json::from_value(fields).map_err(|e| format!("shared flags: {e}"))?;
        let changes = self.apply(&update, "shared")?;
        let mut guard = self.write();
        match trip.get("reason").and_then(Value::as_str) {
            Some(reason) if !guard.0.v2_settle_enabled => {
                let at = std::time::UNIX_EPOCH
                    + std::time::Duration::from_secs(
                        trip.get("at").and_then(Value::as_u64).unwrap_or(0),
                    );
                guard.1.insert(
                    "v2_settle_enabled",
                    Trip {
                        reason: reason.to_owned(),
                        at,
                    },
                );
            }
            _ => {
                guard.1.remove("v2_settle_enabled");
            }
        }
        Ok(changes)
    }

    /// The trip record of `flag`, if the breaker turned it off.
    pub fn trip_of(&self, flag: &str) -> Option<Trip> {
        self.read().1.get(flag).cloned()
    }

    /// `GET /flags`: every flag by its seed name, plus `disabled_by` for tripped ones.
    pub fn to_json(&self) -> Value {
        let (flags, trips) = self.read().clone();
        let mut out = serde_json::Map::new();
        for (name, value) in flags.as_map() {
            out.insert(name.to_owned(), value);
        }
        let disabled: serde_json::Map<String, Value> = trips
            .iter()
            .map(|(flag, trip)| {
                (
                    (*flag).to_owned(),
                    json!({
                        "by": "breaker",
                        "reason": trip.reason,
                        "at": humantime::format_rfc3339_seconds(trip.at).to_string(),
                    }),
                )
            })
            .collect();
        out.insert("disabled_by".to_owned(), Value::Object(disabled));
        Value::Object(out)
    }
}

fn diff(old: &Flags, new: &Flags) -> Vec<FlagChange> {
    let before = old.as_map();
    new.as_map()
        .into_iter()
        .filter(|(name, value)| before.get(name) != Some(value))
        .map(|(flag, value)| FlagChange {
            flag,
            old: before.get(flag).cloned().unwrap_or(Value::Null),
            new: value,
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn v2_flags_gate_only_v2() {
        let flags = Flags {
            v2_enabled: false,
            ..Flags::default()
        };
        let base = ChainId::eip155(84532);
        assert!(flags.admit(X402Version::V1, true, &base).is_ok());
        assert!(matches!(
            flags.admit(X402Version::V2, false, &base),
            Err(FlagRefusal::V2Off(_))
        ));
        let flags = Flags {
            v2_networks: vec![ChainId::eip155(8453)],
            ..Flags::default()
        };
        assert!(flags.admit(X402Version::V2, false, &base).is_err());
        assert!(flags
            .admit(X402Version::V2, false, &ChainId::eip155(8453))
            .is_ok());
        let flags = Flags {
            v2_settle_enabled: false,
            ..Flags::default()
        };
        assert!(flags.admit(X402Version::V2, false, &base).is_ok());
        assert!(flags.admit(X402Version::V2, true, &base).is_err());
    }

    #[test]
    fn updates_report_changes_and_reject_bad_values() {
        let store = FlagStore::new(Flags::default());
        let update: FlagUpdate =
            serde_json::from_str(r#"{"v2_enabled": false, "v2_networks": ["base-sepolia"]}"#)
                .unwrap();
        let changes = store.apply(&update, "test").unwrap();
        assert_eq!(changes.len(), 2);
        assert_eq!(store.snapshot().v2_networks, vec![ChainId::eip155(84532)]);
        let bad: FlagUpdate = serde_json::from_str(r#"{"v2_networks": ["atlantis"]}"#).unwrap();
        assert!(store.apply(&bad, "test").is_err());
        for blank in [
            r#"{"v2_networks": [""]}"#,
            r#"{"v2_networks": ["base", " "]}"#,
        ] {
            let blank: FlagUpdate = serde_json::from_str(blank).unwrap();
            let refused = store.apply(&blank, "test").unwrap_err();
            assert!(refused.contains("empty network name"), "{refused}");
        }
        assert_eq!(store.snapshot().v2_networks, vec![ChainId::eip155(84532)]);
        assert!(serde_json::from_str::<FlagUpdate>(r#"{"v3_enabled": true}"#).is_err());
        assert!(store.apply(&update, "test").unwrap().is_empty());
    }

    #[test]
    fn breaker_trip_is_reported_until_an_operator_turns_the_flag_on() {
        let store = FlagStore::new(Flags::default());
        assert!(store.trip_v2_settle("5 failures in 120s".into()));
        assert!(!store.trip_v2_settle("again".into()));
        let json = store.to_json();
        assert_eq!(json["v2_settle_enabled"], false);
        assert_eq!(
            json["disabled_by"]["v2_settle_enabled"]["reason"],
            "5 failures in 120s"
        );
        let on = FlagUpdate {
            v2_settle_enabled: Some(true),
            ..FlagUpdate::default()
        };
        store.apply(&on, "admin").unwrap();
        assert!(store.trip_of("v2_settle_enabled").is_none());
        assert_eq!(store.to_json()["v2_settle_enabled"], true);
    }
}
