//! Spend: the budgets a call would charge shown to policy, its worst case
//! reserved after the decision, and the reservation settled when it is
//! recorded ([`crate::budget`] keeps the ledger). A completion's worst case
//! is its prompt and `max_tokens` at its model's prices; a tool call's is
//! its price (`[tool_prices]`).

use std::sync::Arc;

use serde_json::{Value, json};

use super::{Kernel, OpenCall};
use crate::budget::{Amounts, BudgetStatus, Refusal, Settlement, Spend, Unit, Who};
use crate::config::{ModelConfig, ModelKind};
use crate::error::{CallError, ErrorCode};
use crate::gateway::{cost_micro_usd, micro_from_pico};
use crate::registry::{TargetKind, ToolEntry};
use crate::sandbox::chat::Usage;
use crate::tokens::Tokenizer;

/// How long after its model's time limit a reservation outlives its host
/// (the time its settlement may take; one that comes later still charges).
const RESERVATION_GRACE: std::time::Duration = std::time::Duration::from_secs(5);

/// Errors that mean the provider billed nothing: it refused the request,
/// or it was never sent.
const NOTHING_BILLED: &[ErrorCode] = &[
    ErrorCode::UnsupportedRequest,
    ErrorCode::PluginBusy,
    ErrorCode::ProviderRejected,
    ErrorCode::ProviderRateLimited,
    ErrorCode::ProviderUnavailable,
];

impl Kernel {
    /// The budgets a call of `target` would charge, for `input.budget`:
    /// those in the caller's scope for a completion; for a tool call with a
    /// price the money budgets among them that name no model; none for a
    /// tool without a price. A ledger that cannot be read denies the call.
    pub(super) async fn budgets_for(
        &self,
        call: &OpenCall,
        target: &ToolEntry,
    ) -> Result<Vec<BudgetStatus>, CallError> {
        let model = match target.kind {
            TargetKind::Model => Some(target.name.as_str()),
            TargetKind::Tool if self.tool_prices.of(&target.name).is_some() => None,
            TargetKind::Tool => return Ok(Vec::new()),
        };
        let mut budgets = self
            .ledger
            .applicable(who(call, model))
            .await
            .map_err(|e| unavailable(&e.to_string()))?;
        if model.is_none() {
            budgets.retain(|status| status.budget.unit == Unit::Usd);
        }
        Ok(budgets)
    }

    /// Reserves the worst case of a call of `target` against every budget
    /// that applies, or refuses it: a tool's price, or the completion of a
    /// model asked with `args` (the caller's arguments when none). When a
    /// budget holds a completion, the request sent upstream asks for no
    /// more tokens than were reserved: the arguments it returns say so.
    /// `retries` is how often policy lets a failing call be tried again.
    pub(super) async fn reserve(
        &self,
        call: &mut OpenCall,
        target: &ToolEntry,
        args: Option<Value>,
        retries: u8,
    ) -> Result<Option<Value>, CallError> {
        let attempts = u32::from(retries) + 1;
        let Some(config) = &target.model else {
            let Some(price) = self.tool_prices.of(&target.name) else {
                return Ok(args);
            };
            let worst = Amounts {
                micro_usd: price,
                ..Amounts::default()
            };
            let expires_in = target.capabilities().time_limit * attempts + RESERVATION_GRACE;
            call.trail.reservation = self
                .ledger
                .reserve(&call.call_id, who(call, None), worst, true, expires_in)
                .await
                .map_err(|refusal| refused(refusal, &target.name, "its price per call"))?;
            return Ok(args);
        };
        let model = target;
        // Priced at the most expensive model it may fall back to, for no
        // more tokens than the smallest of them produces.
        let chain: Vec<Arc<ModelConfig>> = std::iter::once(config.clone())
            .chain(
                config
                    .fallbacks
                    .iter()
                    .filter_map(|name| self.registry.model(name)?.model.clone()),
            )
            .collect();
        let cap = chain
            .iter()
            .map(|m| m.max_output_tokens)
            .min()
            .unwrap_or(config.max_output_tokens);
        let asked = args.as_ref().unwrap_or(&call.request.args);
        let max_tokens = max_tokens(config.kind, asked, cap);
        let worst = if chain.iter().all(|m| m.tokenizer == Tokenizer::Bytes) {
            chain_worst_case(&chain, asked, max_tokens)
        } else {
            // Counting with a real tokenizer takes about 0.4 ms per 10 kB
            // of prompt: off the async workers.
            let (chain, asked) = (chain.clone(), asked.clone());
            tokio::task::spawn_blocking(move || chain_worst_case(&chain, &asked, max_tokens))
                .await
                .map_err(|e| {
                    CallError::new(
                        ErrorCode::Internal,
                        format!("counting the prompt's tokens failed: {e}"),
                    )
                })?
        };
        let priced = chain.iter().all(|m| m.prices.is_some());
        // Every model of the chain may be tried, each as often as policy
        // allows, before the call settles.
        let expires_in = chain
            .iter()
            .map(|m| m.time_limit)
            .sum::<std::time::Duration>()
            * attempts
            + RESERVATION_GRACE;
        let reserved = self
            .ledger
            .reserve(
                &call.call_id,
                who(call, Some(&model.name)),
                worst,
                priced,
                expires_in,
            )
            .await
            .map_err(|refusal| refused(refusal, &model.name, "its prompt and `max_tokens`"))?;
        let (Some(reservation), Some(max_tokens)) = (reserved.clone(), max_tokens) else {
            call.trail.reservation = reserved;
            return Ok(args);
        };
        call.trail.reservation = Some(reservation);
        let mut args = args.unwrap_or_else(|| call.request.args.clone());
        if let Some(object) = args.as_object_mut() {
            object.insert("max_tokens".into(), json!(max_tokens));
            if object.contains_key("max_completion_tokens") {
                object.insert("max_completion_tokens".into(), json!(max_tokens));
            }
        }
        Ok(Some(args))
    }

