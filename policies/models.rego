# Role-based model access for the gateway. `data.roles[role].models`
# (data.json) maps each role to glob patterns over model names (`*` matches
# any name, dots and slashes included). A role without `models` uses none.
package warden.authz

allow if {
	input.target.kind == "model"
	some role in input.principal.roles
	some pattern in data.roles[role].models
	glob.match(pattern, null, input.target.name)
}

# A prompt that alone would fill the model's context window is refused
# before it costs anything (the estimate is rough: bytes / 4).
deny contains sprintf("the prompt (about %d tokens) does not fit the context window of model %q (%d tokens)", [
	input.completion.prompt_tokens_estimate,
	input.target.name,
	input.completion.context_window,
]) if {
	input.target.kind == "model"
	input.completion.context_window != null
	input.completion.prompt_tokens_estimate > input.completion.context_window
}
