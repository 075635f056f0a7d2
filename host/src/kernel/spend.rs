//! Spend: a completion's budgets shown to policy, its worst case reserved
//! after the decision, and the reservation settled when it is recorded
//! ([`crate::budget`] keeps the ledger).

use serde_json::{Value, json};

use super::{Kernel, OpenCall};
use crate::budget::{Amounts, BudgetStatus, Refusal, Settlement, Who};
use crate::config::{ModelConfig, ModelKind};
use crate::error::{CallError, ErrorCode};
use crate::gateway::{BudgetRecord, cost_micro_usd, micro_from_pico};
use crate::registry::ToolEntry;
use crate::sandbox::chat::Usage;

/// Tokens a prompt is reserved beyond its JSON bytes: the chat format's own.
const PROMPT_OVERHEAD_TOKENS: u64 = 64;
/// Tokens reserved per image in a prompt: more than any provider counts
/// for one image (OpenAI's largest tiling is about 1,100).
const IMAGE_TOKENS: u64 = 2_000;
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
    /// The budgets that apply to a completion of `model` for the caller,
    /// for `input.budget`. A ledger that cannot be read denies the call.
    pub(super) async fn budgets_for(
        &self,
        call: &OpenCall,
        model: &ToolEntry,
    ) -> Result<Vec<BudgetStatus>, CallError> {
        self.ledger
            .applicable(who(call, &model.name))
            .await
            .map_err(|e| unavailable(&e.to_string()))
    }

    /// Reserves the worst case of the completion of `model` (asked with
    /// `args`, or the caller's arguments when none) against every budget
    /// that applies, or refuses it. When a budget applies, the request
    /// sent upstream asks for no more tokens than were reserved: the
    /// arguments it returns say so.
    pub(super) async fn reserve(
        &self,
        call: &mut OpenCall,
        model: &ToolEntry,
        args: Option<Value>,
    ) -> Result<Option<Value>, CallError> {
        let Some(config) = &model.model else {
            return Ok(args);
        };
        // Priced at the most expensive model it may fall back to, for no
        // more tokens than the smallest of them produces.
        let fallbacks: Vec<_> = config
            .fallbacks
            .iter()
            .filter_map(|name| self.registry.model(name).cloned())
            .collect();
        let chain: Vec<&ModelConfig> = std::iter::once(&**config)
            .chain(fallbacks.iter().filter_map(|m| m.model.as_deref()))
            .collect();
        let cap = chain
            .iter()
            .map(|m| m.max_output_tokens)
            .min()
            .unwrap_or(config.max_output_tokens);
        let asked = args.as_ref().unwrap_or(&call.request.args);
        let max_tokens = max_tokens(config.kind, asked, cap);
        let mut worst = Amounts::default();
        for model in &chain {
            let amounts = worst_case(model, asked, max_tokens);
            worst.micro_usd = worst.micro_usd.max(amounts.micro_usd);
            worst.tokens = worst.tokens.max(amounts.tokens);
            worst.requests = worst.requests.max(amounts.requests);
        }
        let priced = chain.iter().all(|m| m.prices.is_some());
        let expires_in = config.time_limit + RESERVATION_GRACE;
        let reserved = self
            .ledger
            .reserve(
                &call.call_id,
                who(call, &model.name),
                worst,
                priced,
                expires_in,
            )
            .await
            .map_err(|refusal| refused(refusal, &model.name))?;
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
    /// Returns what the record keeps, or why the ledger could not take it.
    pub(super) async fn settle(
        &self,
        call: &OpenCall,
        result: &Result<Value, CallError>,
    ) -> Result<Option<BudgetRecord>, CallError> {
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
        Ok(Some(BudgetRecord {
            budgets: reservation.budgets.clone(),
            reserved: reservation.worst,
            charged: match settlement {
                Settlement::Charged(amounts) => amounts,
                Settlement::Released => Amounts::default(),
            },
        }))
    }
}

/// The caller and model, as budgets' scopes see them.
fn who<'a>(call: &'a OpenCall, model: &'a str) -> Who<'a> {
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

/// The most a completion of `args` by `model` can cost, sent with
/// `max_tokens`.
///
/// Prompt tokens are bounded, not estimated: a byte-level BPE tokenizer
/// makes at most one token per UTF-8 byte, and the prompt's JSON (messages
/// and tools) has more bytes than its text; images count [`IMAGE_TOKENS`]
/// each. Completion tokens are bounded by `max_tokens`.
pub(crate) fn worst_case(model: &ModelConfig, args: &Value, max_tokens: Option<u32>) -> Amounts {
    let bytes = |key: &str| {
        args.get(key)
            .filter(|v| !v.is_null())
            .map_or(0, |v| v.to_string().len() as u64)
    };
    let prompt = match model.kind {
        ModelKind::Chat => {
            let images = args
                .get("messages")
                .and_then(Value::as_array)
                .into_iter()
                .flatten()
                .filter_map(|m| m.get("content").and_then(Value::as_array))
                .flatten()
                .filter(|part| part.get("type").and_then(Value::as_str) == Some("image_url"))
                .count() as u64;
            bytes("messages")
                + bytes("tools")
                + bytes("response_format")
                + images * IMAGE_TOKENS
                + PROMPT_OVERHEAD_TOKENS
        }
        ModelKind::Embeddings => bytes("input") + PROMPT_OVERHEAD_TOKENS,
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

/// Why a reservation was refused, for the caller.
fn refused(refusal: Refusal, model: &str) -> CallError {
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
                             request to `{model}` needs {}",
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
                        "budget `{budget}` has {} of {} left; this request to `{model}` \
                         may cost up to {} (its prompt and `max_tokens`)",
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
                "budget `{budget}` counts dollars and model `{model}` has no `prices`, so its \
                 cost cannot be bounded; the call is denied"
            ),
        ),
        Refusal::Unavailable(cause) => unavailable(&cause),
    }
}
