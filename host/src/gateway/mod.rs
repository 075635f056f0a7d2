//! The LLM gateway's backend: models served through sandboxed provider
//! adapters. A model (`[models.NAME]`) is a target like a tool — decided,
//! verified and audited by the same pipeline — whose [`Backend`] asks its
//! adapter (`[adapters.NAME]`, a `provider` component) to translate the
//! request, sends it over the host's own [`transport`], and asks the same
//! adapter instance to translate the answer. The adapter never sees the
//! network or the credential.

pub(crate) mod cache;
pub(crate) mod chat;
mod stream;
mod transport;

use std::collections::BTreeMap;
use std::sync::Arc;

use serde_json::Value;

use crate::backend::{Backend, BoxFuture, Invocation, OutputForm, Provider, Ran};
use crate::capabilities::Effective;
use crate::config::{Config, ModelConfig, ModelKind, Prices};
use crate::error::{CallError, Error, ErrorCode, Result};
use crate::manifest::PluginKind;
use crate::registry::{LoadedComponent, ToolEntry, load_component};
use crate::sandbox::chat::{AdapterError, AdapterInfo, ChatRequest, Credential, Usage};
use crate::sandbox::{AdapterInstance, Prepared, Sandbox};
use crate::schema::Schema;
use crate::trace::TraceParent;
use stream::Framer;
pub(crate) use stream::{Assembled, CompletionStream, chunk_json};
use transport::{Route, Transport};

/// The request schema every model's calls are checked against.
const CHAT_REQUEST_SCHEMA: &str = include_str!("../../../docs/schemas/chat-request.v1.json");
/// The answer schema every model's outputs are checked against.
const CHAT_RESPONSE_SCHEMA: &str = include_str!("../../../docs/schemas/chat-response.v1.json");
/// The same for embeddings models.
const EMBEDDINGS_REQUEST_SCHEMA: &str =
    include_str!("../../../docs/schemas/embeddings-request.v1.json");
const EMBEDDINGS_RESPONSE_SCHEMA: &str =
    include_str!("../../../docs/schemas/embeddings-response.v1.json");

/// A provider adapter, loaded and asked for its framing and credential placement.
#[derive(Debug)]
struct LoadedAdapter {
    name: String,
    prepared: Prepared,
    capabilities: Effective,
    info: AdapterInfo,
    /// Its identity for policy input and audit records.
    provider: Provider,
}

/// What serves one model's completions.
#[derive(Debug)]
pub(crate) struct ModelBackend {
    adapter: Arc<LoadedAdapter>,
    model: Arc<ModelConfig>,
    /// The adapter's limits with the model's time limit, concurrency and
    /// answer size: what the kernel bounds the completion by.
    capabilities: Effective,
    slots: Arc<tokio::sync::Semaphore>,
    transport: Transport,
    sandbox: Sandbox,
}

/// A model the gateway serves: its target and its backend.
#[derive(Debug)]
pub(crate) struct Model {
    /// What the registry resolves and the pipeline decides on.
    pub(crate) entry: Arc<ToolEntry>,
    /// What serves it, streams included.
    pub(crate) backend: Arc<ModelBackend>,
}

/// Loads every adapter and builds every model, by model name.
pub(crate) async fn load(config: &Config, sandbox: &Sandbox) -> Result<BTreeMap<String, Model>> {
    let mut adapters = BTreeMap::new();
    for (name, adapter) in &config.adapters {
        let fail = |message: String| Error::Adapter {
            adapter: name.clone(),
            message,
        };
        let LoadedComponent {
            manifest,
            sha256,
            capabilities,
            prepared,
        } = load_component(
            name,
            PluginKind::Provider,
            &adapter.source(),
            config,
            sandbox,
        )
        .await
        .map_err(fail)?;
        let info = sandbox
            .adapter(name, &prepared, &capabilities)
            .await
            .map_err(|e| fail(format!("cannot start: {}", e.message)))?
            .info()
            .await
            .map_err(|e| fail(format!("`info` failed: {}", e.message)))?;
        if let Credential::Header(header) = &info.credential
            && http::HeaderName::from_bytes(header.to_ascii_lowercase().as_bytes()).is_err()
        {
            return Err(fail(format!(
                "`info` names `{header}` as its credential header, which is not a header name"
            )));
        }
        let provider = Provider {
            name: name.clone(),
            version: manifest.version.clone(),
            sha256: Some(sha256),
            upstream: None,
            upstream_json: None,
        };
        adapters.insert(
            name.clone(),
            Arc::new(LoadedAdapter {
                name: name.clone(),
                prepared,
                capabilities,
                info,
                provider,
            }),
        );
    }
    if config.models.is_empty() {
        return Ok(BTreeMap::new());
    }
    let transport = Transport::new().map_err(Error::Sandbox)?;
    let schema = |text: &str| Schema::parse(text).map_err(Error::Sandbox);
    let chat = (schema(CHAT_REQUEST_SCHEMA)?, schema(CHAT_RESPONSE_SCHEMA)?);
    let embeddings = (
        schema(EMBEDDINGS_REQUEST_SCHEMA)?,
        schema(EMBEDDINGS_RESPONSE_SCHEMA)?,
    );
    let mut models = BTreeMap::new();
    for (name, model) in &config.models {
        // The config checked that the adapter exists.
        let Some(adapter) = adapters.get(&model.adapter) else {
            continue;
        };
        let capabilities = Effective {
            time_limit: model.time_limit,
            max_concurrent: model.max_concurrent,
            output_max_bytes: model.max_response_bytes,
            ..adapter.capabilities.clone()
        };
        let model = Arc::new(model.clone());
        let backend = Arc::new(ModelBackend {
            adapter: adapter.clone(),
            model: model.clone(),
            slots: Arc::new(tokio::sync::Semaphore::new(model.max_concurrent as usize)),
            capabilities,
            transport: transport.clone(),
            sandbox: sandbox.clone(),
        });
        let (request, response) = match model.kind {
            ModelKind::Chat => chat.clone(),
            ModelKind::Embeddings => embeddings.clone(),
        };
        let entry = ToolEntry::model(name, model, backend.clone(), request, response);
        models.insert(
            name.clone(),
            Model {
                entry: Arc::new(entry),
                backend,
            },
        );
    }
    Ok(models)
}

