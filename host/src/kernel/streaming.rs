//! Streamed completions through the pipeline: admitted like any call, then
//! released to the caller piece by piece. When the output is checked (a
//! verifier examines the model's output, or the bundle has an output
//! decision), text is released only after the verifiers and the output
//! decision have seen it and what follows it: the last
//! [`HOLD_BYTES`] stay back until the next check or the end, so a finding
//! up to that long is caught before any of it leaves. A check that denies
//! stops the stream; the record says how much had been released.

use std::collections::VecDeque;

use serde_json::Value;
use tracing::Instrument;

use super::{Admitted, Kernel, OpenCall, judge, narrowed};
use crate::config::ModelKind;
use crate::config::VerifierStage;
use crate::error::{CallError, ErrorCode};
use crate::gateway::{Assembled, CompletionStream, chunk_json};
use crate::kernel::{CallRequest, CallResponse, check_output};
use crate::policy::{Stage, input};
use crate::sandbox::chat::Chunk;
use crate::verify::Subject;

/// Text held back from the caller until the checks have seen what follows.
pub const HOLD_BYTES: usize = 256;
/// New text that triggers a check.
const CHECK_EVERY_BYTES: usize = 256;
/// Released text the verifiers see again before the new text, so a finding
/// that starts in it is whole.
const OVERLAP_BYTES: usize = 256;

/// A completion being streamed to its caller.
pub struct StreamingCompletion {
    admitted: Admitted,
    stream: CompletionStream,
    assembled: Assembled,
    /// The text of every chunk in order (content and tool-call arguments):
    /// what the checks read and what is released.
    text: String,
    /// Chunks received and not yet released, with the text each carries.
    pending: VecDeque<(Chunk, usize)>,
    /// Whether text must pass the output checks before it is released.
    checked: bool,
    /// Bytes of `text` released, and how far the last check read.
    released: usize,
    checked_to: usize,
    /// Why the stream stopped early, if it did.
    failure: Option<CallError>,
    /// When the first chunk was released, from the request.
    first_release: Option<std::time::Duration>,
}

impl std::fmt::Debug for StreamingCompletion {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StreamingCompletion")
            .field("call_id", &self.admitted.call.call_id)
            .field("released", &self.released)
            .finish_non_exhaustive()
    }
}

impl StreamingCompletion {
    /// The call's id (its audit record's `call_id`).
    pub fn call_id(&self) -> &str {
        &self.admitted.call.call_id
    }

    /// The caller went away: the stream stops and is recorded as cancelled.
    pub fn cancel(&mut self) {
        self.failure.get_or_insert_with(|| {
            CallError::new(
                ErrorCode::Cancelled,
                "the caller closed the connection before the answer was complete",
            )
        });
    }
}

/// How a streamed completion ended.
#[derive(Debug)]
pub struct StreamEnd {
    /// Chunks still to send (OpenAI's chunk form, without `id`, `object`,
    /// `created` and `model`); none when the stream was stopped.
    pub chunks: Vec<Value>,
    /// The recorded outcome: the completion, or why it stopped.
    pub response: CallResponse,
    /// The usage the provider reported, in OpenAI's form.
    pub usage: Option<Value>,
}

impl Kernel {
    /// Admits a completion that asks to be streamed and opens its
    /// provider's stream. A completion refused before or while opening is
    /// recorded and returned as `Err`.
    pub async fn stream(
        &self,
        request: CallRequest,
    ) -> std::result::Result<StreamingCompletion, CallResponse> {
        let mut admitted = self
            .admit_target(request, super::Asked::Model(ModelKind::Chat))
            .await?;
        admitted.call.trail.dispatched = true;
        let span = admitted.call.span.clone();
        let stream = match self.open_stream(&mut admitted).instrument(span).await {
            Ok(stream) => stream,
            Err(error) => return Err(self.finish(admitted, Err(error)).await),
        };
        let tool = admitted.admission.tool.clone();
        let checked = self
            .verifiers
            .any_applies(VerifierStage::Output, &tool.name)
            || admitted.call.policy.has_output_decision();
        Ok(StreamingCompletion {
            admitted,
            stream,
            assembled: Assembled::default(),
            text: String::new(),
            pending: VecDeque::new(),
            checked,
            released: 0,
            checked_to: 0,
            failure: None,
            first_release: None,
        })
    }

