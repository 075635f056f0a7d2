//! Which test exercises each tool of each hostile fixture. `build.rs`
//! generates `for_each_hostile_tool!` from the fixtures' manifests (whose
//! `tools` lists are checked against the components at load), and every
//! (fixture, tool) pair must have an arm below naming an existing test: a
//! new hostile tool without a case, or a case whose test was renamed or
//! removed, does not compile.

macro_rules! case {
    (HOSTILE, panic) => { crate::hostile::traps_limits_and_garbage_are_typed_results };
    (HOSTILE, spin) => { crate::hostile::a_hundred_spinning_calls_do_not_stop_normal_calls };
    (HOSTILE, grow) => { crate::hostile::traps_limits_and_garbage_are_typed_results };
    (HOSTILE, recurse) => { crate::hostile::traps_limits_and_garbage_are_typed_results };
    (HOSTILE, smash_stack) => { crate::hostile::traps_limits_and_garbage_are_typed_results };
    (HOSTILE, bad_json) => { crate::hostile::traps_limits_and_garbage_are_typed_results };
    (HOSTILE, wrong_shape) => { crate::hostile::traps_limits_and_garbage_are_typed_results };
    (HOSTILE, huge_output) => { crate::hostile::traps_limits_and_garbage_are_typed_results };
    (HOSTILE, invalid_utf8) => { crate::hostile::traps_limits_and_garbage_are_typed_results };
    (HOSTILE, read_file) => { crate::hostile::the_filesystem_holds_only_granted_directories };
    (HOSTILE, write_file) => { crate::hostile::the_filesystem_holds_only_granted_directories };
    (HOSTILE, write_slowly) => {
        crate::audit::a_host_killed_mid_call_leaves_every_answered_call_recorded_and_the_interrupted_one_incomplete
    };
    (HOSTILE, symlink_escape) => { crate::hostile::the_filesystem_holds_only_granted_directories };
    (HOSTILE, fill_disk) => {
        crate::hostile::writes_past_the_disk_quota_stop_the_call_and_never_reach_the_disk
    };
    (HOSTILE, grow_file) => {
        crate::hostile::writes_past_the_disk_quota_stop_the_call_and_never_reach_the_disk
    };
    (HOSTILE, read_env) => {
        crate::hostile::only_granted_and_requested_environment_variables_are_visible
    };
    (HOSTILE, exit) => { crate::hostile::traps_limits_and_garbage_are_typed_results };
    (HOSTILE, sleep) => {
        crate::exhaustion::two_plugins_at_full_concurrency_leave_the_pool_to_others
    };
    (HOSTILE, stdout_flood) => { crate::hostile::floods_of_output_and_logs_are_absorbed };
    (HOSTILE, log_flood) => { crate::hostile::floods_of_output_and_logs_are_absorbed };
    (HOSTILE_EGRESS, request) => { crate::secrets::trace_track_and_connect_are_never_sent };
    (HOSTILE_EGRESS, write) => {
        crate::side_effects::pinned_side_effects_and_labels_are_what_policy_sees
    };
    (HOSTILE_EGRESS, log) => { crate::refusals::plugin_log_messages_cannot_forge_host_log_lines };
    (HOSTILE_FS, read) => { crate::grants::relative_links_planted_on_a_grant_path_redirect_no_grant };
    (HOSTILE_FS, write) => { crate::grants::relative_links_planted_on_a_grant_path_redirect_no_grant };
    (HOSTILE_FS, list) => {
        crate::grants::grants_inside_equal_to_or_containing_a_read_write_grant_are_refused
    };
    (HOSTILE_FS, plant_link) => {
        crate::grants::relative_links_planted_on_a_grant_path_redirect_no_grant
    };
    (HOSTILE_FS, open_many) => {
        crate::exhaustion::calls_holding_thousands_of_open_files_leave_descriptors_for_the_host
    };
    (HOSTILE_FS, flood) => {
        crate::exhaustion::calls_flooding_a_stalling_origin_hold_few_connections_each
    };
    (HOSTILE_FS, sparse) => {
        crate::exhaustion::sparse_writes_are_charged_by_the_blocks_they_allocate
    };
    (HOSTILE_FS, entries) => {
        crate::exhaustion::empty_files_directories_and_links_cost_a_block_each
    };
    (HOSTILE_FS, deep) => {
        crate::exhaustion::data_below_a_path_longer_than_path_max_is_counted
    };
}

/// Names the case of one tool as a test function; fails to compile when
/// the arm is missing or its test does not exist.
macro_rules! has_case {
    ($fixture:ident, $tool:ident) => {
        const _: fn() = case!($fixture, $tool);
    };
}

for_each_hostile_tool!(has_case);