impl Backend for ModelBackend {
    fn provider(&self) -> &Provider {
        &self.adapter.provider
    }

    fn capabilities(&self) -> &Effective {
        &self.capabilities
    }

    fn slots(&self) -> &tokio::sync::Semaphore {
        &self.slots
    }

    fn output_form(&self) -> OutputForm {
        OutputForm::Document
    }

    fn invoke<'a>(&'a self, call: Invocation<'a>) -> BoxFuture<'a, Ran> {
        Box::pin(async move {
            Ran {
                output: match self.model.kind {
                    ModelKind::Chat => self.complete(call.args, call.trace).await,
                    ModelKind::Embeddings => self.embed(call.args, call.trace).await,
                },
                refusals: Vec::new(),
            }
        })
    }
}

impl ModelBackend {
    /// One completion: translate, send, translate back, in one adapter instance.
    async fn complete(
        &self,
        args: &Value,
        trace: Option<&TraceParent>,
    ) -> std::result::Result<String, CallError> {
        let deadline = tokio::time::Instant::now() + self.model.time_limit;
        let request = self.request(args)?;
        if request.stream {
            return Err(CallError::new(
                ErrorCode::UnsupportedRequest,
                "`stream: true` asks for a streamed answer, which this face does not serve",
            ));
        }
        let mut instance = self.instance().await?;
        let encoded = instance
            .encode(&request)
            .await?
            .map_err(|e| self.adapter_error(e))?;
        let route = self.route(deadline, trace);
        let answer = self.transport.exchange(&route, encoded).await?;
        let decoded = instance
            .decode(&answer)
            .await?
            .map_err(|e| self.adapter_error(e))?;
        Ok(chat::response(&decoded).to_string())
    }

    /// Embeddings: translate, send, translate back, in one adapter instance.
    async fn embed(
        &self,
        args: &Value,
        trace: Option<&TraceParent>,
    ) -> std::result::Result<String, CallError> {
        let deadline = tokio::time::Instant::now() + self.model.time_limit;
        let request = chat::embeddings_request(args, &self.model.upstream_model)
            .map_err(|m| CallError::new(ErrorCode::UnsupportedRequest, m))?;
        let mut instance = self.instance().await?;
        let encoded = instance
            .encode_embeddings(&request)
            .await?
            .map_err(|e| self.adapter_error(e))?;
        let route = self.route(deadline, trace);
        let answer = self.transport.exchange(&route, encoded).await?;
        let decoded = instance
            .decode_embeddings(&answer)
            .await?
            .map_err(|e| self.adapter_error(e))?;
        if decoded.vectors.len() != request.inputs.len() {
            return Err(CallError::new(
                ErrorCode::ProviderError,
                format!(
                    "the provider at {} answered {} embeddings for {} inputs",
                    self.origin(),
                    decoded.vectors.len(),
                    request.inputs.len()
                ),
            ));
        }
        Ok(chat::embeddings_response(&decoded).to_string())
    }

