//! Fallbacks: a completion whose model is rate limited, unavailable or too
//! slow is sent to the model's `fallbacks`, in order — each one that policy
//! allows this request on — each within its own time limit, none started
//! after the longest of them has passed since the request. A model that
//! failed that way is passed over for its `cooldown` (on this host). Every
//! hop is in the completion's record.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Instant;

use super::{Kernel, OpenCall, policy_input};
use crate::config::Choose;
use crate::error::{CallError, ErrorCode};
use crate::gateway::Hop;
use crate::policy::Stage;
use crate::registry::ToolEntry;
use crate::session::CallLabels;

/// Errors after which the next model is tried.
const FALL_BACK_ON: &[ErrorCode] = &[
    ErrorCode::ProviderRateLimited,
    ErrorCode::ProviderUnavailable,
    ErrorCode::Timeout,
];

/// What this host has seen of each model: until when it cools down, and
/// its latency (an exponentially weighted mean, in microseconds).
#[derive(Debug, Default)]
pub(super) struct Health(Mutex<HashMap<String, Seen>>);

#[derive(Debug, Default, Clone, Copy)]
struct Seen {
    cooling_until: Option<Instant>,
    latency_us: Option<f64>,
}

impl Health {
    fn cooling(&self, model: &str) -> bool {
        let now = Instant::now();
        self.0.lock().is_ok_and(|seen| {
            seen.get(model)
                .and_then(|s| s.cooling_until)
                .is_some_and(|t| t > now)
        })
    }

    fn start_cooldown(&self, model: &ToolEntry) {
        let cooldown = model.model.as_ref().map(|m| m.cooldown).unwrap_or_default();
        if let Ok(mut seen) = self.0.lock() {
            seen.entry(model.name.clone()).or_default().cooling_until =
                Some(Instant::now() + cooldown);
        }
    }

    /// Notes how long `model` took to answer.
    pub(super) fn answered(&self, model: &str, took: std::time::Duration) {
        let us = took.as_secs_f64() * 1e6;
        if let Ok(mut seen) = self.0.lock() {
            let seen = seen.entry(model.to_string()).or_default();
            seen.latency_us = Some(seen.latency_us.map_or(us, |mean| 0.8 * mean + 0.2 * us));
        }
    }

    fn latency_us(&self, model: &str) -> Option<f64> {
        self.0
            .lock()
            .ok()
            .and_then(|seen| seen.get(model).and_then(|s| s.latency_us))
    }
}

/// The order to try models in, as `choose` says, given each one's name
/// and prices; `latency_us` is what this host measured. Indices into `models`.
fn order(
    models: &[(&str, Option<crate::config::Prices>)],
    choose: Choose,
    latency_us: impl Fn(&str) -> Option<f64>,
) -> Vec<usize> {
    let mut order: Vec<usize> = (0..models.len()).collect();
    match choose {
        Choose::Ordered => {}
        Choose::Cheapest => order.sort_by_key(|&i| {
            models[i]
                .1
                .map_or(u64::MAX, |p| p.input.saturating_add(p.output))
        }),
        Choose::Fastest => order.sort_by(|&a, &b| {
            let latency = |i: usize| latency_us(models[i].0).unwrap_or(-1.0);
            latency(a).total_cmp(&latency(b))
        }),
    }
    order
}

impl Kernel {
    /// The models that may serve a completion of `served`, in order (as
    /// its `choose` says): it and each of its fallbacks policy allows this
    /// request on. A model
    /// cooling down is passed over (and the hop recorded) unless it is the
    /// last one left.
    pub(super) fn plan(&self, call: &mut OpenCall, served: &Arc<ToolEntry>) -> Vec<Arc<ToolEntry>> {
        let fallbacks = served
            .model
            .as_ref()
            .map(|m| m.fallbacks.as_slice())
            .unwrap_or_default();
        let chain: Vec<_> = std::iter::once(served.clone())
            .chain(
                fallbacks
                    .iter()
                    .filter_map(|name| self.registry.model(name).cloned())
                    .filter(|model| self.allows(call, model)),
            )
            .collect();
        let choose = served.model.as_ref().map(|m| m.choose).unwrap_or_default();
        let keys: Vec<_> = chain
            .iter()
            .map(|m| (m.name.as_str(), m.model.as_ref().and_then(|m| m.prices)))
            .collect();
        let chain: Vec<_> = order(&keys, choose, |name| self.health.latency_us(name))
            .into_iter()
            .map(|i| chain[i].clone())
            .collect();
        let mut plan = Vec::with_capacity(chain.len());
        for (i, model) in chain.iter().enumerate() {
            if i + 1 < chain.len() && self.health.cooling(&model.name) {
                call.trail.hops.push(Hop {
                    model: model.name.clone(),
                    error: "cooling-down".into(),
                });
            } else {
                plan.push(model.clone());
            }
        }
        plan
    }

    /// Whether `error` from `model` sends the completion on to the next
    /// model (`more` says there is one): then `model` cools down and the hop
    /// is recorded. No model is tried once the longest time limit of the
    /// plan, counted from the request, has passed.
    pub(super) fn falls_back(
        &self,
        call: &mut OpenCall,
        plan: &[Arc<ToolEntry>],
        model: &ToolEntry,
        error: &CallError,
        more: bool,
    ) -> bool {
        if !FALL_BACK_ON.contains(&error.code) {
            return false;
        }
        self.health.start_cooldown(model);
        let deadline = plan
            .iter()
            .filter_map(|m| m.model.as_ref())
            .map(|m| m.time_limit)
            .max()
            .unwrap_or_default();
        if !more || call.started.elapsed() >= deadline {
            return false;
        }
        call.trail.hops.push(Hop {
            model: model.name.clone(),
            error: error.code.as_str().to_string(),
        });
        true
    }

    /// Whether policy allows this request on the fallback `model`.
    fn allows(&self, call: &OpenCall, model: &ToolEntry) -> bool {
        let context = CallLabels::default();
        let input = policy_input(&call.request, model, context, &[], &[]);
        call.policy
            .decide(Stage::Call, &input)
            .is_ok_and(|decision| decision.allow)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Prices;

    #[test]
    fn models_are_tried_in_order_by_price_or_by_measured_latency() {
        let price = |p: u64| {
            Some(Prices {
                input: p,
                cached_input: p,
                output: p,
            })
        };
        let models = [
            ("a", price(30)),
            ("b", None),
            ("c", price(10)),
            ("d", price(20)),
        ];
        let none = |_: &str| None;
        assert_eq!(order(&models, Choose::Ordered, none), [0, 1, 2, 3]);
        assert_eq!(order(&models, Choose::Cheapest, none), [2, 3, 0, 1]);
        // Not yet measured (`b`) goes first, to be measured.
        let latency = |name: &str| match name {
            "a" => Some(900.0),
            "c" => Some(300.0),
            "d" => Some(500.0),
            _ => None,
        };
        assert_eq!(order(&models, Choose::Fastest, latency), [1, 2, 3, 0]);
    }
}
