//! Per-call resource limits enforced through wasmtime's `ResourceLimiter`.

use wasmtime::ResourceLimiter;

/// Table elements a plugin may allocate; generous for real guests, bounded for hostile ones.
const MAX_TABLE_ELEMENTS: usize = 100_000;
/// Core instances, tables and memories per component instance.
const MAX_INSTANCES: usize = 64;
const MAX_TABLES: usize = 64;
const MAX_MEMORIES: usize = 8;

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
        MAX_INSTANCES
    }

    fn tables(&self) -> usize {
        MAX_TABLES
    }

    fn memories(&self) -> usize {
        MAX_MEMORIES
    }
}