    /// Opens a streamed completion: the adapter instance that encodes the
    /// request decodes every event of the answer. The stream holds one of
    /// the model's concurrency slots until it is dropped.
    pub(crate) async fn open_stream(
        &self,
        args: &Value,
        trace: Option<&TraceParent>,
    ) -> std::result::Result<CompletionStream, CallError> {
        let deadline = tokio::time::Instant::now() + self.model.time_limit;
        let busy = || {
            CallError::new(
                ErrorCode::PluginBusy,
                format!(
                    "the model is serving its maximum of {} completions",
                    self.model.max_concurrent
                ),
            )
        };
        let permit = tokio::time::timeout_at(deadline, self.slots.clone().acquire_owned())
            .await
            .map_err(|_| busy())?
            .map_err(|_| busy())?;
        let request = self.request(args)?;
        let mut instance = self.instance().await?;
        let encoded = instance
            .encode(&request)
            .await?
            .map_err(|e| self.adapter_error(e))?;
        let route = self.route(deadline, trace);
        let response = self.transport.open(&route, encoded).await?;
        if !response.status().is_success() {
            let answer = transport::answer(&route, response).await?;
            let status = answer.status;
            return Err(match instance.decode(&answer).await? {
                Err(e) => self.adapter_error(e),
                Ok(_) => CallError::new(
                    ErrorCode::ProviderError,
                    format!("the provider answered {status} to a streamed request"),
                ),
            });
        }
        Ok(CompletionStream {
            instance,
            response,
            framer: Framer::new(self.adapter.info.framing),
            deadline,
            origin: self.origin().to_string(),
            adapter: self.adapter.name.clone(),
            max_bytes: self.model.max_response_bytes,
            read: 0,
            ended: false,
            _permit: permit,
        })
    }

    /// The adapter's request for the chat request `args`.
    fn request(&self, args: &Value) -> std::result::Result<ChatRequest, CallError> {
        chat::request(args, &self.model.upstream_model)
            .map_err(|m| CallError::new(ErrorCode::UnsupportedRequest, m))
    }

    /// A fresh instance of the model's adapter.
    async fn instance(&self) -> std::result::Result<AdapterInstance, CallError> {
        let adapter = &self.adapter;
        self.sandbox
            .adapter(&adapter.name, &adapter.prepared, &adapter.capabilities)
            .await
    }

    fn route<'a>(
        &'a self,
        deadline: tokio::time::Instant,
        trace: Option<&'a TraceParent>,
    ) -> Route<'a> {
        Route {
            trace,
            origin: &self.model.origin,
            secret: self.model.secret.as_ref(),
            credential: &self.adapter.info.credential,
            deadline,
            max_response_bytes: self.model.max_response_bytes,
        }
    }

    fn origin(&self) -> &str {
        self.model.origin.as_str().trim_end_matches('/')
    }

    fn adapter_error(&self, error: AdapterError) -> CallError {
        adapter_error(&self.adapter.name, self.origin(), error)
    }
}

/// What an adapter's translation error means for the caller.
fn adapter_error(adapter: &str, origin: &str, error: AdapterError) -> CallError {
    let cut = |text: &str| crate::bounds::prefix(text, 1024).to_string();
    match error {
        AdapterError::Unsupported(m) => CallError::new(
            ErrorCode::UnsupportedRequest,
            format!(
                "adapter `{adapter}` cannot express this request: {}",
                cut(&m)
            ),
        ),
        AdapterError::Malformed(m) => CallError::new(
            ErrorCode::ProviderError,
            format!(
                "the answer of the provider at {origin} could not be read: {}",
                cut(&m)
            ),
        ),
        AdapterError::Upstream(e) => {
            let code = match e.status {
                429 => ErrorCode::ProviderRateLimited,
                400 | 404 | 409 | 413 | 422 => ErrorCode::ProviderRejected,
                408 | 500..=599 => ErrorCode::ProviderUnavailable,
                _ => ErrorCode::ProviderError,
            };
            CallError {
                retry_after_ms: e.retry_after_ms,
                ..CallError::new(
                    code,
                    format!(
                        "the provider at {origin} answered {} ({}): {}",
                        e.status,
                        cut(&e.kind),
                        cut(&e.message)
                    ),
                )
            }
        }
    }
}

/// A completion's usage and cost, for its audit record.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub(crate) struct CompletionRecord {
    /// The model that served it: the one asked for (the record's `tool`),
    /// unless policy routed it to another.
    pub(crate) model: String,
    /// The provider's model id it was sent as.
    pub(crate) upstream_model: String,
    /// Where it was sent.
    pub(crate) origin: String,
    /// Tokens, as the provider counted them.
    pub(crate) prompt_tokens: u64,
    /// Of the prompt tokens, those served from the provider's cache.
    pub(crate) cached_prompt_tokens: u64,
    /// Completion tokens.
    pub(crate) completion_tokens: u64,
    /// What the completion cost at the configured prices, in millionths of a US dollar.
    pub(crate) cost_micro_usd: u64,
    /// Why the first choice ended.
    pub(crate) finish_reason: Option<String>,
    /// For a streamed completion, the bytes of text released to the caller
    /// (all of it, unless the stream was stopped); none when not streamed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) released_bytes: Option<u64>,
    /// For a streamed completion, microseconds from the request to its
    /// first chunk released to the caller (its time to first token, checks
    /// included); the record's `duration_us` is the whole.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) first_chunk_us: Option<u64>,
    /// The response cache's part: `hit` (answered from it, at no cost) or
    /// `stored` (kept for the next identical request); none otherwise.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) cache: Option<String>,
    /// The models that did not serve it before the one that did (`model`),
    /// each with why: fallbacks taken.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub(crate) hops: Vec<Hop>,
}

