//! How v2 settlement outcomes reach the breaker, and how a trip half-opens again.

use x402_protocol::{ChainId, Reason, Settlement};

use super::AppState;
use crate::breaker::is_facilitator_failure;
use crate::flags::FlagUpdate;
use crate::telemetry;

impl AppState {
    /// Counts a v2 settlement outcome (seen for the first time) in the breaker; trips v2
    /// settle when the breaker's rules say so.
    pub(super) fn watch_v2_settlement(&self, settlement: &Settlement, network: &ChainId) {
        if is_facilitator_failure(settlement) {
            metrics::counter!(telemetry::BREAKER_FAILURES).increment(1);
        }
        let Some(summary) = self.breaker.observe(settlement) else {
            return;
        };
        let last = settlement.reason.map(Reason::as_str).unwrap_or("unknown");
        let reason = if summary.on_probation {
            format!("a facilitator-side v2 settlement failure while probing after a trip (last: {last} on {network})")
        } else {
            format!(
                "{} facilitator-side v2 settlement failures from {} payers within {}s, {:.0}% of the settlements executed (last: {last} on {network})",
                summary.failures,
                summary.payers,
                self.breaker.policy().window.as_secs(),
                summary.rate * 100.0,
            )
        };
        if self.flags.trip_v2_settle(reason.clone()) {
            metrics::counter!(telemetry::BREAKER_TRIPS).increment(1);
            let probe = self
                .breaker
                .policy()
                .probe_after
                .map(|d| format!("it probes again after {}s", d.as_secs()))
                .unwrap_or_else(|| "an operator must re-enable it".into());
            tracing::error!(reason = %reason, probe = %probe, "v2 settle disabled by breaker");
            self.flags_changed();
            self.publish_flags();
        }
    }

    /// Half-opens a breaker trip once `probe_after` has passed: v2 settle comes back on
    /// probation (the next counted failure trips it at once, a success closes it). An
    /// operator's own switch-off is never undone. True when it probed.
    pub fn probe_breaker(&self) -> bool {
        let Some(after) = self.breaker.policy().probe_after else {
            return false;
        };
        let Some(trip) = self.flags.trip_of("v2_settle_enabled") else {
            return false;
        };
        if trip.at.elapsed().map_or(true, |elapsed| elapsed < after) {
            return false;
        }
        let update = FlagUpdate {
            v2_settle_enabled: Some(true),
            ..FlagUpdate::default()
        };
        if self.update_flags(&update, "breaker_probe").is_err() {
            return false;
        }
        self.breaker.enter_probation();
        tracing::warn!(
            after_seconds = after.as_secs(),
            "v2 settle half-open: the breaker lets settlements through again; the next facilitator-side failure turns it off"
        );
        true
    }
}
