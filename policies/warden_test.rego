# Tests of the default bundle: `warden policy test policies`.
package warden.authz_test

import data.warden.authz

alice := {"id": "alice", "roles": ["analyst"], "tenant": "acme"}

bob := {"id": "bob", "roles": ["researcher"], "tenant": "acme"}

root := {"id": "root", "roles": ["admin"], "tenant": "acme"}

nobody := {"id": "nobody", "roles": [], "tenant": "acme"}

call(principal, tool, args) := {
	"version": 1,
	"principal": principal,
	"target": {"kind": "tool", "name": tool, "plugin": split(tool, ".")[0]},
	"args": args,
}

test_analyst_may_transform_text if {
	authz.decision.allow with input as call(alice, "text.transform", {"text": "x", "op": "upper"})
}

test_analyst_may_read_files if {
	authz.decision.allow with input as call(alice, "files.read", {"path": "notes.txt"})
}

test_analyst_may_not_fetch if {
	d := authz.decision with input as call(alice, "fetch.get", {"url": "https://example.com/"})
	not d.allow
	d.reasons == [`no role of principal "alice" grants tool "fetch.get"`]
}

test_researcher_may_fetch_an_allowed_host if {
	authz.decision.allow with input as call(bob, "fetch.get", {"url": "https://example.com/page?q=1"})
}

test_the_port_does_not_matter_to_the_host_allow_list if {
	authz.decision.allow with input as call(bob, "fetch.get", {"url": "http://127.0.0.1:8080/x"})
}

test_a_host_off_the_allow_list_is_denied if {
	d := authz.decision with input as call(bob, "fetch.get", {"url": "https://evil.example.net/"})
	not d.allow
	d.reasons == [`host "evil.example.net" is not on the fetch allow-list`]
}

test_userinfo_does_not_fool_the_allow_list if {
	d := authz.decision with input as call(bob, "fetch.get", {"url": "https://example.com@evil.net/"})
	not d.allow
	d.reasons == [`host "evil.net" is not on the fetch allow-list`]
}

# The allow-list reads URLs with the host's own parser (`warden.parse_url`),
# so each spelling below names the host the sandbox would connect to.
test_fragment_and_query_at_signs_do_not_fool_the_allow_list if {
	every url in [
		"http://127.0.0.2:8080#@example.com",
		"http://127.0.0.2:8080?@example.com",
		"http://127.0.0.2:8080/#@example.com",
		"http://127.0.0.2:8080\\@example.com/",
		"http://example.com@127.0.0.2:8080/",
		"http://example.com:80@127.0.0.2/",
	] {
		d := authz.decision with input as call(bob, "fetch.get", {"url": url})
		d.reasons == [`host "127.0.0.2" is not on the fetch allow-list`]
	}
}

test_a_backslash_before_an_at_sign_ends_the_host if {
	authz.decision.allow with input as call(bob, "fetch.get", {"url": "http://example.com\\@127.0.0.2/"})
}

test_ip_spellings_are_normalised if {
	every url in ["http://2130706434/", "http://0x7f.2/", "http://0177.0.0.2/", "http://127.2/"] {
		d := authz.decision with input as call(bob, "fetch.get", {"url": url})
		d.reasons == [`host "127.0.0.2" is not on the fetch allow-list`]
	}
	authz.decision.allow with input as call(bob, "fetch.get", {"url": "http://2130706433:9/"})
	d := authz.decision with input as call(bob, "fetch.get", {"url": "http://[::ffff:127.0.0.1]/"})
	d.reasons == [`host "::ffff:127.0.0.1" is not on the fetch allow-list`]
}

test_case_and_a_trailing_dot_do_not_matter if {
	authz.decision.allow with input as call(bob, "fetch.get", {"url": "HTTPS://EXAMPLE.COM./"})
	authz.decision.allow with input as call(bob, "fetch.get", {"url": "https://Example.Com.:443/x"})
}

test_urls_the_host_cannot_read_are_denied if {
	every url in ["http://example.com%40127.0.0.2/", "not a url", "file:///etc/passwd", "ftp://example.com/"] {
		d := authz.decision with input as call(bob, "fetch.get", {"url": url})
		not d.allow
	}
	d := authz.decision with input as call(bob, "fetch.get", {"url": "file:///etc/passwd"})
	d.reasons == [`url "file:///etc/passwd" is not an http or https URL`]
}

