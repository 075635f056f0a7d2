# Flow rules over session labels. A tool whose output comes from the open web
# (the fetch tool) labels its session `untrusted-content`; from then on, text
# in the session may carry instructions written by anyone.
package warden.authz

deny contains sprintf("%q has side effects and this session carries untrusted content", [input.target.name]) if {
	input.target.side_effects
	"untrusted-content" in input.session.labels
}

# Content a verifier found trying to instruct the model (verdicts.rego) stops
# every later side effect of the session, whatever the source's own label.
deny contains sprintf("%q has side effects and this session read content that tries to instruct the model", [input.target.name]) if {
	input.target.side_effects
	"prompt-injection" in input.session.labels
}
