# What verifier findings mean (docs/verifiers.md). Verifiers only report;
# these rules decide. `input.verdicts.NAME` holds the verdicts on the content
# of the stage being decided: the arguments (`decision`), the output
# (`output_decision`).
package warden.authz

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

output_deny contains sprintf("verifier %q could not check the output: %s", [name, verdict.error]) if {
	some name, verdict in input.verdicts
	verdict.verdict == "error"
	not verdict.advisory
}

redacted_verifiers contains name if {
	some name, verdict in input.verdicts
	some finding in verdict.findings
	finding.label in {"secret", "pii"}
}

output_decision := {"allow": false, "reasons": sort(output_deny)} if {
	count(output_deny) > 0
}

# Credentials and personal data in an output reach the caller redacted.
output_decision := {"allow": true, "reasons": [], "obligations": {"redact_findings": sort(redacted_verifiers)}} if {
	count(output_deny) == 0
}