test_parse_url_returns_the_parts if {
	warden.parse_url("https://u:p@Example.com:8443/a/b?q=1#f") == {
		"scheme": "https", "host": "example.com", "port": 8443, "path": "/a/b",
		"query": "q=1", "fragment": "f", "username": "u", "has_password": true,
	}
	warden.parse_url("no") == null
	warden.parse_url(42) == null
}

test_hosts_are_compared_case_insensitively if {
	authz.decision.allow with input as call(bob, "fetch.get", {"url": "https://EXAMPLE.com/"})
}

test_paths_climbing_out_are_denied if {
	d := authz.decision with input as call(alice, "files.read", {"path": "docs/../../etc/passwd"})
	not d.allow
	d.reasons == [`path "docs/../../etc/passwd" climbs out of the data directory`]
}

test_a_principal_without_roles_is_denied if {
	d := authz.decision with input as call(nobody, "text.transform", {"text": "x", "op": "upper"})
	not d.allow
	d.reasons == [`principal "nobody" has no roles`]
}

test_admin_may_call_any_tool if {
	authz.decision.allow with input as call(root, "anything.at_all", {})
}

test_deny_reasons_win_over_allow if {
	d := authz.decision with input as call(root, "fetch.get", {"url": "https://evil.example.net/"})
	not d.allow
}

test_role_patterns_come_from_data if {
	d := authz.decision with input as call(alice, "fetch.get", {"url": "https://example.com/"})
		with data.roles.analyst.tools as ["fetch.*"]
	d.allow
}

test_side_effects_are_denied_after_untrusted_content if {
	d := authz.decision with input as object.union(
		call(root, "mail.send", {"to": "x@example.com"}),
		{"target": {"name": "mail.send", "plugin": "mail", "side_effects": true}, "session": {"labels": ["untrusted-content"]}},
	)
	not d.allow
	d.reasons == [`"mail.send" has side effects and this session carries untrusted content`]
}

test_side_effects_are_allowed_in_a_clean_session if {
	authz.decision.allow with input as object.union(
		call(root, "mail.send", {"to": "x@example.com"}),
		{"target": {"name": "mail.send", "plugin": "mail", "side_effects": true}, "session": {"labels": []}},
	)
}

a_verdict(kind, findings) := {
	"verdict": kind, "advisory": false, "sha256": "", "findings": findings,
	"max_score": 1, "labels": [], "kinds": [], "error": null,
}

aws_key := {"kind": "aws-access-key-id", "label": "secret", "severity": "critical", "score": 1, "pointer": "/text", "start": 0, "end": 20, "message": ""}

card := {"kind": "payment-card", "label": "pii", "severity": "high", "score": 1, "pointer": "/text", "start": 0, "end": 16, "message": ""}

test_a_credential_in_the_arguments_is_denied if {
	d := authz.decision with input as object.union(call(alice, "text.transform", {"text": "x", "op": "upper"}), {"verdicts": {"secrets": a_verdict("findings", [aws_key])}})
	not d.allow
	d.reasons == [`verifier "secrets" found a credential in the arguments: aws-access-key-id`]
}

test_a_verifier_that_failed_denies_the_call if {
	failed := object.union(a_verdict("error", []), {"error": "timed out"})
	d := authz.decision with input as object.union(call(alice, "text.transform", {"text": "x", "op": "upper"}), {"verdicts": {"pii": failed}})
	not d.allow
	d.reasons == [`verifier "pii" could not check the arguments: timed out`]
}

test_an_advisory_verifier_that_failed_does_not_deny if {
	failed := object.union(a_verdict("error", []), {"error": "timed out", "advisory": true})
	authz.decision.allow with input as object.union(call(alice, "text.transform", {"text": "x", "op": "upper"}), {"verdicts": {"pii": failed}})
}

test_personal_data_in_an_output_is_redacted if {
	d := authz.output_decision with input as {"stage": "output", "verdicts": {"pii": a_verdict("findings", [card]), "other": a_verdict("clean", [])}}
	d.allow
	d.obligations.redact_findings == ["pii"]
}

test_a_clean_output_passes_untouched if {
	d := authz.output_decision with input as {"stage": "output", "verdicts": {}}
	d.allow
	d.obligations.redact_findings == []
}

test_an_output_verifier_that_failed_denies_the_output if {
	failed := object.union(a_verdict("error", []), {"error": "trapped"})
	d := authz.output_decision with input as {"stage": "output", "verdicts": {"pii": failed}}
	not d.allow
	d.reasons == [`verifier "pii" could not check the output: trapped`]
}

override := {"kind": "instruction-override", "label": "prompt-injection", "severity": "high", "score": 0.9, "pointer": "/body", "start": 0, "end": 20, "message": ""}

