# Flow rules over session labels. A tool whose output comes from the open web
# (the fetch tool) labels its session `untrusted-content`; from then on, text
# in the session may carry instructions written by anyone.
package warden.authz

deny contains sprintf("%q has side effects and this session carries untrusted content", [input.target.name]) if {
	input.target.side_effects
	"untrusted-content" in input.session.labels
}