impl CompletionRecord {
    /// The record of a completion of `model` (named `name`) that answered
    /// `output`, or of one that did not (`output` none).
    pub(crate) fn new(
        name: &str,
        model: &ModelConfig,
        output: Option<&Value>,
        released_bytes: Option<u64>,
    ) -> CompletionRecord {
        let usage = output.and_then(|o| o.get("usage"));
        let count = |key: &str| usage.and_then(|u| u.get(key)).and_then(Value::as_u64);
        let usage = Usage {
            prompt_tokens: clamp(count("prompt_tokens")),
            cached_prompt_tokens: clamp(
                usage
                    .and_then(|u| u.pointer("/prompt_tokens_details/cached_tokens"))
                    .and_then(Value::as_u64),
            ),
            completion_tokens: clamp(count("completion_tokens")),
        };
        CompletionRecord {
            model: name.to_string(),
            upstream_model: model.upstream_model.clone(),
            origin: model.origin.as_str().trim_end_matches('/').to_string(),
            prompt_tokens: usage.prompt_tokens.into(),
            cached_prompt_tokens: usage.cached_prompt_tokens.into(),
            completion_tokens: usage.completion_tokens.into(),
            cost_micro_usd: cost_micro_usd(model.prices.as_ref(), &usage),
            finish_reason: output
                .and_then(|o| o.pointer("/choices/0/finish_reason"))
                .and_then(Value::as_str)
                .map(str::to_string),
            released_bytes,
            first_chunk_us: None,
            cache: None,
            hops: Vec::new(),
        }
    }
}

/// One model a completion was not served by, and why.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub(crate) struct Hop {
    /// The model.
    pub(crate) model: String,
    /// Its error code, or `cooling-down` when it was passed over.
    pub(crate) error: String,
}

fn clamp(count: Option<u64>) -> u32 {
    count.map_or(0, |n| u32::try_from(n).unwrap_or(u32::MAX))
}

/// The cost of `usage` at `prices` (per token, in millionths of a
/// millionth of a dollar), in millionths of a dollar, rounded up; nothing
/// when the model has no prices.
pub(crate) fn cost_micro_usd(prices: Option<&Prices>, usage: &Usage) -> u64 {
    let Some(prices) = prices else {
        return 0;
    };
    let cached = u128::from(usage.cached_prompt_tokens.min(usage.prompt_tokens));
    let fresh = u128::from(usage.prompt_tokens) - cached;
    let pico = fresh * u128::from(prices.input)
        + cached * u128::from(prices.cached_input)
        + u128::from(usage.completion_tokens) * u128::from(prices.output);
    micro_from_pico(pico)
}

/// Millionths of a dollar from millionths of those, rounded up (a charge
/// is never less than the cost).
pub(crate) fn micro_from_pico(pico: u128) -> u64 {
    u64::try_from(pico.div_ceil(1_000_000)).unwrap_or(u64::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cost_counts_cached_prompt_tokens_at_their_own_price() {
        // $2.50, $1.25 and $10 per million tokens.
        let prices = Prices {
            input: 2_500_000,
            cached_input: 1_250_000,
            output: 10_000_000,
        };
        let usage = Usage {
            prompt_tokens: 1000,
            cached_prompt_tokens: 400,
            completion_tokens: 100,
        };
        // 600 × 2.5 + 400 × 1.25 + 100 × 10 = 1500 + 500 + 1000.
        assert_eq!(cost_micro_usd(Some(&prices), &usage), 3000);
        let uncached = Prices {
            cached_input: prices.input,
            ..prices
        };
        assert_eq!(cost_micro_usd(Some(&uncached), &usage), 3500);
        assert_eq!(cost_micro_usd(None, &usage), 0);
        // $0.15 per million: 7 tokens cost 1.05 millionths, charged as 2.
        let cheap = Prices {
            input: 150_000,
            cached_input: 150_000,
            output: 0,
        };
        let seven = Usage {
            prompt_tokens: 7,
            cached_prompt_tokens: 0,
            completion_tokens: 0,
        };
        assert_eq!(cost_micro_usd(Some(&cheap), &seven), 2);
    }
}
