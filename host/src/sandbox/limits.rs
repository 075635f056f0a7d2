//! Per-call resource limits enforced through wasmtime's `ResourceLimiter`.

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