test_an_injection_attempt_in_an_output_labels_the_session if {
	d := authz.output_decision with input as {"stage": "output", "verdicts": {"injection": a_verdict("findings", [override])}}
	d.allow
	d.obligations.labels == ["prompt-injection"]
}

test_a_weak_injection_signal_does_not_label_the_session if {
	weak := object.union(override, {"score": 0.2})
	d := authz.output_decision with input as {"stage": "output", "verdicts": {"injection": a_verdict("findings", [weak])}}
	d.obligations.labels == []
}

test_a_session_that_read_an_injection_attempt_makes_no_side_effect if {
	d := authz.decision with input as object.union(
		call(root, "mail.send", {"to": "x@example.com"}),
		{"target": {"name": "mail.send", "plugin": "mail", "side_effects": true}, "session": {"labels": ["prompt-injection"]}},
	)
	not d.allow
	d.reasons == [`"mail.send" has side effects and this session read content that tries to instruct the model`]
}

host_not_allowed := {"kind": "host-not-allowed", "label": "contract", "severity": "high", "score": 1, "pointer": "/url", "start": 0, "end": 18, "message": ""}

test_an_output_that_breaks_its_contract_is_refused if {
	d := authz.output_decision with input as {"stage": "output", "verdicts": {"contract": a_verdict("findings", [host_not_allowed])}}
	not d.allow
	d.reasons == [`verifier "contract" found the output breaks its contract: host-not-allowed`]
}

test_arguments_that_break_their_contract_are_denied if {
	d := authz.decision with input as object.union(call(alice, "text.transform", {"text": "x", "op": "upper"}), {"verdicts": {"contract": a_verdict("findings", [host_not_allowed])}})
	not d.allow
	d.reasons == [`verifier "contract" found the arguments break their contract: host-not-allowed`]
}

unresolved := {"kind": "unresolved-citation", "label": "ungrounded", "severity": "high", "score": 1, "pointer": "/text", "start": 10, "end": 40, "message": ""}

uncited := {"kind": "uncited-claim", "label": "ungrounded", "severity": "medium", "score": 0.6, "pointer": "/text", "start": 0, "end": 9, "message": ""}

test_an_answer_citing_an_unseen_source_is_denied if {
	d := authz.decision with input as object.union(call(alice, "text.transform", {"text": "x", "op": "upper"}), {"verdicts": {"grounding": a_verdict("findings", [unresolved, uncited])}})
	not d.allow
	d.reasons == [`verifier "grounding" found the answer is not grounded in this session's sources: unresolved-citation`]
}

test_an_uncited_claim_alone_is_reported_not_denied if {
	authz.decision.allow with input as object.union(call(alice, "text.transform", {"text": "x", "op": "upper"}), {"verdicts": {"grounding": a_verdict("findings", [uncited])}})
}

test_personal_data_in_an_object_key_refuses_the_output if {
	in_key := object.union(card, {"pointer": null, "start": null, "end": null})
	d := authz.output_decision with input as {"stage": "output", "verdicts": {"pii": a_verdict("findings", [in_key])}}
	not d.allow
	d.reasons == [`verifier "pii" found pii in an object key of the output, which cannot be redacted`]
}

completion(principal, model, tokens, window) := {
	"version": 1,
	"principal": principal,
	"target": {"kind": "model", "name": model, "plugin": "openai"},
	"completion": {"prompt_tokens_estimate": tokens, "context_window": window},
}

test_researcher_may_use_any_model if {
	authz.decision.allow with input as completion(bob, "gpt-4.1/mini", 10, null)
}

test_analyst_has_no_models if {
	d := authz.decision with input as completion(alice, "fast", 10, null)
	not d.allow
	d.reasons == [`no role of principal "alice" grants model "fast"`]
}

test_tool_patterns_never_grant_a_model if {
	d := authz.decision with input as completion(root, "text.transform", 10, null)
		with data.roles.admin as {"tools": ["**"]}
	not d.allow
}

test_model_patterns_never_grant_a_tool if {
	not authz.decision.allow with input as call(bob, "files.read", {"path": "x"})
		with data.roles.researcher as {"tools": [], "models": ["*"]}
}

test_a_prompt_larger_than_the_context_window_is_refused if {
	d := authz.decision with input as completion(bob, "fast", 9000, 8192)
	not d.allow
	d.reasons == [`the prompt (about 9000 tokens) does not fit the context window of model "fast" (8192 tokens)`]
}
