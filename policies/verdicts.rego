# What verifier findings mean (docs/verifiers.md). Verifiers only report;
# these rules decide. `input.verdicts.NAME` holds the verdicts on the content
# of the stage being decided: the arguments (`decision`), the output
# (`output_decision`).
#
# Rule order matters here: a complete rule that reads a partial set must come
# after the set's rules (regorus evaluates the file in order in `policy test`).
package warden.authz

# Prompt-injection findings at or above this score mark the session
# (plugins/injection/README.md has the precision/recall curve it comes from).
injection_threshold := 0.5

# A check that did not run is not a pass, unless the operator marked the
# verifier advisory.
deny contains sprintf("verifier %q could not check the arguments: %s", [name, verdict.error]) if {
	some name, verdict in input.verdicts
	verdict.verdict == "error"
	not verdict.advisory
}

# Credentials do not belong in a tool's arguments: the call is denied before
# the tool runs.
deny contains sprintf("verifier %q found a credential in the arguments: %s", [name, concat(", ", sort(kinds))]) if {
	some name, verdict in input.verdicts
	not verdict.advisory
	kinds := {finding.kind |
		some finding in verdict.findings
		finding.label == "secret"
		finding.severity in {"high", "critical"}
	}
	count(kinds) > 0
}

# Arguments that break the contract declared for them are not sent.
deny contains sprintf("verifier %q found the arguments break their contract: %s", [name, concat(", ", sort(kinds))]) if {
	some name, verdict in input.verdicts
	not verdict.advisory
	kinds := {finding.kind | some finding in verdict.findings; finding.label == "contract"}
	count(kinds) > 0
}

# An answer that cites what the session never saw, or misquotes what it saw,
# does not go out.
deny contains sprintf("verifier %q found the answer is not grounded in this session's sources: %s", [name, concat(", ", sort(kinds))]) if {
	some name, verdict in input.verdicts
	not verdict.advisory
	kinds := {finding.kind |
		some finding in verdict.findings
		finding.label == "ungrounded"
		finding.severity in {"high", "critical"}
	}
	count(kinds) > 0
}

output_deny contains sprintf("verifier %q could not check the output: %s", [name, verdict.error]) if {
	some name, verdict in input.verdicts
	verdict.verdict == "error"
	not verdict.advisory
}

# An output that breaks its contract (the operator's or the caller's) does
# not reach the caller.
output_deny contains sprintf("verifier %q found the output breaks its contract: %s", [name, concat(", ", sort(kinds))]) if {
	some name, verdict in input.verdicts
	not verdict.advisory
	kinds := {finding.kind | some finding in verdict.findings; finding.label == "contract"}
	count(kinds) > 0
}

# Redaction replaces text at a finding's location; a finding in an object
# key has none, so an output holding a credential or personal data there
# cannot leave redacted and does not leave at all.
output_deny contains sprintf("verifier %q found %s in an object key of the output, which cannot be redacted", [name, finding.label]) if {
	some name, verdict in input.verdicts
	some finding in verdict.findings
	finding.label in {"secret", "pii"}
	finding.pointer == null
}

redacted_verifiers contains name if {
	some name, verdict in input.verdicts
	some finding in verdict.findings
	finding.label in {"secret", "pii"}
}

# Content that tries to instruct the model marks the session: the flow rule
# (flows.rego) then stops its side effects.
output_labels contains "prompt-injection" if {
	some verdict in input.verdicts
	some finding in verdict.findings
	finding.label == "prompt-injection"
	finding.score >= injection_threshold
}

output_decision := {"allow": false, "reasons": sort(output_deny)} if {
	count(output_deny) > 0
}

# Credentials and personal data in an output reach the caller redacted.
output_decision := {"allow": true, "reasons": [], "obligations": {
	"redact_findings": sort(redacted_verifiers),
	"labels": sort(output_labels),
}} if {
	count(output_deny) == 0
}