    /// Settles the call's reservation, if it holds one: charged what the
    /// provider reported, released when the provider billed nothing, or
    /// charged the whole reservation when what it billed is unknown.
    /// A tool call is charged its price once the tool was asked to run.
    /// Returns what the record keeps, or why the ledger could not take it.
    pub(super) async fn settle(
        &self,
        call: &OpenCall,
        result: &Result<Value, CallError>,
    ) -> Result<Option<Spend>, CallError> {
        let Some(reservation) = &call.trail.reservation else {
            return Ok(None);
        };
        let prices = call
            .trail
            .model
            .as_ref()
            .and_then(|m| m.model.as_ref())
            .and_then(|m| m.prices.as_ref());
        let settlement = match (&call.trail.usage, result) {
            (Some(usage), _) if usage.prompt_tokens > 0 => Settlement::Charged(Amounts {
                micro_usd: cost_micro_usd(prices, usage),
                tokens: u64::from(usage.prompt_tokens) + u64::from(usage.completion_tokens),
                requests: 1,
            }),
            (_, Err(_)) if !call.trail.dispatched => Settlement::Released,
            (_, Err(e)) if NOTHING_BILLED.contains(&e.code) && !call.trail.received => {
                Settlement::Released
            }
            _ => Settlement::Charged(reservation.worst),
        };
        self.ledger
            .settle(&call.call_id, reservation.budgets.len(), settlement)
            .await
            .map_err(|e| unavailable(&e.to_string()))?;
        Ok(Some(Spend {
            budgets: reservation.budgets.clone(),
            reserved: reservation.worst,
            charged: match settlement {
                Settlement::Charged(amounts) => amounts,
                Settlement::Released => Amounts::default(),
            },
        }))
    }
}

/// The caller and model (none for a tool call), as budgets' scopes see them.
fn who<'a>(call: &'a OpenCall, model: Option<&'a str>) -> Who<'a> {
    let principal = &call.request.principal;
    Who {
        principal: &principal.id,
        tenant: &principal.tenant,
        team: principal.attributes.get("team").and_then(Value::as_str),
        model,
    }
}

/// The `max_tokens` a chat request `args` is sent with when a budget
/// holds it: what it asks, at most `cap` (the smallest `max_output_tokens`
/// of the models that may serve it), or `cap`. None for embeddings.
fn max_tokens(kind: ModelKind, args: &Value, cap: u32) -> Option<u32> {
    (kind == ModelKind::Chat).then(|| {
        args.get("max_completion_tokens")
            .or_else(|| args.get("max_tokens"))
            .and_then(Value::as_u64)
            .map_or(cap, |n| u32::try_from(n).unwrap_or(u32::MAX).min(cap))
    })
}