    /// Opens the provider's stream of the admitted completion's model, or
    /// of the fallbacks the plan leaves when it is rate limited, unavailable
    /// or too slow to answer; the model that answers becomes the call's.
    async fn open_stream(
        &self,
        admitted: &mut Admitted,
    ) -> std::result::Result<CompletionStream, CallError> {
        let Admitted { call, admission } = admitted;
        let plan = self.plan(call, &admission.tool);
        let args = admission
            .redacted_args
            .clone()
            .unwrap_or_else(|| call.request.args.clone());
        let mut outcome = Err(CallError::new(
            ErrorCode::ProviderUnavailable,
            format!(
                "every model that may serve `{}` is cooling down",
                admission.tool.name
            ),
        ));
        for (i, model) in plan.iter().enumerate() {
            let Some(backend) = self.model_backends.get(&model.name) else {
                return Err(CallError::new(
                    ErrorCode::Internal,
                    "a model without its backend",
                ));
            };
            let run = self.metrics.time(crate::metrics::Stage::Run);
            let trace = crate::telemetry::outgoing(run.span(), call.request.trace.as_ref());
            let opened = backend.open_stream(&args, trace.as_ref()).await;
            drop(run);
            if let Err(error) = &opened
                && self.falls_back(call, &plan, model, error, i + 1 < plan.len())
            {
                outcome = opened;
                continue;
            }
            if model.name != admission.tool.name {
                call.trail.resolved(model);
                admission.tool = model.clone();
                admission.capabilities =
                    narrowed(model.capabilities(), &admission.decision.obligations.limits)
                        .into_owned();
            }
            return opened;
        }
        outcome
    }

    /// The next chunks the caller may have, in OpenAI's chunk form; `None`
    /// once the stream ended or stopped ([`Kernel::end_stream`] says how).
    pub async fn stream_chunks(&self, s: &mut StreamingCompletion) -> Option<Vec<Value>> {
        let span = s.admitted.call.span.clone();
        async move {
            loop {
                if s.failure.is_some() {
                    return None;
                }
                let chunks = match s.stream.next().await {
                    Some(Ok(chunks)) => chunks,
                    Some(Err(error)) => {
                        s.failure = Some(error);
                        return None;
                    }
                    None => return None,
                };
                for chunk in chunks {
                    s.assembled.add(&chunk);
                    let before = s.text.len();
                    s.text.push_str(&chunk.content);
                    for call in &chunk.tool_calls {
                        s.text.push_str(&call.arguments);
                    }
                    s.pending.push_back((chunk, s.text.len() - before));
                }
                if !s.checked {
                    let all = s.text.len();
                    return Some(release(s, all));
                }
                if s.text.len() - s.checked_to < CHECK_EVERY_BYTES {
                    continue;
                }
                if let Err(error) = self.check_stream(s, false).await {
                    s.failure = Some(error);
                    return None;
                }
                let limit = s.text.len().saturating_sub(HOLD_BYTES);
                let released = release(s, limit);
                if !released.is_empty() {
                    return Some(released);
                }
            }
        }
        .instrument(span)
        .await
    }

    /// Ends a stream: a last check of what is held back, then the record.
    pub async fn end_stream(&self, mut s: StreamingCompletion) -> StreamEnd {
        let span = s.admitted.call.span.clone();
        async move {
            let outcome = match s.failure.take() {
                Some(error) => Err(error),
                None => self.complete_stream(&mut s).await,
            };
            let usage = s.assembled.usage().map(crate::gateway::chat::usage);
            let (chunks, result) = match outcome {
                Ok(output) => {
                    let all = s.text.len();
                    (release(&mut s, all), Ok(output))
                }
                Err(error) => (Vec::new(), Err(error)),
            };
            // The provider's connection and the model's slot go before the record.
            drop(s.stream);
            let mut call = s.admitted.call;
            call.trail.released = Some(s.released as u64);
            if result.is_err() && call.trail.keep_text {
                call.trail.released_text = s.text.get(..s.released).map(str::to_string);
            }
            call.trail.first_release = s.first_release;
            call.trail.usage = s.assembled.usage().cloned();
            call.trail.received = !s.text.is_empty() || call.trail.usage.is_some();
            let response = self.conclude(call, result).await;
            StreamEnd {
                chunks,
                response,
                usage,
            }
        }
        .instrument(span)
        .await
    }

    /// The whole completion, once its last text passed the checks.
    async fn complete_stream(
        &self,
        s: &mut StreamingCompletion,
    ) -> std::result::Result<Value, CallError> {
        if s.checked {
            self.check_stream(s, true).await?;
        }
        let Admitted { call, admission } = &s.admitted;
        let tool = &admission.tool;
        let (principal, session) = (&call.request.principal, call.request.session.as_deref());
        self.context
            .add_labels(principal, session, &tool.labels)
            .await?;
        self.context
            .add_labels(principal, session, &admission.decision.obligations.labels)
            .await?;
        let text = s.assembled.completion(&tool.local_name).to_string();
        check_output(tool, &admission.capabilities, &text).await
    }

