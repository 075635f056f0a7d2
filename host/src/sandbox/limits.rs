//! Per-call resource limits: memory and tables through wasmtime's
//! `ResourceLimiter`, the engine's instance pool, the resources (and so host
//! descriptors) a call may hold. (Outgoing requests in flight are capped by
//! the outbound HTTP capability, `capabilities/http/limit.rs`.)

use wasmtime::ResourceLimiter;

/// Table elements a plugin may allocate; generous for real guests, bounded for hostile ones.
const MAX_TABLE_ELEMENTS: usize = 100_000;
/// Core instances, tables and memories one component instance may hold. The
/// instance pool reserves this much per call slot, and a component that
/// contains more is refused at load. First-party guests (Rust, componentize-py,
/// jco) need at most 38 core instances (componentize-py), 1 memory.
pub(super) const MAX_CORE_INSTANCES: u32 = 64;
pub(super) const MAX_TABLES: u32 = 32;
pub(super) const MAX_MEMORIES: u32 = 2;
/// Address space the instance pool may reserve for linear memories (of the
/// 128 TiB a 64-bit Linux process has).
const POOL_ADDRESS_SPACE: u64 = 64 << 40;
/// Address space one pooled linear memory reserves: wasmtime's 4 GiB
/// reservation for 32-bit memories (or the memory limit, if larger) plus guards.
fn memory_slot_bytes(max_memory: u64) -> u64 {
    max_memory.max(4 << 30) + (64 << 20)
}

/// Sizes wasmtime's pooling allocator for `slots` calls at once (the sum of
/// every plugin's `max_concurrent`): each call holds one component instance
/// with at most the per-component maxima above, so the pool can never run
/// out while the kernel's per-plugin limits hold. Refuses sizes whose linear
/// memories would not fit the address space.
pub(super) fn instance_pool(
    slots: u64,
    max_memory: u64,
) -> Result<wasmtime::PoolingAllocationConfig, String> {
    let memories = slots.saturating_mul(u64::from(MAX_MEMORIES));
    let reserved = memories.saturating_mul(memory_slot_bytes(max_memory));
    let count = |per: u32| u32::try_from(slots.saturating_mul(u64::from(per))).ok();
    let (Some(components), Some(cores), Some(memories), Some(tables)) = (
        count(1),
        count(MAX_CORE_INSTANCES),
        count(MAX_MEMORIES),
        count(MAX_TABLES),
    ) else {
        return Err(format!(
            "{slots} concurrent calls is more than the instance pool can count"
        ));
    };
    if reserved > POOL_ADDRESS_SPACE {
        return Err(format!(
            "plugins may run {slots} calls at once (the sum of their max_concurrent); \
             their {memories} pooled linear memories would reserve {} GiB of address \
             space, more than the {} GiB the instance pool may use: lower \
             `max_concurrent` or `limits.max_concurrent_per_plugin`",
            reserved >> 30,
            POOL_ADDRESS_SPACE >> 30
        ));
    }
    let mut pool = wasmtime::PoolingAllocationConfig::default();
    pool.total_component_instances(components)
        .total_stacks(components)
        .total_core_instances(cores)
        .total_memories(memories)
        .total_tables(tables)
        .max_core_instances_per_component(MAX_CORE_INSTANCES)
        .max_memories_per_component(MAX_MEMORIES)
        .max_tables_per_component(MAX_TABLES)
        .max_memory_size(usize::try_from(max_memory).unwrap_or(usize::MAX));
    Ok(pool)
}

/// Caps linear memory (summed over the call's memories) and table growth, and
/// remembers whether the memory cap was hit so the failure is reported as
/// `memory-limit` rather than a bare trap.
pub(super) struct CallLimiter {
    memory_max: usize,
    memory_exceeded: bool,
}

impl CallLimiter {
    pub(super) fn new(memory_bytes: u64) -> CallLimiter {
        CallLimiter {
            memory_max: usize::try_from(memory_bytes).unwrap_or(usize::MAX),
            memory_exceeded: false,
        }
    }

    pub(super) fn memory_exceeded(&self) -> bool {
        self.memory_exceeded
    }
}

impl ResourceLimiter for CallLimiter {
    fn memory_growing(
        &mut self,
        _current: usize,
        desired: usize,
        _maximum: Option<usize>,
    ) -> wasmtime::Result<bool> {
        if desired > self.memory_max {
            self.memory_exceeded = true;
            return Ok(false);
        }
        Ok(true)
    }

    fn table_growing(
        &mut self,
        _current: usize,
        desired: usize,
        _maximum: Option<usize>,
    ) -> wasmtime::Result<bool> {
        Ok(desired <= MAX_TABLE_ELEMENTS)
    }

    fn instances(&self) -> usize {
        MAX_CORE_INSTANCES as usize
    }

    fn tables(&self) -> usize {
        MAX_TABLES as usize
    }

    fn memories(&self) -> usize {
        MAX_MEMORIES as usize
    }
}

/// Descriptors kept back for the host itself when sizing per-call caps: the
/// listener's connections, the audit store's pool and spool, upstream pipes,
/// precompiled components, logs.
const DESCRIPTOR_RESERVE: u64 = 1024;
/// Resources (open files and directories, streams, HTTP requests and
/// responses, pollables) one call may hold at once, at most and at least.
const MAX_RESOURCES_PER_CALL: u64 = 1024;
const MIN_RESOURCES_PER_CALL: u64 = 32;

/// Raises the soft limit on open descriptors to the hard limit and returns
/// the limit now in force (the soft one if it cannot be raised).
pub(super) fn raise_descriptor_limit() -> u64 {
    use rustix::process::{Resource, Rlimit, getrlimit, setrlimit};
    let limit = getrlimit(Resource::Nofile);
    let Some(hard) = limit.maximum else {
        return limit.current.unwrap_or(u64::MAX);
    };
    if limit.current.is_some_and(|soft| soft < hard) {
        let raised = Rlimit {
            current: Some(hard),
            maximum: Some(hard),
        };
        if let Err(e) = setrlimit(Resource::Nofile, raised) {
            tracing::warn!(error = %e, hard, "cannot raise the open-descriptor limit");
            return limit.current.unwrap_or(hard);
        }
    }
    hard
}

/// Resources one call may hold so that `slots` calls at once, each at its
/// cap, leave [`DESCRIPTOR_RESERVE`] of `descriptors` to the host. Every
/// descriptor a call can open is one of its resources, so the host cannot run
/// out of descriptors because of plugins. Refuses a configuration that would
/// leave calls fewer than [`MIN_RESOURCES_PER_CALL`].
pub(super) fn resources_per_call(descriptors: u64, slots: u64) -> Result<usize, String> {
    let per_call = descriptors.saturating_sub(DESCRIPTOR_RESERVE) / slots.max(1);
    if per_call < MIN_RESOURCES_PER_CALL {
        return Err(format!(
            "plugins may run {slots} calls at once (the sum of their max_concurrent), but \
             the process may open only {descriptors} descriptors: keeping {DESCRIPTOR_RESERVE} \
             for the host leaves {per_call} per call, fewer than {MIN_RESOURCES_PER_CALL}; \
             raise the hard limit (`ulimit -Hn`) or lower `max_concurrent`"
        ));
    }
    Ok(usize::try_from(per_call.min(MAX_RESOURCES_PER_CALL)).unwrap_or(usize::MAX))
}