/// The most a completion of `args` can cost on any model of `chain`, in
/// each unit, sent with `max_tokens`.
fn chain_worst_case(chain: &[Arc<ModelConfig>], args: &Value, max_tokens: Option<u32>) -> Amounts {
    chain
        .iter()
        .map(|model| worst_case(model, args, max_tokens))
        .fold(Amounts::default(), |worst, amounts| Amounts {
            micro_usd: worst.micro_usd.max(amounts.micro_usd),
            tokens: worst.tokens.max(amounts.tokens),
            requests: worst.requests.max(amounts.requests),
        })
}

/// The most a completion of `args` by `model` can cost, sent with
/// `max_tokens`: its prompt tokens bounded by the model's tokenizer
/// ([`crate::tokens`]: exact where Warden has it, else one per JSON byte),
/// its completion tokens by `max_tokens`.
fn worst_case(model: &ModelConfig, args: &Value, max_tokens: Option<u32>) -> Amounts {
    let prompt = match model.kind {
        ModelKind::Chat => model.tokenizer.chat_prompt_bound(args),
        ModelKind::Embeddings => model.tokenizer.embeddings_input_bound(args),
    };
    let completion = u64::from(max_tokens.unwrap_or(0));
    let micro_usd = model.prices.map_or(0, |prices| {
        micro_from_pico(
            u128::from(prompt) * u128::from(prices.input)
                + u128::from(completion) * u128::from(prices.output),
        )
    });
    Amounts {
        micro_usd,
        tokens: prompt + completion,
        requests: 1,
    }
}

/// The usage a completion's output reports, if it reports any.
pub(crate) fn reported_usage(output: &Value) -> Option<Usage> {
    let usage = output.get("usage")?;
    let count = |pointer: &str| {
        usage
            .pointer(pointer)
            .and_then(Value::as_u64)
            .map(|n| u32::try_from(n).unwrap_or(u32::MAX))
    };
    Some(Usage {
        prompt_tokens: count("/prompt_tokens")?,
        cached_prompt_tokens: count("/prompt_tokens_details/cached_tokens").unwrap_or(0),
        completion_tokens: count("/completion_tokens").unwrap_or(0),
    })
}

/// The ledger could not be used: the call is denied (the cause is logged,
/// not returned: it may name hosts or users).
fn unavailable(cause: &str) -> CallError {
    tracing::error!(error = %cause, "the spend ledger is unavailable");
    CallError::new(
        ErrorCode::BudgetUnavailable,
        "the spend ledger is unavailable, so the call is denied",
    )
}

/// Why a reservation for a call of `target` was refused, for the caller;
/// `worst` says what its worst case is made of.
fn refused(refusal: Refusal, target: &str, worst: &str) -> CallError {
    match refusal {
        Refusal::Exceeded {
            budget,
            unit,
            period,
            limit,
            used,
            asked,
            period_end,
        } => {
            let retry_after_ms = period_end.map(|end| {
                u32::try_from((end - chrono::Utc::now().timestamp_millis()).max(0))
                    .unwrap_or(u32::MAX)
            });
            let amount = |n: i64| match unit {
                crate::budget::Unit::Usd => format!("${}.{:06}", n / 1_000_000, n % 1_000_000),
                crate::budget::Unit::Tokens => format!("{n} tokens"),
                crate::budget::Unit::Requests => format!("{n} requests"),
            };
            if period == crate::budget::Period::Minute {
                return CallError {
                    retry_after_ms,
                    ..CallError::new(
                        ErrorCode::RateLimited,
                        format!(
                            "rate limit `{budget}` allows {} a minute and has {} left; this \
                             request to `{target}` needs {}",
                            amount(limit),
                            amount((limit - used).max(0)),
                            amount(asked)
                        ),
                    )
                };
            }
            CallError {
                retry_after_ms,
                ..CallError::new(
                    ErrorCode::BudgetExceeded,
                    format!(
                        "budget `{budget}` has {} of {} left; this request to `{target}` \
                         may cost up to {} ({worst})",
                        amount((limit - used).max(0)),
                        amount(limit),
                        amount(asked)
                    ),
                )
            }
        }
        Refusal::Unpriced { budget } => CallError::new(
            ErrorCode::BudgetUnavailable,
            format!(
                "budget `{budget}` counts dollars and model `{target}` has no `prices`, so its \
                 cost cannot be bounded; the call is denied"
            ),
        ),
        Refusal::Unavailable(cause) => unavailable(&cause),
    }
}
