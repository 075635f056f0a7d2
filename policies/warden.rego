# Entry point of the default bundle. The host evaluates `decision` on every
# call; the rules that feed it live in the other files of this package.
#
# A call is allowed when some `allow` rule holds and no `deny` rule produces a
# reason. Add reasons with `deny contains msg if { ... }`; grant access with
# `allow if { ... }`. See docs/policy.md for the input document.
package warden.authz

default allow := false

decision := {"allow": true, "reasons": []} if {
	allow
	count(deny) == 0
}

decision := {"allow": false, "reasons": sort(deny)} if {
	count(deny) > 0
}

decision := {"allow": false, "reasons": [sprintf("no role of principal %q grants %s %q", [input.principal.id, input.target.kind, input.target.name])]} if {
	not allow
	count(deny) == 0
}