    /// Checks the text not yet released (with [`OVERLAP_BYTES`] of what
    /// was): the output verifiers and the output decision on the
    /// completion so far. A check that needs what it found redacted stops
    /// the stream: what is streamed cannot be taken back. The last check
    /// (`last`) and any that stops the stream are recorded.
    async fn check_stream(
        &self,
        s: &mut StreamingCompletion,
        last: bool,
    ) -> std::result::Result<(), CallError> {
        s.checked_to = s.text.len();
        let mut from = s.released.saturating_sub(OVERLAP_BYTES);
        while !s.text.is_char_boundary(from) {
            from -= 1;
        }
        let window = Value::String(s.text[from..].to_string());
        let partial = s
            .assembled
            .completion(&s.admitted.admission.tool.local_name);
        let Admitted { call, admission } = &mut s.admitted;
        let tool = &admission.tool;
        let principal = call.request.principal.clone();
        let principal = &principal;
        let verdicts = if self
            .verifiers
            .any_applies(VerifierStage::Output, &tool.name)
        {
            let session = call.request.session.as_deref();
            let session_labels = self.context.session_labels(principal, session).await?;
            let contracts = self.contracts.on_output(&tool.name, None);
            let subject = Subject {
                stage: VerifierStage::Output,
                target: &tool.name,
                content: &window,
                tenant: &principal.tenant,
                session_labels: &session_labels,
                contracts: &contracts,
                sources: &[],
            };
            self.verifiers.verify(&subject).await
        } else {
            Vec::new()
        };
        let verdict = if call.policy.has_output_decision() {
            call.policy.decide_output(
                &admission.input,
                &partial,
                &input::verdicts(verdicts.iter().map(|v| &v.record)),
            )
        } else {
            Err(
                "verifiers examined the output, but the policy bundle has no \
                 `output_decision` to act on their verdicts"
                    .to_string(),
            )
        };
        let (stage, mut fate) = judge(verdict, Stage::Output, tool, principal);
        if let Ok(decision) = &fate {
            let found: Vec<&str> = verdicts
                .iter()
                .filter(|v| !v.record.findings.is_empty())
                .map(|v| v.record.verifier.as_str())
                .filter(|name| {
                    decision
                        .obligations
                        .redact_findings
                        .iter()
                        .any(|r| r == "*" || r == name)
                })
                .collect();
            if !found.is_empty() {
                fate = Err(CallError {
                    reasons: vec![format!(
                        "policy asks to redact what {} found in the completion, and a stream \
                         cannot be redacted",
                        found.join(", ")
                    )],
                    ..CallError::new(
                        ErrorCode::PolicyDenied,
                        format!(
                            "the stream of `{}` was stopped for `{}`",
                            tool.name, principal.id
                        ),
                    )
                });
            }
        }
        if last || fate.is_err() {
            record_check(call, stage, &fate, verdicts);
        }
        let decision = fate?;
        let session = call.request.session.as_deref();
        self.context
            .add_labels(principal, session, &decision.obligations.labels)
            .await?;
        Ok(())
    }
}

/// Notes one check in the call's trail: its verdicts and its decision.
fn record_check(
    call: &mut OpenCall,
    stage: crate::audit::StageDecision,
    fate: &std::result::Result<crate::policy::Decision, CallError>,
    verdicts: Vec<crate::verify::Verdict>,
) {
    call.trail
        .verdicts
        .extend(verdicts.into_iter().map(|v| v.record));
    let fate = match fate {
        Ok(decision) => Ok(decision.clone()),
        Err(error) => Err(error.clone()),
    };
    let _ = call.trail.decided((stage, fate));
}

/// Releases pending chunks from the front while the text released stays
/// within `limit` bytes; chunks without text go with what precedes them.
fn release(s: &mut StreamingCompletion, limit: usize) -> Vec<Value> {
    let mut out = Vec::new();
    while let Some((_, len)) = s.pending.front() {
        if s.released + len > limit {
            break;
        }
        let Some((chunk, len)) = s.pending.pop_front() else {
            break;
        };
        s.released += len;
        out.push(chunk_json(&chunk));
    }
    if !out.is_empty() && s.first_release.is_none() {
        s.first_release = Some(s.admitted.call.started.elapsed());
    }
    out
}
